"""A real `fundbot slack` process (HTTP mode) for tests and benchmarks: started with an
environment, healthy when /healthz answers, killed (SIGKILL) or stopped (SIGTERM) by its handle,
its log kept in a temporary file."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replica:
    """One real `fundbot slack` process (HTTP mode) against the emulator, the fake model and
    the shared store; started again on the same port after a kill."""

    def __init__(self, base_env: dict, llm_url: str, port: int | None = None):
        self.port = port or free_port()
        self.env = {**base_env, "PORT": str(self.port), "OPENAI_BASE_URL": llm_url}
        self.proc: subprocess.Popen | None = None

    def start(self, wait: bool = True) -> Replica:
        """Start the process; with `wait`, return once /healthz answers."""
        exe = Path(sys.executable).with_name("fundbot")
        if getattr(self, "log", None) is not None:
            self.log.close()  # the previous run's (a restart)
        self.log = tempfile.NamedTemporaryFile("w+", prefix="fundbot-replica-", suffix=".log")
        self.proc = subprocess.Popen([str(exe), "slack"], env=self.env, cwd=ROOT,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.log, text=True)
        if not wait:
            return self
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.errors()[-3000:]
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz",
                                            timeout=1) as r:
                    if r.status == 200:
                        return self
            except OSError:
                assert time.monotonic() < deadline, "the replica never became healthy"
                time.sleep(0.1)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def errors(self) -> str:
        self.log.seek(0)
        return self.log.read()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> str:
        """SIGTERM; returns what it logged."""
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=60)
        text = self.errors()
        self.log.close()
        return text
