"""The DuckDB executor: the Warehouse port, guarded by states.guard and sandboxed twice.

The executor does not trust the guard. Every query text (the guard's analysis and DuckDB's
execution) runs in a warm worker process (bot/sqlpool.py, bot/sqlworker.py) whose memory and
CPU are capped by the operating system and which is killed at a wall-clock deadline: that
is the wall. Inside it, the file is opened read-only with external access off (no files,
no network, no ATTACH/COPY), extensions neither installed nor loaded, Python replacement
scans off, spilling to disk off, memory and threads capped, and the configuration locked so
no statement can undo any of it. Each query is interrupted after `limits.query_timeout_s`,
at most `max_rows + 1` rows and `max_result_bytes` bytes are fetched.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Self

import duckdb

from bot.config import UnavailableError
from bot.sqlpool import SqlPool, memory_message, timeout_message
from schemas.catalog import build_catalog, docs_for
from states.ports import Ambiguity, Entity, Limits, QueryError, QueryResult

_MAX_MESSAGE = 600  # characters of a DuckDB error handed on; enough for the candidates list
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


# What must hold on the open connection, as duckdb_settings() reports it: every setting of
# sandbox_config() but the limits (checked by tests/test_warehouse.py), and the two locks.
_EXPECTED = {
    "enable_external_access": "false",
    "autoload_known_extensions": "false",
    "autoinstall_known_extensions": "false",
    "allow_community_extensions": "false",
    "allow_unsigned_extensions": "false",
    "allow_persistent_secrets": "false",
    "python_enable_replacements": "false",
    "temp_directory": "",
    "lock_configuration": "true",
    "access_mode": "read_only",
}


def too_big_message(limits: Limits) -> str:
    return (f"one row of the result is larger than the {limits.max_result_bytes:,}-byte "
            "limit on results; select shorter values (substr, length) or aggregate")


class QueryErrors:
    """DuckDB's errors as QueryErrors a user can act on, without host paths."""

    def __init__(self, path: str, limits: Limits):
        self.path, self.limits = path, limits

    def timeout(self) -> str:
        return timeout_message(self.limits)

    def memory(self) -> str:
        return memory_message(self.limits)

    def too_big(self) -> str:
        return too_big_message(self.limits)

    def from_duckdb(self, exc: duckdb.Error, timed_out: bool) -> tuple[str, str]:
        """(kind, message) for a DuckDB error."""
        if timed_out or isinstance(exc, duckdb.InterruptException):
            return "timeout", self.timeout()
        if isinstance(exc, duckdb.OutOfMemoryException):
            # DuckDB's own text talks of in-memory mode and temp directories: noise to a user
            return "runtime", self.memory()
        if isinstance(exc, (duckdb.ParserException, duckdb.SyntaxException)):
            kind = "parse"
        elif isinstance(exc, (duckdb.BinderException, duckdb.CatalogException)):
            kind = "binder"
        else:
            kind = "runtime"
        message = self.clean(str(exc))
        if "pytz" in message:
            message = ("timestamps with time zone cannot be returned here; cast them to "
                       "TIMESTAMP or DATE (e.g. current_date instead of now())")
        return kind, message

    def clean(self, message: str) -> str:
        """DuckDB's message without host paths or the caret context of the rewritten SQL."""
        message = message.split("\n\nLINE ")[0].split("\nLINE ")[0]
        for secret in sorted({self.path, os.path.dirname(os.path.abspath(self.path)),
                              os.path.expanduser("~")}, key=len, reverse=True):
            if secret and secret not in ("/", "."):
                message = message.replace(secret, "<path>")
        message = _QUOTED_PATH.sub(r"\1<path>\1", message)
        message = " ".join(message.split())
        return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"


class DuckWarehouse:
    """The Warehouse port over a DuckDB file: guard and DuckDB in a killable worker process.

    The process keeps one sandboxed connection of its own for trusted work only (reading
    the catalogue and the value dictionaries); every query text goes to the pool.
    """

    def __init__(self, path: str, limits: Limits, docs: dict | None = None):
        self.path = str(path)
        self.limits = limits
        self._lock = threading.Lock()
        self._dictionaries: Any = None
        self._closed = False
        self._con = connect(self.path, limits)
        try:
            # the bundled catalogue only for the sample warehouse; a user's own file speaks
            # for itself (schemas.catalog.docs_for)
            self._docs = docs_for(self._con) if docs is None else docs
            with self._lock:
                self.catalog = build_catalog(self._con, self._docs)
            self.pool = SqlPool(self.path, limits, self.catalog, limits.sql_workers)
        except BaseException:
            self._con.close()
            raise

    # ------------------------------------------------------------------ the port

    def execute(self, sql: str) -> QueryResult:
        """Guard, then run read-only in the sandbox; raises QueryError.

        QueryResult.elapsed_ms is DuckDB's part alone, so callers can tell it from the guard's.
        """
        return self._run(sql, guarded=True)

    def resolve(self, text: str) -> tuple[list[Entity], list[Ambiguity]]:
        """Deterministic entity resolution against the value dictionaries."""
        return self._value_dictionaries().resolve(text)

    def sandbox_execute(self, sql: str) -> QueryResult:
        """Sandbox only, no guard; for tests of defence in depth."""
        return self._run(sql, guarded=False)

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.pool.close()
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

    def _run(self, sql: str, guarded: bool) -> QueryResult:
        if self._closed:
            raise QueryError("runtime", "the warehouse is closed", sql)
        if not isinstance(sql, str):
            raise QueryError("parse", "the SQL must be text", str(sql))
        return self.pool.run(sql, guarded)


def connect(path: str, limits: Limits) -> Any:
    """A read-only connection in the sandbox, its settings checked."""
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


def exact_text(sql: str, description: list) -> str | None:
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
