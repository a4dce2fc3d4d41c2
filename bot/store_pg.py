"""The store in PostgreSQL, for several bot processes on one shared state (FUNDBOT_STATE=
postgresql://user:password@host:port/db). psycopg 3 with a psycopg_pool connection pool; the
SQL, the migrations and the inbox logic are bot/store.py's, shared with SQLite.

Per-thread serialisation: a session advisory lock on a pooled connection, held for the turn
(a process that dies drops its connection and so its locks). Lease decisions take a
transaction advisory lock, so two processes never split one thread's items between them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from bot.store import TURN_LOCK_TIMEOUT_S, Exec, SqlStore, StoreError, lock_key

log = logging.getLogger("fundbot.store")

_INBOX_LOCK = lock_key("fundbot:inbox")


def describe(url: str) -> str:
    """The server and database of a URL, for messages: never the password."""
    try:
        info = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "PostgreSQL (unreadable FUNDBOT_STATE URL)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"PostgreSQL {info.get('user', '')}{'@' if info.get('user') else ''}{host}:{port}" \
           f"/{info.get('dbname', '')}"


class PostgresStore(SqlStore):
    _ORDER = "seq"

    def __init__(self, url: str, *, pool_size: int = 10, connect_timeout_s: float = 10.0,
                 turn_lock_timeout_s: float = TURN_LOCK_TIMEOUT_S):
        self.where = describe(url)
        self.turn_lock_timeout_s = turn_lock_timeout_s
        self._closed = False
        with self._errors("connect"):
            # One plain connection first: an unreachable server fails now, not after the
            # pool has retried for its whole timeout.
            psycopg.connect(url, connect_timeout=int(connect_timeout_s)).close()
            # Turn locks hold a connection each for a turn, so the pool has room for them and
            # for the statements those turns run.
            self._pool = ConnectionPool(url, min_size=1, max_size=max(4, pool_size),
                                        timeout=connect_timeout_s, open=False,
                                        kwargs={"autocommit": True,
                                                "connect_timeout": int(connect_timeout_s),
                                                "application_name": "fundbot"})
            self._pool.open(wait=True, timeout=connect_timeout_s)
        with self._errors("open the store"):
            self._migrate(1)

    @contextmanager
    def _tx(self) -> Iterator[Exec]:
        if self._closed:
            raise StoreError("closed", f"The state store {self.where} is closed.")
        with self._pool.connection() as conn, conn.transaction():
            yield lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params)

    @contextmanager
    def _auto(self) -> Iterator[Exec]:
        if self._closed:
            raise StoreError("closed", f"The state store {self.where} is closed.")
        with self._pool.connection() as conn:
            yield lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params)

    def _lock_inbox(self, x: Exec) -> None:
        x("SELECT pg_advisory_xact_lock(?)", (_INBOX_LOCK,))

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Driver exceptions become StoreError values: one line, the server, the fix."""
        where = f"the state store {self.where}"
        try:
            yield
        except StoreError:
            raise
        except (PoolTimeout, psycopg.OperationalError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if isinstance(err, psycopg.errors.LockNotAvailable | psycopg.errors.QueryCanceled):
                raise StoreError("busy", f"Could not {doing}: {where} kept a lock too long "
                                         "(another process is holding it); retry.") from None
            if isinstance(err, psycopg.errors.DiskFull):
                raise StoreError("full", f"Could not {doing}: the disk of {where} is full; "
                                         "free space on the database server.") from None
            raise StoreError("unreachable", f"Could not {doing}: {where} is unreachable "
                                            f"({_scrub(first)}); check FUNDBOT_STATE and that "
                                            "the server is up.") from None
        except psycopg.errors.InsufficientPrivilege as err:
            raise StoreError("readonly", f"Could not {doing}: {where} refused "
                                         f"({_scrub(str(err).splitlines()[0])}); grant the "
                                         "fundbot user rights on its database.") from None
        except psycopg.Error as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StoreError("io", f"Could not {doing} in {where}: {_scrub(first)}.") from None

    @contextmanager
    def turn_lock(self, thread_id: str) -> Iterator[None]:
        """A session advisory lock on the thread, on a connection held for the turn."""
        key = lock_key(thread_id)
        with self._errors("lock a thread"):
            conn = self._pool.getconn()
        try:
            with self._errors("lock a thread"):
                conn.execute(f"SET lock_timeout = '{int(self.turn_lock_timeout_s * 1000)}ms'")
                conn.execute("SELECT pg_advisory_lock(%s)", (key,))
            try:
                yield
            finally:
                try:
                    conn.execute("SELECT pg_advisory_unlock(%s)", (key,))
                except psycopg.Error:  # the connection broke: the server freed the lock
                    conn.close()
        finally:
            self._pool.putconn(conn)

    def close(self) -> None:
        self._closed = True
        self._pool.close()


def _scrub(text: str) -> str:
    """Driver messages can quote the connection string; keep passwords out."""
    return re.sub(r"(password=|://[^:/@\s]*:)[^@\s]*", r"\1***", text)
