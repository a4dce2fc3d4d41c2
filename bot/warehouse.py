"""The DuckDB executor: the Warehouse port, guarded by states.guard and sandboxed by DuckDB.

The executor does not trust the guard. The file is opened read-only with external access
off (no files, no network, no ATTACH/COPY), extensions neither installed nor loaded,
Python replacement scans off, spilling to disk off, memory and threads capped, and the
configuration locked so no statement can undo any of it. Each query is interrupted after
`limits.query_timeout_s`, and at most `max_rows + 1` rows are fetched to see truncation.

One DuckDB database instance per file is shared by the process; each calling thread gets
its own cursor (a duplicate connection), so Slack's worker pool can query concurrently and
a timeout interrupts only the query that ran over.
"""

from __future__ import annotations

import os
import re
import threading
import time
from pathlib import Path
from typing import Any, Self

import duckdb

from bot.config import UnavailableError
from schemas.catalog import build_catalog, docs_for
from states.guard import check
from states.ports import Ambiguity, Entity, Limits, QueryError, QueryResult

_MAX_MESSAGE = 600  # characters of a DuckDB error handed on; enough for the candidates list
_REINTERRUPT_S = 0.05  # how often a timed-out query is interrupted again until it stops
_QUOTED_PATH = re.compile(r"""(["'])(?:[A-Za-z]:)?[/\\][^"']*\1""")


def sandbox_config(limits: Limits) -> dict[str, Any]:
    """Settings every warehouse connection is opened with (DuckDB 2.0 names)."""
    return {
        "enable_external_access": False,  # files, COPY, ATTACH, INSTALL/LOAD, http
        "autoload_known_extensions": False,
        "autoinstall_known_extensions": False,
        "allow_community_extensions": False,
        "allow_unsigned_extensions": False,
        "allow_persistent_secrets": False,
        "python_enable_replacements": False,  # no scans of Python variables by name
        "temp_directory": "",  # no spilling: the memory cap is the cap, nothing is written
        "memory_limit": limits.memory_limit,
        "threads": limits.threads,
    }


# What must hold on the open connection, as duckdb_settings() reports it.
_EXPECTED = {
    "enable_external_access": "false",
    "autoload_known_extensions": "false",
    "autoinstall_known_extensions": "false",
    "allow_community_extensions": "false",
    "python_enable_replacements": "false",
    "lock_configuration": "true",
    "access_mode": "read_only",
}


