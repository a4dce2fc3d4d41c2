"""The Spark Connect executor: the Warehouse port over Spark, Databricks or any `sc://` server.

Spark has no read-only session, so the guard (states.guard, in the Spark dialect) is the wall
in this process, and the principal's grants are the wall on the server (docs/SECURITY.md):
a read-only principal holds SELECT and USE only. On top of that, bounded for a shared cluster:

- the row cap is in the SQL the guard returns (LIMIT max_rows + 1) and again on the DataFrame,
  so no more than max_rows + 1 rows ever leave the cluster;
- every query carries an operation tag of its own and the turn's tag (`fundbot-turn-<trace>`):
  a watchdog interrupts the query's tag after `limits.query_timeout_s` (Spark cancels its jobs),
  and an operator can cancel a whole turn by its tag;
- the catalogue (tables, columns, types, comments) is read from the engine, the value
  dictionaries from bounded queries.

The connection URL may carry a token (`sc://host:443/;token=...`): it is never logged or put in
an error message.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
import uuid
from datetime import datetime
from typing import Any, Self

from bot.sqlpool import timeout_message
from bot.sqlworker import value_bytes
from bot.warehouse import too_big_message
from schemas.catalog import as_of_query, docs_for_tables, overlay
from states.dialects import DATABRICKS, SPARK, transpile
from states.guard import check
from states.ports import CURRENT_TURN, Ambiguity, Entity, Limits, QueryError, QueryResult

_MAX_MESSAGE = 600
_REINTERRUPT_S = 0.25  # a tag interrupted before its operation registered is sent again
# Where Spark's message ends and its diagnostics begin: the JVM stack, the query context, the
# logical plan ('Project ..., +- Relation ..., GlobalLimit ...).
_DIAGNOSTICS = re.compile(r"^\s*(JVM stacktrace:|== |'|\+-|:  |[A-Z][A-Za-z]+ \[|GlobalLimit )")
_NOISE = re.compile(r"\s*SQLSTATE: \w+;?|;?\s*line \d+ pos \d+;?")
_SECRET_PARAM = re.compile(r";?\s*(token|password|secret)\s*=[^;\s]*", re.IGNORECASE)
_DATABRICKS_HOST = re.compile(r"\.(cloud\.databricks\.com|azuredatabricks\.net|"
                              r"gcp\.databricks\.com)$", re.IGNORECASE)


def redact_url(url: str) -> str:
    """An sc:// URL fit for logs: host and port, no token, user or other parameters."""
    head = url.split(";", 1)[0].rstrip("/")
    return re.sub(r"//[^@/]*@", "//", head)


def dialect_for(url: str) -> str:
    """sqlglot's dialect for the engine at `url`: databricks for Databricks hosts."""
    host = re.sub(r"^sc://([^:/;]*).*$", r"\1", url)
    return DATABRICKS if _DATABRICKS_HOST.search(host) else SPARK


def _within_bytes(rows: list[tuple], byte_cap: int) -> list[tuple]:
    """The leading rows whose size stays within `byte_cap` (limits.max_result_bytes), as the
    DuckDB worker keeps them."""
    size = 0
    for i, row in enumerate(rows):
        size += value_bytes(row)
        if size > byte_cap:
            return rows[:i]
    return rows


def _naive(v: Any) -> Any:
    # Spark hands timestamps back in the session time zone (UTC, set below); DuckDB's
    # TIMESTAMP values are naive, so both engines give the same Python values.
    return v.replace(tzinfo=None) if isinstance(v, datetime) and v.tzinfo else v


