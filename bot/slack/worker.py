"""A bounded worker pool that runs jobs for one key (a Slack thread) one at a time, in order.

Different keys run in parallel on up to `workers` threads. A key never holds more than one
worker: its jobs wait in a per-key queue, and after each job the key goes to the back of the
pool's queue so one busy thread cannot starve the others.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager

log = logging.getLogger(__name__)

Job = Callable[[], object]


class Quiet:
    """Lets acknowledgements go first: background work waits, briefly, for a quiet moment.

    Python runs one thread at a time; a burst of events would otherwise wait for the CPU
    behind the work the first of them started. Request handlers hold `busy()`; workers call
    `wait()` before each job and start once no request has been in flight for `settle_s`,
    or after `max_wait_s` at the latest, so steady traffic never starves the work.
    """

    def __init__(self, settle_s: float = 0.05, max_wait_s: float = 0.5):
        self.settle_s = settle_s
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._inflight = 0
        self._last = 0.0  # monotonic time the last request finished

    @contextmanager
    def busy(self) -> Iterator[None]:
        with self._cond:
            self._inflight += 1
        try:
            yield
        finally:
            with self._cond:
                self._inflight -= 1
                self._last = time.monotonic()
                self._cond.notify_all()

    def wait(self) -> None:
        deadline = time.monotonic() + self.max_wait_s
        with self._cond:
            while True:
                now = time.monotonic()
                quiet_for = now - self._last
                if (self._inflight == 0 and quiet_for >= self.settle_s) or now >= deadline:
                    return
                pause = self.settle_s - quiet_for if self._inflight == 0 else self.settle_s
                self._cond.wait(min(max(pause, 0.001), deadline - now))


class Overloaded(Exception):
    """More jobs are waiting than the dispatcher accepts; the caller should say so."""


class Dispatcher:
    """Per-key serial, cross-key parallel execution on a bounded thread pool."""

    def __init__(self, workers: int = 4, max_pending: int = 1000, ui_workers: int = 4,
                 quiet: Quiet | None = None):
        self.workers = max(1, workers)
        self.quiet = quiet
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="fundbot-turn")
        # Short Slack-only calls (placeholders, refusals, modals) must not wait behind slow turns.
        self._ui = ThreadPoolExecutor(max_workers=max(1, ui_workers),
                                      thread_name_prefix="fundbot-ui")
        # Calls bound to a trigger_id (views.open) must reach Slack within 3 s of the click:
        # their own threads, never queued behind placeholders or waiting for a quiet moment.
        self._urgent = ThreadPoolExecutor(max_workers=2, thread_name_prefix="fundbot-urgent")
        self._lock = threading.Lock()
        self._queues: dict[str, deque[Job]] = {}  # a key is present while a drainer owns it
        self._pending = 0  # jobs accepted and not yet finished
        self._side = 0  # ui/urgent calls submitted and not yet finished
        self._idle = threading.Condition(self._lock)
        self._closed = False
        self._on_shutdown: list[tuple[Callable[[], object], Callable[[], object]]] = []

    def submit(self, key: str, job: Job) -> int:
        """Queue `job` behind the key's earlier jobs; returns how many jobs were ahead of it."""
        with self._lock:
            if self._closed:
                raise RuntimeError("dispatcher is shut down")
            if self._pending >= self.max_pending:
                raise Overloaded(f"{self._pending} jobs waiting")
            self._pending += 1
            queue = self._queues.get(key)
            if queue is not None:
                queue.append(job)
                return len(queue)  # the running job is not in the queue, so this counts it
            self._queues[key] = deque([job])
        self._pool.submit(self._drain_one, key)
        return 0

    def busy(self, key: str) -> bool:
        """True while the key has a job running or waiting."""
        with self._lock:
            return key in self._queues

    def ui(self, fn: Callable[[], object]) -> Future:
        """Run a quick Slack-only call off the request thread, outside the per-key order."""
        return self._side_job(self._ui.submit(self._run, fn))

    def urgent(self, fn: Callable[[], object]) -> Future:
        """Run a deadline-bound Slack call (views.open) at once, off the request thread."""
        return self._side_job(self._urgent.submit(_logged, fn))

    def _side_job(self, future: Future) -> Future:
        """Count a ui/urgent call until it is done, so `join` waits for it too."""
        with self._lock:
            self._side += 1

        def done(_: Future) -> None:
            with self._lock:
                self._side -= 1
                self._idle.notify_all()
        future.add_done_callback(done)
        return future

    @property
    def pending(self) -> int:
        with self._lock:
            return self._pending

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every accepted job (and every ui/urgent call) has finished; False on
        timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0 and self._side == 0, timeout)

    def on_shutdown(self, before: Callable[[], object], after: Callable[[], object]) -> None:
        """Call `before` when shutdown starts (stop feeding jobs) and `after` at its end."""
        self._on_shutdown.append((before, after))

    def shutdown(self, wait: bool = True, timeout: float | None = 30.0) -> None:
        """Stop accepting jobs; with `wait`, finish the ones already accepted first."""
        with self._lock:
            self._closed = True
        for before, _ in self._on_shutdown:
            _logged(before)
        if wait:
            self.join(timeout)
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
        self._ui.shutdown(wait=wait, cancel_futures=not wait)
        self._urgent.shutdown(wait=wait, cancel_futures=not wait)
        for _, after in self._on_shutdown:
            _logged(after)

    def _drain_one(self, key: str) -> None:
        with self._lock:
            job = self._queues[key].popleft()
        try:
            self._run(job)
        finally:
            with self._lock:
                self._pending -= 1
                more = bool(self._queues[key])
                if not more:
                    del self._queues[key]
                if self._pending == 0:
                    self._idle.notify_all()
            if more:
                try:
                    self._pool.submit(self._drain_one, key)
                except RuntimeError:  # pool shut down without waiting: drop the rest
                    log.warning("dropping queued jobs for %s at shutdown", key)


    def _run(self, fn: Callable[[], object]) -> object:
        if self.quiet is not None:
            self.quiet.wait()
        return _logged(fn)


def _logged(fn: Callable[[], object]) -> object:
    try:
        return fn()
    except Exception:  # a job's failure must not kill the worker or block the key
        log.exception("background job failed")
        return None
