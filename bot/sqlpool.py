"""The process wall: a small pool of warm SQL worker processes (bot/sqlworker.py).

Each query (the guard's analysis and DuckDB's execution) runs in a worker that has its
read-only sandboxed connection open already, so a query costs two messages on a socket
pair, not a process start. The worker's limits are the operating system's: address space
(RLIMIT_AS) and CPU time (RLIMIT_CPU) set in the worker, and a wall-clock deadline kept
here -- `query_timeout_s + GRACE_S` after a request is sent, the worker's whole process
group is killed (SIGKILL) and a fresh worker started in its place.

Replies from a worker are unpickled with an allow-list of value types: a worker runs
untrusted SQL, so nothing it sends may name a class to build.
"""

from __future__ import annotations

import io
import logging
import os
import pickle
import queue
import re
import signal
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection, Pipe
from typing import Any

from states.ports import Catalog, Limits, QueryError, QueryResult

log = logging.getLogger(__name__)

GRACE_S = 1.0  # past the time limit before a worker that did not stop is killed
STARTUP_S = 120.0  # how long a new worker may take to open the warehouse (a loaded machine)
_SAFE = {("decimal", "Decimal"), ("datetime", "date"), ("datetime", "datetime"),
         ("datetime", "time"), ("datetime", "timedelta"), ("datetime", "timezone"),
         ("uuid", "UUID"), ("builtins", "set"), ("builtins", "frozenset"),
         ("builtins", "complex"), ("builtins", "bytearray"), ("pytz", "_UTC"), ("pytz", "_p")}


_SHAPES = {"ready": 3, "failed": 2, "ok": 5, "error": 4}  # reply kind -> tuple length


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _SAFE:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a worker reply may not hold {module}.{name}")


def _loads(data: bytes) -> Any:
    return _Unpickler(io.BytesIO(data)).load()


_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV", "TZ")
# never passed, whatever FUNDBOT_WORKER_ENV says: our own settings (a state URL may hold a
# password) and anything named like a credential
_NEVER = re.compile(r"^(FUNDBOT_|OPENAI_|SLACK_)|TOKEN|SECRET|KEY|PASS|CREDENTIAL|AUTH",
                    re.IGNORECASE)


def worker_environment() -> dict[str, str]:
    """What a worker inherits: enough to start Python, no tokens or keys. FUNDBOT_WORKER_ENV
    names more variables to pass (comma-separated: a coverage or mutation-testing tool's),
    never one that looks like a secret."""
    extra = {name.strip() for name in os.environ.get("FUNDBOT_WORKER_ENV", "").split(",")}
    keep = set(_KEEP) | {name for name in extra if name and not _NEVER.search(name)}
    return {k: v for k, v in os.environ.items() if k in keep}


class WorkerDied(Exception):
    """The worker process ended (killed at the deadline, by a limit, or crashed)."""

    def __init__(self, returncode: int | None, killed: bool, starting: bool = False,
                 bad_reply: bool = False):
        super().__init__(f"worker ended ({returncode})")
        self.returncode, self.killed, self.starting = returncode, killed, starting
        self.bad_reply = bad_reply  # it answered, but not in a shape or with types we accept