def connect(url: str, schema: str = "") -> Any:
    """A new Spark Connect session at `url`, in UTC, using `schema` ([catalog.]schema)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # an optional extra: say how to get it
        raise RuntimeError("the Spark warehouse needs pyspark's Spark Connect client: "
                           "pip install 'fundbot[spark]'") from exc
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        # pyspark logs every failed query with its plan and JVM stack to stderr; the error
        # reaches the caller as a QueryError, the rest is noise that may quote data
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    spark = SparkSession.builder.remote(url).create()
    try:
        spark.conf.set("spark.sql.session.timeZone", "UTC")
        if schema:
            *cat, db = schema.split(".")
            if cat:
                spark.catalog.setCurrentCatalog(".".join(cat))
            spark.catalog.setCurrentDatabase(db)
    except Exception:
        spark.stop()
        raise
    return spark


class SparkWarehouse:
    """The Warehouse port over a Spark Connect session: guard, then run bounded and tagged."""

    def __init__(self, url: str, limits: Limits, docs: dict | None = None,
                 schema: str = "", dialect: str | None = None):
        self._url = url
        self.limits = limits
        self.dialect = dialect or dialect_for(url)
        self._lock = threading.Lock()
        self._dictionaries: Any = None
        self._docs: dict[str, Any] = {}
        self._closed = False
        try:
            self.spark = connect(url, schema)
        except Exception as exc:
            raise RuntimeError(f"cannot use the Spark warehouse at {redact_url(url)}: "
                               f"{self._clean(str(exc))}") from None
        try:
            self.catalog = self._read_catalog(docs)
        except Exception as exc:
            self.close()
            raise RuntimeError(f"cannot use the Spark warehouse at {redact_url(url)}: "
                               f"{self._clean(str(exc))}") from None

    # ------------------------------------------------------------------ the port

    def execute(self, sql: str) -> QueryResult:
        """Guard in the Spark dialect, then run bounded; raises QueryError."""
        self._usable(sql)
        try:
            runnable = check(sql, self.catalog, self.limits.max_rows, self.dialect)
        except QueryError as exc:
            exc.sql = exc.sql or sql
            raise
        return self._run(runnable, sql, time.perf_counter())

    def resolve(self, text: str) -> tuple[list[Entity], list[Ambiguity]]:
        return self._value_dictionaries().resolve(text)

    def sandbox_execute(self, sql: str) -> QueryResult:
        """Bounds only, no guard; for tests of what the engine itself does."""
        self._usable(sql)
        return self._run(sql, sql, time.perf_counter())

    def close(self) -> None:
        """Stop the session (once; later calls do nothing, later queries fail typed)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        with contextlib.suppress(Exception):
            self.spark.stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _usable(self, sql: object) -> None:
        if self._closed:
            raise QueryError("runtime", "the warehouse is closed", str(sql))
        if not isinstance(sql, str):
            raise QueryError("parse", "the SQL must be text", str(sql))

    def rows(self, sql: str) -> list[tuple]:
        """All rows of an internal, bounded query (catalogue, dictionaries); no guard."""
        return [tuple(_naive(v) for v in r) for r in self.spark.sql(sql).collect()]

    def _read_catalog(self, docs: dict | None):
        tables = [(t.name, t.description) for t in self.spark.catalog.listTables()
                  if not t.isTemporary]
        columns = [(name, c.name, c.dataType, c.description) for name, _ in tables
                   for c in self.spark.catalog.listColumns(name)]
        # as on DuckDB: FUNDBOT_CATALOG, else the bundled catalogue only for the sample
        self._docs = docs_for_tables([name for name, _ in tables]) if docs is None else docs
        as_of = self._docs.get("as_of", "")
        if self._docs.get("as_of_sql"):
            as_of = self._first_value(self._docs["as_of_sql"]) or as_of
        catalog = overlay(tables, columns, self._docs, as_of, dialect=self.dialect)
        if not as_of and not self._docs.get("as_of_sql"):  # the data's newest date
            query = as_of_query(catalog.tables)
            catalog.as_of = self._first_value(query) if query else ""
        return catalog

    def _first_value(self, duckdb_sql: str) -> str:
        """The first value of an internal query written in DuckDB SQL, as text ("" if none)."""
        with contextlib.suppress(Exception):  # a user's warehouse may lack the table
            row = self.rows(transpile(duckdb_sql, self.dialect))
            return str(row[0][0]) if row and row[0][0] is not None else ""
        return ""

    def _value_dictionaries(self) -> Any:
        if self._dictionaries is None:
            from schemas.dictionaries import ValueDictionaries

            def fetch(sql: str) -> list[tuple] | None:
                try:
                    return self.rows(sql)
                except Exception as exc:  # noqa: BLE001 - only a missing table is expected
                    if "TABLE_OR_VIEW_NOT_FOUND" in str(exc):
                        return None
                    raise

            with self._lock:
                if self._dictionaries is None:
                    self._dictionaries = ValueDictionaries.from_query(
                        fetch, self._docs.get("dictionaries", []), self.dialect)
        return self._dictionaries

    def _run(self, sql: str, original: str, started: float) -> QueryResult:
        cap, timeout = self.limits.max_rows, self.limits.query_timeout_s
        tag = f"fundbot-query-{uuid.uuid4().hex[:12]}"
        turn = CURRENT_TURN.get()
        tags = [tag] + ([f"fundbot-turn-{turn}"] if turn else [])
        fired, done = threading.Event(), threading.Event()

        def watchdog() -> None:
            if done.wait(timeout):
                return
            fired.set()
            while not done.is_set():  # until the operation ends: it may not be registered yet
                with contextlib.suppress(Exception):
                    self.spark.interruptTag(tag)
                done.wait(_REINTERRUPT_S)

        for t in tags:  # thread-local in the client: other threads' queries are not tagged
            self.spark.addTag(t)
        threading.Thread(target=watchdog, daemon=True, name="fundbot-spark-timer").start()
        try:
            table = self.spark.sql(sql).limit(cap + 1).toArrow()
            columns = list(table.column_names)
            rows = [tuple(_naive(v) for v in r)
                    for r in zip(*(c.to_pylist() for c in table.columns), strict=True)]
            kept = _within_bytes(rows, self.limits.max_result_bytes)
        except Exception as exc:  # noqa: BLE001 - pyspark's errors share no useful base
            raise self._error(exc, fired.is_set(), original) from None
        finally:
            done.set()
            for t in tags:
                self.spark.removeTag(t)
        if rows and not kept:
            raise QueryError("runtime", too_big_message(self.limits), original)
        return QueryResult(columns=columns, rows=kept[:cap],
                           truncated=len(rows) > cap or len(kept) < len(rows),
                           elapsed_ms=(time.perf_counter() - started) * 1000)

    def _error(self, exc: Exception, timed_out: bool, sql: str) -> QueryError:
        text = str(exc)
        if timed_out:
            return QueryError("timeout", timeout_message(self.limits), sql)
        if "OPERATION_CANCELED" in text:  # by its turn's tag, or by an operator
            return QueryError("runtime", "the query was cancelled on the cluster", sql)
        name = type(exc).__name__
        if name == "ParseException":
            kind = "parse"
        elif name == "AnalysisException":
            kind = "binder"
        else:
            kind = "runtime"
        return QueryError(kind, self._clean(text), sql)

    def _clean(self, message: str) -> str:
        """Spark's message without stack traces, SQL context, the URL or its token."""
        lines = message.replace(self._url, redact_url(self._url)).splitlines()
        end = next((i for i, ln in enumerate(lines) if i and _DIAGNOSTICS.match(ln)), len(lines))
        message = _NOISE.sub("", "\n".join(lines[:end]))
        message = _SECRET_PARAM.sub("", message)
        message = " ".join(message.split())
        return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 1] + "…"
