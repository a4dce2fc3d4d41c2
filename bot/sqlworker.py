"""One SQL worker process: the guard and DuckDB, behind operating-system limits.

Started by bot/sqlpool.py as `python -m bot.sqlworker FD`, FD being its end of a socket
pair. It opens the warehouse in the sandbox (bot/warehouse.py), warms the guard, then caps
its own address space (RLIMIT_AS: the DuckDB memory limit plus HEADROOM above what the open
connection already maps), file writes (RLIMIT_FSIZE 0) and descriptors, and, before each
query, its CPU time (RLIMIT_CPU: SIGXCPU kills it). Then it answers requests one at a time:

    ("run", sql, guarded) -> ("ok", columns, rows, truncated, elapsed_ms)
                           | ("error", kind, message, retire)

`retire` asks the pool to replace the worker (it ran out of memory: its heap is suspect).

DuckDB's own interrupt stops most queries at the time limit and keeps the worker warm; the
pool kills the whole process group when one does not stop (string builders, the planner, the
guard itself), and the kernel kills it when it passes its memory or CPU limit.
"""

from __future__ import annotations

import math
import os
import pickle
import re
import resource
import sys
import threading
import time
from datetime import datetime, timezone
from decimal import Decimal
from multiprocessing.connection import Connection
from typing import Any

HEADROOM = 256 * 2**20  # bytes above DuckDB's memory_limit: Python, results, string builders
MAX_FILES = 64  # open descriptors; the open warehouse and the socket need a handful
_REINTERRUPT_S = 0.05  # how often a timed-out query is interrupted again until it stops
_FETCH = 64  # rows converted to Python at a time, so the byte cap is checked as we go
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def memory_bytes(limit: str) -> int:
    """DuckDB's memory_limit text ('128MB', '1GiB') in bytes; DuckDB's units (MB = 10^6)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", limit)
    if not m or m.group(2).lower() not in _UNITS:
        raise ValueError(f"not a memory size: {limit!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2).lower()])


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def cpu_limit(used: float, budget: int, hard: int) -> int:
    """The soft RLIMIT_CPU for one request: `budget` CPU seconds past the `used` so far,
    never above the hard limit (RLIM_INFINITY, -1, is none: a worker's usual case)."""
    soft = int(used) + budget
    return soft if hard < 0 else min(soft, hard)


def value_bytes(value: Any) -> int:
    """About how many bytes a result value takes on the wire."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value) + 8
    if isinstance(value, (list, tuple)):
        return 8 + sum(value_bytes(v) for v in value)
    if isinstance(value, dict):
        return 8 + sum(value_bytes(k) + value_bytes(v) for k, v in value.items())
    if isinstance(value, Decimal):
        return 24
    return 16


def portable(value: Any) -> Any:
    """A value whose pickle the pool accepts: a time zone (zoneinfo, which pickles through
    getattr) becomes its fixed offset, inside lists, structs and maps too."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.replace(tzinfo=timezone(value.utcoffset()))
    if isinstance(value, (list, tuple)):
        return type(value)(portable(v) for v in value)
    if isinstance(value, dict):
        return {portable(k): portable(v) for k, v in value.items()}
    return value


class Runner:
    """Runs requests on one sandboxed connection; every failure becomes a reply."""

    def __init__(self, path: str, limits: Any, catalog: Any):
        from bot.warehouse import QueryErrors, connect  # the sandbox settings live there

        self.limits, self.catalog = limits, catalog
        self.errors = QueryErrors(path, limits)
        self.con = connect(path, limits)
        self.cpu_budget = math.ceil((limits.query_timeout_s + 2) * (limits.threads + 1)) + 1

    def warm(self) -> None:
        """Run the guard and DuckDB once, and every Python-side converter, before the address
        space is capped; a worker that cannot do this much is broken (RuntimeError)."""
        from states.guard import check

        table = next(iter(self.catalog.tables), None)
        probes = [check(f"SELECT * FROM {table} LIMIT 1", self.catalog, 1)] if table else []
        # Python-side converters load on first use (pytz's zone data for TIMESTAMPTZ, uuid,
        # decimal): loaded now, before the address space is capped, they cost no query memory
        probes.append("SELECT TIMESTAMPTZ '2000-01-01 00:00:00+00' AS t, INTERVAL 1 DAY AS i, "
                      "uuid() AS u, TIME '01:00' AS tm, 1.5::DECIMAL(4,1) AS d, [1] AS l, "
                      "{'a': 1} AS s, '2000-01-01'::DATE AS dt")
        for sql in probes:
            reply = self.run(sql, guarded=False)
            if reply[0] != "ok":
                raise RuntimeError(f"the worker could not run {sql[:60]!r}: {reply[2]}")

    def run(self, sql: str, guarded: bool) -> tuple:
        from states.guard import check
        from states.ports import QueryError

        started = time.perf_counter()
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU,
                           (cpu_limit(_cpu_seconds(), self.cpu_budget, hard), hard))
        try:
            runnable = check(sql, self.catalog, self.limits.max_rows) if guarded else sql
            return self._execute(runnable, started)
        except QueryError as exc:
            return ("error", exc.kind, exc.message, False)
        except MemoryError:
            return ("error", "runtime", self.errors.memory(), True)

    def _execute(self, sql: str, started: float) -> tuple:
        import duckdb

        cap, byte_cap = self.limits.max_rows, self.limits.max_result_bytes
        # a fresh session per request: no transaction, temp table or setting carries over
        cur = self.con.cursor()
        fired, done = threading.Event(), threading.Event()
        left = self.limits.query_timeout_s - (time.perf_counter() - started)  # guard included

        def watchdog() -> None:
            if done.wait(max(left, 0.0)):
                return
            fired.set()
            # Sent again until the query ends: DuckDB forgets an interrupt that lands before
            # the query has started.
            while not done.is_set():
                cur.interrupt()
                done.wait(_REINTERRUPT_S)

        threading.Thread(target=watchdog, daemon=True, name="fundbot-query-timer").start()
        t0 = time.perf_counter()
        try:
            cur.execute(sql)
            columns = [d[0] for d in (cur.description or [])]
            from bot.warehouse import exact_text

            exact = exact_text(sql, cur.description or [])
            zoned = any("TIME ZONE" in str(d[1]) for d in cur.description or [])
            if exact:
                cur.execute(exact)
            rows: list[tuple] = []
            size, over = 0, False
            while columns and len(rows) <= cap:
                chunk = cur.fetchmany(min(_FETCH, cap + 1 - len(rows)))
                if not chunk:
                    break
                for r in chunk:
                    size += value_bytes(r)
                    if size > byte_cap:
                        over = True
                        break
                    rows.append(tuple(r))
                if over:
                    break
            if over or len(rows) > cap:
                cur.interrupt()  # the rest is never read: stop computing it now
            if over and not rows:
                return ("error", "runtime", self.errors.too_big(), False)
        except duckdb.Error as exc:
            kind, message = self.errors.from_duckdb(exc, fired.is_set())
            return ("error", kind, message, isinstance(exc, duckdb.OutOfMemoryException))
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - a value that would not convert to Python
            return ("error", "runtime", self.errors.clean(f"{type(exc).__name__}: {exc}"),
                    False)
        finally:
            done.set()
            cur.close()
        truncated = over or len(rows) > cap
        rows = [tuple(portable(v) for v in r) for r in rows[:cap]] if zoned else rows[:cap]
        return ("ok", columns, rows, truncated, (time.perf_counter() - t0) * 1000)