class DuckWarehouse:
    """The Warehouse port over a DuckDB file: guard, then run in the sandbox."""

    def __init__(self, path: str, limits: Limits, docs: dict | None = None):
        self.path = str(path)
        self.limits = limits
        self._lock = threading.Lock()
        self._local = threading.local()
        self._cursors: dict[int, tuple[threading.Thread, Any]] = {}
        self._dictionaries: Any = None
        self._closed = False
        self._con = _connect(self.path, limits)
        try:
            self._docs = docs_for(self._con) if docs is None else docs
            with self._lock:
                self.catalog = build_catalog(self._con, self._docs)
        except BaseException:
            self._con.close()
            raise

    # ------------------------------------------------------------------ the port

    def execute(self, sql: str) -> QueryResult:
        """Guard, then run read-only in the sandbox; raises QueryError.

        QueryResult.elapsed_ms is DuckDB's part alone, so callers can tell it from the guard's.
        """
        try:
            runnable = check(sql, self.catalog, self.limits.max_rows)
        except QueryError as exc:
            exc.sql = exc.sql or sql
            raise
        return self._run(runnable, sql, time.perf_counter())

    def resolve(self, text: str) -> tuple[list[Entity], list[Ambiguity]]:
        """Deterministic entity resolution against the value dictionaries."""
        return self._value_dictionaries().resolve(text)

    def sandbox_execute(self, sql: str) -> QueryResult:
        """Sandbox only, no guard; for tests of defence in depth."""
        return self._run(sql, sql, time.perf_counter())

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for _, cur in self._cursors.values():
                _quietly_close(cur)
            self._cursors.clear()
            _quietly_close(self._con)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _value_dictionaries(self) -> Any:
        if self._dictionaries is None:
            from schemas.dictionaries import ValueDictionaries  # built by another module

            with self._lock:
                if self._dictionaries is None:
                    self._dictionaries = ValueDictionaries.from_connection(
                        self._con, self._docs.get("dictionaries", [])
                    )
        return self._dictionaries

    def _cursor(self) -> Any:
        cur = getattr(self._local, "cursor", None)
        if cur is not None:
            return cur
        with self._lock:
            if self._closed:
                raise QueryError("runtime", "the warehouse is closed")
            for ident, (thread, old) in list(self._cursors.items()):
                if not thread.is_alive():  # worker threads come and go; their cursors too
                    _quietly_close(old)
                    del self._cursors[ident]
            cur = self._con.cursor()
            self._cursors[threading.get_ident()] = (threading.current_thread(), cur)
        self._local.cursor = cur
        return cur

    def _run(self, sql: str, original: str, started: float) -> QueryResult:
        cap = self.limits.max_rows
        timeout = self.limits.query_timeout_s
        cur = self._cursor()
        fired, done = threading.Event(), threading.Event()

        def watchdog() -> None:
            if done.wait(timeout):
                return
            fired.set()
            # Sent again until the query ends: DuckDB forgets an interrupt that lands before
            # the query has started (a loaded machine), and the query would then run unbounded.
            while not done.is_set():
                cur.interrupt()  # this thread's cursor only: other users' queries run on
                done.wait(_REINTERRUPT_S)

        # The timer must not outlive the query: a daemon thread still holding the cursor at
        # interpreter exit destroys it during shutdown, and DuckDB aborts (exit 134).
        timer = threading.Thread(target=watchdog, daemon=True, name="fundbot-query-timer")
        timer.start()
        try:
            cur.execute(sql)
            columns = [d[0] for d in (cur.description or [])]
            exact = _exact_text(sql, cur.description or [])
            if exact:
                cur.execute(exact)
            rows = [tuple(r) for r in cur.fetchmany(cap + 1)] if columns else []
            if len(rows) > cap:
                # A streamed result nobody will read further: stop computing it now, or it runs
                # on in the background and a later close of this cursor waits for it (seen: 14 s).
                cur.interrupt()
        except duckdb.Error as exc:
            raise self._error(exc, fired.is_set(), original) from None
        except Exception as exc:  # noqa: BLE001 - a value that would not convert to Python
            if not fired.is_set() and str(exc) == "Query interrupted":
                # Ctrl-C: DuckDB took the signal and stopped the query; the caller decides
                raise KeyboardInterrupt from None
            raise QueryError("runtime", self._clean(f"{type(exc).__name__}: {exc}"),
                             original) from None
        finally:
            done.set()
            timer.join()
        return QueryResult(columns=columns, rows=rows[:cap], truncated=len(rows) > cap,
                           elapsed_ms=(time.perf_counter() - started) * 1000)

    def _error(self, exc: duckdb.Error, timed_out: bool, sql: str) -> QueryError:
        if timed_out or isinstance(exc, duckdb.InterruptException):
            limit = f"{self.limits.query_timeout_s:g}"
            return QueryError("timeout", f"the query ran longer than {limit} s and was stopped; "
                              "make it cheaper (filter early, avoid cross joins)", sql)
        if isinstance(exc, duckdb.OutOfMemoryException):
            # DuckDB's own text talks of in-memory mode and temp directories: noise to a user
            return QueryError("runtime", "the query needed more than the "
                              f"{self.limits.memory_limit} "
                              "memory limit and was stopped; aggregate or filter earlier and "
                              "avoid cross joins", sql)
        if isinstance(exc, (duckdb.ParserException, duckdb.SyntaxException)):
            kind = "parse"
        elif isinstance(exc, (duckdb.BinderException, duckdb.CatalogException)):
            kind = "binder"
        else:
            kind = "runtime"
        message = self._clean(str(exc))
        if "pytz" in message:
            message = ("timestamps with time zone cannot be returned here; cast them to "
                       "TIMESTAMP or DATE (e.g. current_date instead of now())")
        return QueryError(kind, message, sql)

    def _clean(self, message: str) -> str:
        """DuckDB's message without host paths or the caret context of the rewritten SQL."""
        message = message.split("\n\nLINE ")[0].split("\nLINE ")[0]
        for secret in sorted({self.path, os.path.dirname(os.path.abspath(self.path)),
                              os.path.expanduser("~")}, key=len, reverse=True):
            if secret and secret not in ("/", "."):
                message = message.replace(secret, "<path>")
        message = _QUOTED_PATH.sub(r"\1<path>\1", message)
        message = " ".join(message.split())
        return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