class Worker:
    """One worker process and our end of its socket pair."""

    def __init__(self, path: str, limits: Limits, catalog: Catalog):
        ours, theirs = Pipe(duplex=True)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bot.sqlworker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True,  # its own process group
            close_fds=True, env=worker_environment())
        theirs.close()
        self.conn: Connection = ours
        self.ready = False
        self.address_space = 0
        try:
            self.conn.send_bytes(pickle.dumps((path, limits, catalog)))
        except OSError:
            pass  # it died at once; the first request finds out and says so

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_ready(self) -> None:
        if self.ready:
            return
        try:
            reply = self._receive(STARTUP_S)
        except WorkerDied as died:
            died.starting = True
            raise
        if not (isinstance(reply, tuple) and reply[:1] == ("ready",)):
            if isinstance(reply, tuple) and reply[:1] == ("failed",):
                log.error("an SQL worker could not open the warehouse: %s", reply[1])
            self.kill()
            raise WorkerDied(self.proc.returncode, killed=False, starting=True)
        self.address_space = reply[2]
        self.ready = True

    def _receive(self, timeout: float, maxlength: int | None = None) -> Any:
        try:
            if not self.conn.poll(timeout):
                self.kill()
                raise WorkerDied(self.proc.returncode, killed=True)
            reply = _loads(self.conn.recv_bytes(maxlength))
            if not (isinstance(reply, tuple) and reply and reply[0] in _SHAPES
                    and len(reply) == _SHAPES[reply[0]]):
                raise ValueError("a reply of the wrong shape")
            return reply
        except (EOFError, OSError, MemoryError):
            self.kill()
            raise WorkerDied(self.proc.returncode, killed=False) from None
        except (pickle.UnpicklingError, ValueError, TypeError, IndexError, KeyError,
                AttributeError) as exc:
            log.warning("an SQL worker's reply was refused: %s", exc)
            self.kill()
            raise WorkerDied(self.proc.returncode, killed=False, bad_reply=True) from None

    def request(self, sql: str, guarded: bool, timeout: float, maxlength: int) -> tuple:
        """The worker's reply, or WorkerDied when it ended or passed `timeout` seconds."""
        self._wait_ready()
        try:
            self.conn.send_bytes(pickle.dumps(("run", sql, guarded)))
        except OSError:
            self.kill()
            raise WorkerDied(self.proc.returncode, killed=False) from None
        return self._receive(timeout, maxlength)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """Kill the worker's whole process group and reap it."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            pass
        self.conn.close()


def _kill_all(workers: set[Worker]) -> None:
    for w in list(workers):
        w.kill()


class SqlPool:
    """`size` warm workers; `run` checks one out, sends the query, and keeps the deadline."""

    def __init__(self, path: str, limits: Limits, catalog: Catalog, size: int):
        self.path, self.limits, self.catalog = path, limits, catalog
        self._idle: queue.LifoQueue[Worker] = queue.LifoQueue()
        self._all: set[Worker] = set()
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers killed and started again (for tests and the bench)
        self._size = max(1, size)
        for _ in range(self._size):
            self._idle.put(self._spawn())
        # workers must not outlive the bot, even when nobody calls close()
        self._finalizer = weakref.finalize(self, _kill_all, self._all)

    def _spawn(self) -> Worker:
        w = Worker(self.path, self.limits, self.catalog)
        with self._lock:
            self._all.add(w)
        return w

    def _checkout(self) -> Worker:
        while True:
            if self._closed:
                raise QueryError("runtime", "the warehouse is closed")
            try:
                return self._idle.get(timeout=0.2)
            except queue.Empty:
                pass
            with self._lock:
                short = len(self._all) < self._size  # a replacement could not be started
            if short:
                try:
                    return self._spawn()
                except OSError as exc:
                    log.error("cannot start an SQL worker: %s", exc)
                    raise QueryError("runtime", "the SQL worker could not start; the query "
                                     "was not run (see the bot's log)") from None

    def _give_back(self, w: Worker) -> None:
        if self._closed or not w.alive():
            with self._lock:
                self._all.discard(w)
            w.kill()
            if not self._closed:
                self.replaced += 1
                try:
                    self._idle.put(self._spawn())
                except OSError as exc:  # out of processes or descriptors: the next checkout
                    log.error("cannot start an SQL worker: %s", exc)  # tries again
            return
        self._idle.put(w)

    def run(self, sql: str, guarded: bool) -> QueryResult:
        """The rows, or QueryError; a worker that dies or overruns is replaced."""
        timeout = self.limits.query_timeout_s + GRACE_S
        maxlength = reply_limit(self.limits)
        w = self._checkout()
        reply: tuple = ()
        try:
            reply = w.request(sql, guarded, timeout, maxlength)
        except WorkerDied as died:
            raise self._died(died, sql) from None
        except BaseException:
            # interrupted mid-request (Ctrl-C in the terminal): the worker is still busy and its
            # reply would reach the next caller, so it goes, and a fresh one takes its place
            w.kill()
            raise
        finally:
            if reply[:1] == ("error",) and reply[-1]:
                w.kill()  # out of memory: its heap is suspect, start afresh
            self._give_back(w)
        if reply[0] == "ok":
            _, columns, rows, truncated, elapsed_ms = reply
            return QueryResult(columns=columns, rows=rows, truncated=truncated,
                               elapsed_ms=elapsed_ms)
        _, kind, message, _ = reply
        raise QueryError(kind, message, sql)

    def _died(self, died: WorkerDied, sql: str) -> QueryError:
        if self._closed:
            return QueryError("runtime", "the warehouse is closed", sql)
        if died.starting:
            log.error("an SQL worker could not start (exit status %s)", died.returncode)
            return QueryError("runtime", "the SQL worker could not start; the query was not "
                              "run (see the bot's log)", sql)
        if died.killed or died.returncode == -signal.SIGXCPU:
            return QueryError("timeout", timeout_message(self.limits), sql)
        if died.bad_reply:
            return QueryError("runtime", "the result holds a value of a type fundbot does not "
                              "pass on; cast that column to VARCHAR", sql)
        return QueryError("runtime", memory_message(self.limits), sql)

    def address_spaces(self) -> list[int]:
        """RLIMIT_AS of each ready worker, in bytes."""
        with self._lock:
            return [w.address_space for w in self._all if w.ready]

    def pids(self) -> list[int]:
        with self._lock:
            return [w.pid for w in self._all if w.alive()]

    def close(self) -> None:
        self._closed = True
        self._finalizer()


def reply_limit(limits: Limits) -> int:
    """The most bytes a worker's reply may take on the wire. The worker cuts rows at
    max_result_bytes by its own estimate of their size (a character counts one there and takes
    up to four bytes in UTF-8), plus 1 MiB for the columns and framing. A longer reply is
    refused, and its worker killed."""
    return limits.max_result_bytes * 4 + 2**20


def timeout_message(limits: Limits) -> str:
    return (f"the query ran longer than {limits.query_timeout_s:g} s and was stopped; "
            "make it cheaper (filter early, avoid cross joins)")


def memory_message(limits: Limits) -> str:
    return (f"the query needed more than the {limits.memory_limit} memory limit and was "
            "stopped; aggregate or filter earlier and avoid cross joins")