def _limit_process(limits: Any) -> int:
    """Cap the address space at what is mapped now plus memory_limit plus HEADROOM; no file
    may be written (the warehouse is read-only, spilling is off) and few opened."""
    cap = _vm_size() + memory_bytes(limits.memory_limit) + HEADROOM
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (MAX_FILES, MAX_FILES))
    return cap


def main(fd: int) -> None:
    conn = Connection(fd)
    path, limits, catalog = pickle.loads(conn.recv_bytes())  # from the parent: trusted
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    try:
        runner = Runner(path, limits, catalog)
        runner.warm()
        cap = _limit_process(limits)
    except Exception as exc:  # noqa: BLE001 - told to the pool, which logs it
        conn.send_bytes(pickle.dumps(("failed", f"{type(exc).__name__}: {exc}"[:500])))
        return
    conn.send_bytes(pickle.dumps(("ready", os.getpid(), cap)))
    while True:
        try:
            request = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent has gone
        if request[0] != "run":
            return
        reply = runner.run(request[1], request[2])
        try:
            conn.send_bytes(pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL))
        except MemoryError:
            conn.send_bytes(pickle.dumps(("error", "runtime", runner.errors.memory(), True)))


if __name__ == "__main__":
    # Run the module's own copy, not __main__'s: its functions and classes then carry their
    # real module name (bot.sqlworker), which pickle, logging and mutation testing go by.
    from bot.sqlworker import main as worker_main

    worker_main(int(sys.argv[1]))