def _exact_text(sql: str, description: list) -> str | None:
    """The query again with INTERVAL columns as DuckDB's own text, or None when it has none.

    DuckDB hands an INTERVAL to Python as a timedelta, counting a month as 30 days and a year
    as 360 ("15 years 4 months" became 5,519 days); its text ("15 years 4 months 2 days") is
    exact. Columns are taken by position, so duplicate or odd names cannot break the wrapper.
    """
    if not any("INTERVAL" in str(d[1]) for d in description):
        return None
    cols = ", ".join(f"CAST(#{i} AS VARCHAR)" if "INTERVAL" in str(d[1]) else f"#{i}"
                     for i, d in enumerate(description, 1))
    return f"SELECT {cols} FROM ({sql.strip().rstrip(';')}\n) AS _fundbot_exact"


def _connect(path: str, limits: Limits) -> Any:
    try:
        con = duckdb.connect(path, read_only=True, config=sandbox_config(limits))
    except duckdb.ConnectionException as exc:
        # DuckDB shares one instance per file in a process; its settings must agree
        raise RuntimeError(f"cannot open the warehouse read-only in the sandbox: {exc}") from None
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise UnavailableError(f"cannot read the warehouse {path}: "
                                   f"{str(exc).splitlines()[0]}") from None
        holder = re.search(r"\(PID (\d+)\)", str(exc))
        raise UnavailableError(
            f"the warehouse {path} is locked by another process"
            + (f" (PID {holder.group(1)})" if holder else "")
            + " that has it open for writing; close that program and try again") from None
    try:
        locked = con.execute("SELECT current_setting('lock_configuration')").fetchone()[0]
        if not locked:
            con.execute("SET lock_configuration = true")
        settings = dict(con.execute(
            "SELECT name, lower(value) FROM duckdb_settings() WHERE name IN ("
            + ", ".join(f"'{n}'" for n in _EXPECTED) + ")"
        ).fetchall())
    except Exception:
        con.close()
        raise
    wrong = sorted(n for n, v in _EXPECTED.items() if settings.get(n) != v)
    if wrong:  # never run unsandboxed, e.g. if an older DuckDB ignored a setting
        con.close()
        raise RuntimeError(f"the DuckDB sandbox is not in force ({', '.join(wrong)})")
    return con


def _quietly_close(con: Any) -> None:
    try:
        con.close()
    except duckdb.Error:
        pass


def open_warehouse(path: str, limits: Limits, docs: dict | None = None) -> DuckWarehouse:
    """The warehouse at `path`; a clear FileNotFoundError if it was never built."""
    if not Path(path).is_file():
        raise FileNotFoundError(
            f"no warehouse at {path}: build the sample one with `fundbot db init` "
            "(or point FUNDBOT_DB at an existing DuckDB file)"
        )
    return DuckWarehouse(path, limits, docs)
