"""The terminal chat as a person uses it: Ctrl-C cancels a running question and returns to the
prompt with the thread as it was, Ctrl-C at the prompt drops the line, Ctrl-D quits, and
escape codes from arrow keys never reach the model. A real `fundbot chat` process."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from bot.cli import clean_line
from bot.store import SqliteStore

FUNDBOT = str(Path(sys.executable).with_name("fundbot"))
COUNT = "SELECT count(*) AS funds FROM funds"


class Chat:
    """A `fundbot chat` child with its output read line by line on a thread."""

    def __init__(self, env: dict, cwd: Path):
        self.proc = subprocess.Popen([FUNDBOT, "chat"], env={**os.environ, **env}, cwd=cwd,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line)

    def send(self, text: str) -> None:
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def expect(self, words: str, timeout: float = 60) -> str:
        """The first output line containing `words` (waits for it; fails after `timeout`)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            self.seen.append(line)
            if words in line:
                return line


def _wait_for(condition, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_ctrl_c_cancels_the_turn_and_ctrl_d_quits(env, fake, tmp_path):
    fake.enqueue_delay(30)  # the first question hangs in the LLM call until cancelled
    chat = Chat({**env, "PYTHONUNBUFFERED": "1"}, tmp_path)
    try:
        chat.expect("/help")
        chat.send("how many funds do we have?")
        _wait_for(lambda: len(fake.chat_requests) == 1)
        chat.proc.send_signal(signal.SIGINT)
        chat.expect("(cancelled")
        fake.enqueue_tool_call(COUNT).enqueue_text("We have 8 funds.")
        chat.send("how many funds do we have?")
        chat.expect("We have 8 funds.")
        chat.send("/help")
        chat.expect("/new")
        chat.proc.stdin.close()  # Ctrl-D
        assert chat.proc.wait(timeout=60) == 0
        err = chat.proc.stderr.read()
        assert "Traceback" not in err, err
    finally:
        if chat.proc.poll() is None:
            chat.proc.kill()
            chat.proc.wait()
    # the cancelled question left no turn behind: the thread holds the answered one only
    threads = [m for line in chat.seen for m in re.findall(r"chat-[0-9a-f]{10}", line)]
    store = SqliteStore(env["FUNDBOT_STATE"])
    conv = store.load(threads[-1])
    assert [(t.question, t.state) for t in conv.history] == [
        ("how many funds do we have?", "answered")]
    assert conv.status == "idle"


def test_escape_codes_never_reach_the_question():
    assert clean_line("how many funds\x1b[D\x1b[D\x1b[C?") == "how many funds?"
    assert clean_line("\x1b[Ahello\x1bOB\x07") == "hello"
    assert clean_line("Zürich – 2026") == "Zürich – 2026"
