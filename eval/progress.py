"""A small thread-safe progress bar on stderr (redrawn in a terminal, a few lines otherwise)."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    def __init__(self, total: int, label: str = "eval", stream: TextIO | None = None,
                 width: int = 30) -> None:
        self.total, self.label, self.width = total, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.done = self.passed = 0
        self._lock = threading.Lock()
        self._t0 = time.perf_counter()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_decile = -1

    def line(self) -> str:
        frac = self.done / self.total if self.total else 1.0
        filled = round(frac * self.width)
        secs = time.perf_counter() - self._t0
        return (f"{self.label} [{'#' * filled}{'.' * (self.width - filled)}] "
                f"{self.done}/{self.total} passed {self.passed} {secs:.1f}s")

    def advance(self, ok: bool = False) -> None:
        with self._lock:
            self.done += 1
            self.passed += bool(ok)
            if self._tty:
                self.stream.write("\r" + self.line())
            else:  # logs: one line per tenth, not one per case
                decile = int(10 * self.done / self.total) if self.total else 10
                if decile == self._last_decile and self.done != self.total:
                    return
                self._last_decile = decile
                self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        with self._lock:
            if self._tty:
                self.stream.write("\n")
                self.stream.flush()
