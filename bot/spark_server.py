"""A local Spark Connect server from the pyspark wheel, for tests, benchmarks and trying it out.

`LocalSparkConnect` runs the wheel's own `sbin/start-connect-server.sh --wait` (the Spark
Connect server, in the foreground) as a child process group: `local[N]`, bound to 127.0.0.1
on a free port, with its warehouse, logs and scratch in one directory, and stops it (the whole
group) on `stop()`. It needs Java 17+ on PATH or JAVA_HOME. A real cluster or Databricks is
reached the same way by its `sc://` URL; this is only the local stand-in.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Self


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def master_cores(master: str) -> str:
    """The N of local[N] ("2" for local[*] or anything else)."""
    n = master.removeprefix("local[").removesuffix("]")
    return n if n.isdigit() else "2"


class SparkServerError(RuntimeError):
    """The local server would not start; the message carries the end of its log."""


class LocalSparkConnect:
    """One local Spark Connect server; `url` is its `sc://127.0.0.1:PORT`."""

    def __init__(self, workdir: str | os.PathLike, *, master: str = "local[2]",
                 driver_memory: str = "1g", port: int | None = None,
                 conf: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.master = master
        self.driver_memory = driver_memory
        self.port = port or free_port()
        self.conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.sql.warehouse.dir": str(self.workdir / "warehouse"),
            "spark.local.dir": str(self.workdir / "scratch"),
            "spark.ui.enabled": "false",
            # one machine: 200 shuffle partitions would be 200 tiny tasks per stage
            "spark.sql.shuffle.partitions": master_cores(master),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={self.workdir / 'derby'}",
            **(conf or {}),
        }
        self.proc: subprocess.Popen | None = None
        self._watchdog: subprocess.Popen | None = None
        self.log = self.workdir / "server.log"

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self, ready_within_s: float = 300.0) -> Self:
        """Start the server and return once it answers a query (or raise SparkServerError)."""
        for sub in ("warehouse", "scratch", "logs", "derby"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        home = spark_home()
        env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOG_DIR": str(self.workdir / "logs"),
               "SPARK_PID_DIR": str(self.workdir), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_LOCAL_DIRS": str(self.workdir / "scratch")}
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        env.pop("SPARK_REMOTE", None)
        cmd = ["bash", str(home / "sbin" / "start-connect-server.sh"), "--wait",
               "--master", self.master, "--driver-memory", self.driver_memory]
        for key, value in self.conf.items():
            cmd += ["--conf", f"{key}={value}"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, env=env, cwd=self.workdir, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         start_new_session=True)
        self._watch_parent()
        try:
            self._wait_ready(ready_within_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _watch_parent(self) -> None:
        """Stop the server if this process dies without stop() (a killed test run): a small
        shell loop, in its own session, ends the group within a second of the parent."""
        assert self.proc is not None
        script = (f"while kill -0 {os.getpid()} 2>/dev/null && kill -0 -- -{self.proc.pid} "
                  f"2>/dev/null; do sleep 1; done; kill -TERM -- -{self.proc.pid} 2>/dev/null")
        self._watchdog = subprocess.Popen(["bash", "-c", script], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                          start_new_session=True)

    def _wait_ready(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SparkServerError(f"the Spark Connect server exited ({self.proc.returncode})"
                                       f":\n{self._log_tail()}")
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=1):
                if self._answers():
                    return
            time.sleep(0.5)
        raise SparkServerError(f"the Spark Connect server did not answer within {within_s:g} s:"
                               f"\n{self._log_tail()}")

    def _answers(self) -> bool:
        from pyspark.sql import SparkSession

        try:
            spark = SparkSession.builder.remote(self.url).create()
        except Exception:  # noqa: BLE001 - not listening yet
            return False
        try:
            return spark.sql("SELECT 1 AS one").collect()[0][0] == 1
        except Exception:  # noqa: BLE001 - up but not ready to run queries yet
            return False
        finally:
            with contextlib.suppress(Exception):
                spark.stop()

    def _log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        """Stop the server's whole process group (the script, spark-submit and the JVM)."""
        proc, self.proc = self.proc, None
        watchdog, self._watchdog = self._watchdog, None
        try:
            self._stop_group(proc)
        finally:
            if watchdog is not None:  # it sees the group gone within a second
                try:
                    watchdog.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    watchdog.kill()
                    watchdog.wait()

    @staticmethod
    def _stop_group(proc: subprocess.Popen | None) -> None:
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):  # the group, even if its leader is gone
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
