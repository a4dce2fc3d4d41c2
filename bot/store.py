"""The Store port: conversations per Slack thread, traces, Slack event de-duplication, feedback,
and the durable Slack inbox, in one SQLite file (the embedded default) or in PostgreSQL
(bot/store_pg.py, for several bot processes). `open_store(FUNDBOT_STATE)` picks the back-end.

Both back-ends share this module's SQL (written once, `?` placeholders) and one list of
forward-only migrations, numbered the same for both; a `schema_version` table records which
have run. A store newer than this code is refused, not touched.

One turn at a time per thread: `turn_lock(thread_id)` is held by run_turn from load to final
save. SQLite: a byte-range lock (fcntl) on `<file>.locks` at an offset hashed from the thread,
plus an in-process lock, both freed by the kernel if the process dies. PostgreSQL: a session
advisory lock.

SQLite concurrency: WAL journal (readers never block the writer), one connection per thread
and per process, a busy timeout so two processes sharing the file wait for each other instead
of failing, and every write in a single statement or one `BEGIN IMMEDIATE` transaction, so no
reader ever sees half a save. synchronous=NORMAL: in WAL mode this cannot corrupt the database,
and a commit survives a crash of the process; only an OS crash or power cut can roll back the
last few commits.

Every driver error leaves as a StoreError whose message is one line naming the store and the
fix; nothing here prints a password.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from states.ports import Conversation, StoreError, Trace

__all__ = ["SqliteStore", "StoreError", "InboxItem", "open_store", "SCHEMA_VERSION"]

log = logging.getLogger("fundbot.store")

_VOTES: dict[int | str, int] = {1: 1, -1: -1, "1": 1, "+1": 1, "-1": -1, "up": 1, "down": -1}
_FORK_ORPHANS: list[sqlite3.Connection] = []  # see SqliteStore.close
TURN_LOCK_TIMEOUT_S = 600.0  # a turn waits this long for the thread's previous turn

# (version, SQLite DDL, PostgreSQL DDL): forward-only, never edited once released.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, """
CREATE TABLE IF NOT EXISTS conversations (
    thread_id TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, created_at TEXT NOT NULL,
    data TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS traces_by_thread ON traces (thread_id, created_at);
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT NOT NULL, user TEXT NOT NULL,
    value INTEGER NOT NULL CHECK (value IN (-1, 1)), comment TEXT, at TEXT NOT NULL,
    UNIQUE (trace_id, user));
""", """
CREATE TABLE IF NOT EXISTS conversations (
    thread_id TEXT PRIMARY KEY, data TEXT NOT NULL, version INTEGER NOT NULL,
    updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL, created_at TEXT NOT NULL,
    data TEXT NOT NULL, seq BIGINT GENERATED ALWAYS AS IDENTITY);
CREATE INDEX IF NOT EXISTS traces_by_thread ON traces (thread_id, created_at);
CREATE TABLE IF NOT EXISTS events (event_id TEXT PRIMARY KEY, received_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, trace_id TEXT NOT NULL,
    "user" TEXT NOT NULL, value INTEGER NOT NULL CHECK (value IN (-1, 1)), comment TEXT,
    at TEXT NOT NULL, UNIQUE (trace_id, "user"));
"""),
    (2, """
CREATE TABLE inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
    thread_key TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
    owner TEXT, lease_until REAL, attempts INTEGER NOT NULL DEFAULT 0, placeholder TEXT,
    result TEXT, received_at TEXT NOT NULL, done_at TEXT);
CREATE INDEX inbox_open ON inbox (id) WHERE status <> 'done';
""", """
CREATE TABLE inbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
    thread_key TEXT NOT NULL, body TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'queued',
    owner TEXT, lease_until DOUBLE PRECISION, attempts INTEGER NOT NULL DEFAULT 0,
    placeholder TEXT, result TEXT, received_at TEXT NOT NULL, done_at TEXT);
CREATE INDEX inbox_open ON inbox (id) WHERE status <> 'done';
"""),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# What `fundbot db migrate-state` copies, with the columns that identify a row.
COPY_TABLES: dict[str, tuple[list[str], list[str]]] = {
    "conversations": (["thread_id", "data", "version", "updated_at"], ["thread_id"]),
    "traces": (["trace_id", "thread_id", "created_at", "data"], ["trace_id"]),
    "events": (["event_id", "received_at"], ["event_id"]),
    "feedback": (["trace_id", "user", "value", "comment", "at"], ["trace_id", "user"]),
    "inbox": (["event_id", "thread_key", "body", "status", "owner", "lease_until", "attempts",
               "placeholder", "result", "received_at", "done_at"], ["event_id"]),
}


def _now() -> str:
    # One fixed format, so ISO strings sort and compare as text.
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dumps(data: Any) -> str:
    # default=str: dates and Decimals that slip into answers or traces must not fail a save.
    return json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":"))


def lock_key(name: str) -> int:
    """A stable signed 64-bit key for a name (PostgreSQL advisory locks, SQLite lock bytes)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big",
                          signed=True)


@dataclass
class InboxItem:
    """One Slack delivery in the durable inbox, as a worker leases it."""

    id: int
    event_id: str
    thread_key: str
    body: str
    attempts: int  # including this lease
    placeholder: str | None = None  # a message already posted for it (by an earlier attempt)
    result: str | None = None  # the turn's result (JSON), once the turn has finished


Exec = Callable[..., Any]  # (sql, params=()) -> a DB-API cursor


class SqlStore:
    """The store's logic in SQL both engines accept; subclasses supply connections, errors
    and locks. Placeholders are written `?`."""

    _ORDER = "rowid"  # insertion order of traces
    _QUOTE_USER = '"user"'

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.where!r})"

    where: str = ""  # the file or server, for messages (never a password)

    # subclasses: _tx() (one transaction), _auto() (single statements), _errors(doing),
    # _lock_inbox(x), turn_lock(thread_id), close()

    @contextmanager
    def _tx(self) -> Iterator[Exec]:
        raise NotImplementedError
        yield

    @contextmanager
    def _auto(self) -> Iterator[Exec]:
        raise NotImplementedError
        yield

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        raise NotImplementedError
        yield

    def _lock_inbox(self, x: Exec) -> None:
        """Serialise lease decisions across processes (inside a transaction)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()  # type: ignore[attr-defined]

    # ------------------------------------------------------------- migrations

    def _migrate(self, dialect: int) -> None:
        """Run the migrations this store has not seen, each in its own transaction."""
        with self._tx() as x:
            self._lock_inbox(x)  # one migrator at a time
            x("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
              " applied_at TEXT NOT NULL)")
            current = x("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise StoreError("schema", f"The state store {self.where} has schema version "
                                           f"{current}, newer than this fundbot knows "
                                           f"({SCHEMA_VERSION}); upgrade fundbot.")
            for version, *ddl in MIGRATIONS:
                if version <= current:
                    continue
                for statement in ddl[dialect].split(";"):
                    if statement.strip():
                        x(statement)
                x("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                  (version, _now()))
                log.info("state store %s migrated to schema version %d", self.where, version)

    def schema_version(self) -> int:
        with self._errors("read the schema version"), self._auto() as x:
            return x("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0

    # ---------------------------------------------------------- conversations

    def load(self, thread_id: str) -> Conversation:
        """The thread's conversation, or a new idle one."""
        with self._errors("load a conversation"), self._auto() as x:
            row = x("SELECT data, version FROM conversations WHERE thread_id = ?",
                    (thread_id,)).fetchone()
        if row is None:
            return Conversation(thread_id=thread_id)
        data, version = row
        try:
            conv = Conversation.from_dict(json.loads(data))
        except (ValueError, TypeError, KeyError) as err:
            # A row we cannot read (older format, hand edit) must not wedge the thread forever:
            # start it afresh; the next save overwrites the row.
            log.error("Conversation %s unreadable (%s); starting a new one", thread_id, err)
            return Conversation(thread_id=thread_id, version=version)
        conv.thread_id = thread_id
        conv.version = version
        return conv

    def save(self, conversation: Conversation) -> None:
        """Upsert in one statement; the stored version goes up by one and is written back.

        Turns hold only columns and row_count, never result rows, so the store stays small and
        holds no more fund data than the thread already shows."""
        data = _dumps(conversation.to_dict())
        with self._errors("save a conversation"), self._auto() as x:
            (version,) = x(
                "INSERT INTO conversations (thread_id, data, version, updated_at)"
                " VALUES (?, ?, 1, ?)"
                " ON CONFLICT (thread_id) DO UPDATE SET data = excluded.data,"
                "  version = conversations.version + 1, updated_at = excluded.updated_at"
                " RETURNING version",
                (conversation.thread_id, data, _now()),
            ).fetchone()
        conversation.version = version

    def compare_and_save(self, conversation: Conversation, expected_version: int) -> bool:
        """Save only if the stored version is still `expected_version` (0: no row yet);
        False if someone else saved first, in which case nothing is written."""
        data = _dumps(conversation.to_dict())
        with self._errors("save a conversation"), self._auto() as x:
            if expected_version == 0:
                cur = x("INSERT INTO conversations (thread_id, data, version, updated_at)"
                        " VALUES (?, ?, 1, ?) ON CONFLICT (thread_id) DO NOTHING",
                        (conversation.thread_id, data, _now()))
            else:
                cur = x("UPDATE conversations SET data = ?, version = version + 1,"
                        " updated_at = ? WHERE thread_id = ? AND version = ?",
                        (data, _now(), conversation.thread_id, expected_version))
            won = cur.rowcount == 1
        if won:
            conversation.version = expected_version + 1
        return won

    # ----------------------------------------------------------------- traces

    def save_trace(self, trace: Trace) -> None:
        """Insert or replace: a trace may be saved again as the turn goes on."""
        data = _dumps(trace.to_dict())
        with self._errors("save a trace"), self._auto() as x:
            x("INSERT INTO traces (trace_id, thread_id, created_at, data) VALUES (?, ?, ?, ?)"
              " ON CONFLICT (trace_id) DO UPDATE SET data = excluded.data",
              (trace.trace_id, trace.thread_id, trace.started_at or _now(), data))

    def get_trace(self, trace_id: str) -> Trace | None:
        with self._errors("read a trace"), self._auto() as x:
            row = x("SELECT data FROM traces WHERE trace_id = ?", (trace_id,)).fetchone()
        return Trace.from_dict(json.loads(row[0])) if row else None

    def traces_for(self, thread_id: str, limit: int | None = None) -> list[Trace]:
        """The thread's traces, oldest first (the newest `limit` when given)."""
        with self._errors("read traces"), self._auto() as x:
            rows = x(f"SELECT data, created_at, {self._ORDER} FROM traces WHERE thread_id = ?"
                     f" ORDER BY created_at DESC, {self._ORDER} DESC LIMIT ?",
                     (thread_id, 2**62 if limit is None else limit)).fetchall()
        return [Trace.from_dict(json.loads(data)) for data, *_ in reversed(rows)]

    # ----------------------------------------------------------------- events

    def claim_event(self, event_id: str) -> bool:
        """True the first time an event id is seen, by any process, across restarts."""
        with self._errors("record a Slack event"), self._auto() as x:
            cur = x("INSERT INTO events (event_id, received_at) VALUES (?, ?)"
                    " ON CONFLICT (event_id) DO NOTHING", (event_id, _now()))
            return cur.rowcount == 1

    def prune_events(self, older_than_s: float = 7 * 86400) -> int:
        """Forget event ids (and finished inbox items) older than Slack's retry window
        (hours) with a wide margin."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_s)).isoformat(
            timespec="milliseconds")
        with self._errors("prune Slack events"), self._auto() as x:
            x("DELETE FROM inbox WHERE status = 'done' AND done_at < ?", (cutoff,))
            return x("DELETE FROM events WHERE received_at < ?", (cutoff,)).rowcount

    # --------------------------------------------------------------- feedback

    def save_feedback(self, trace_id: str, user: str, value: int | str,
                      comment: str | None = None) -> None:
        """One vote per user per answer: a second click replaces the first; a vote without a
        comment keeps the comment given before. value: +1/-1, or "up"/"down" as buttons say."""
        key = value if isinstance(value, int) else str(value).strip().lower()
        vote = None if isinstance(value, bool) else _VOTES.get(key)
        if vote is None:
            raise ValueError(f"feedback value must be +1/-1 or up/down, not {value!r}")
        with self._errors("save feedback"), self._auto() as x:
            x('INSERT INTO feedback (trace_id, "user", value, comment, at) VALUES (?, ?, ?, ?, ?)'
              ' ON CONFLICT (trace_id, "user") DO UPDATE SET value = excluded.value,'
              "  comment = COALESCE(excluded.comment, feedback.comment), at = excluded.at",
              (trace_id, user, vote, comment, _now()))

    def feedback_for(self, trace_id: str) -> list[dict[str, Any]]:
        """[{id, trace_id, user, value, comment, at}], oldest first."""
        with self._errors("read feedback"), self._auto() as x:
            cur = x('SELECT id, trace_id, "user", value, comment, at FROM feedback'
                    " WHERE trace_id = ? ORDER BY id", (trace_id,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # ------------------------------------------------------------------ inbox

    def inbox_put(self, event_id: str, thread_key: str, body: str) -> bool:
        """Record a Slack delivery before it is acknowledged; False if the event id was
        delivered before (to any process): the retry is acknowledged and dropped."""
        with self._errors("record a Slack delivery"), self._auto() as x:
            cur = x("INSERT INTO inbox (event_id, thread_key, body, received_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING",
                    (event_id, thread_key, body, _now()))
            return cur.rowcount == 1

    def inbox_lease(self, owner: str, limit: int, lease_s: float) -> list[InboxItem]:
        """Lease up to `limit` items for `owner`, oldest first, keeping each thread's order:
        an item is taken only when every earlier unfinished item of its thread is leased by
        `owner` itself. Expired leases (a dead process's) count as free."""
        now = time.time()
        with self._errors("lease Slack deliveries"):
            with self._auto() as x:  # a read first: an idle poll takes no write lock
                if x("SELECT 1 FROM inbox WHERE status = 'queued' OR (status = 'leased'"
                     " AND lease_until < ?) LIMIT 1", (now,)).fetchone() is None:
                    return []
        with self._errors("lease Slack deliveries"), self._tx() as x:
            self._lock_inbox(x)
            rows = x("SELECT id, thread_key, status, owner, lease_until FROM inbox"
                     " WHERE status <> 'done' ORDER BY id LIMIT 2000").fetchall()
            blocked: set[str] = set()
            taken: list[int] = []
            for item_id, key, status, holder, until in rows:
                if key in blocked:
                    continue
                live = status == "leased" and (until or 0) >= now
                if live and holder == owner:
                    continue  # ours and running; what follows may follow it here
                if live or len(taken) >= limit:
                    blocked.add(key)
                    continue
                taken.append(item_id)
            items = []
            for item_id in taken:
                row = x("UPDATE inbox SET status = 'leased', owner = ?, lease_until = ?,"
                        " attempts = attempts + 1 WHERE id = ? RETURNING id, event_id,"
                        " thread_key, body, attempts, placeholder, result",
                        (owner, now + lease_s, item_id)).fetchone()
                items.append(InboxItem(*row))
            return items

    def inbox_renew(self, owner: str, lease_s: float) -> int:
        """Extend every lease `owner` holds (its heartbeat)."""
        with self._errors("renew Slack delivery leases"), self._auto() as x:
            return x("UPDATE inbox SET lease_until = ? WHERE owner = ? AND status = 'leased'",
                     (time.time() + lease_s, owner)).rowcount

    def inbox_hold(self, event_id: str, owner: str, lease_s: float) -> bool:
        """Renew one lease if `owner` still holds it; False if it expired and someone else
        took the item (then `owner` must not answer it)."""
        with self._errors("renew a Slack delivery lease"), self._auto() as x:
            return x("UPDATE inbox SET lease_until = ? WHERE event_id = ? AND owner = ?"
                     " AND status = 'leased'", (time.time() + lease_s, event_id, owner)
                     ).rowcount == 1

    def inbox_release(self, owner: str, event_ids: list[str] | None = None) -> int:
        """Give leased items back (all of the owner's, or those listed) for anyone to take."""
        sql = ("UPDATE inbox SET status = 'queued', owner = NULL, lease_until = NULL"
               " WHERE owner = ? AND status = 'leased'")
        with self._errors("release Slack deliveries"), self._auto() as x:
            if event_ids is None:
                return x(sql, (owner,)).rowcount
            return sum(x(sql + " AND event_id = ?", (owner, e)).rowcount for e in event_ids)

    def inbox_note(self, event_id: str, *, placeholder: str | None = None,
                   result: str | None = None) -> None:
        """Remember what a worker has done for an item, for whoever finishes it."""
        with self._errors("update a Slack delivery"), self._auto() as x:
            if placeholder is not None:
                x("UPDATE inbox SET placeholder = ? WHERE event_id = ?", (placeholder, event_id))
            if result is not None:
                x("UPDATE inbox SET result = ? WHERE event_id = ?", (result, event_id))

    def inbox_done(self, event_id: str, owner: str | None = None) -> None:
        """Finished; with `owner`, only if that owner still holds it (a process that lost its
        lease must not finish the item for its new holder)."""
        sql = ("UPDATE inbox SET status = 'done', done_at = ?, owner = NULL, lease_until = NULL,"
               " body = '', result = NULL WHERE event_id = ?")
        with self._errors("finish a Slack delivery"), self._auto() as x:
            if owner is None:
                x(sql, (_now(), event_id))
            else:
                x(sql + " AND owner = ?", (_now(), event_id, owner))

    def inbox_counts(self) -> dict[str, int]:
        """Unfinished items by status (queued, leased), for readiness and operators."""
        with self._errors("count Slack deliveries"), self._auto() as x:
            rows = x("SELECT status, COUNT(*) FROM inbox WHERE status <> 'done'"
                     " GROUP BY status").fetchall()
        return {"queued": 0, "leased": 0} | {status: n for status, n in rows}

    # ---------------------------------------------------------------- copying

    def export_rows(self, table: str) -> Iterator[tuple]:
        columns, _ = COPY_TABLES[table]
        cols = ", ".join(f'"{c}"' for c in columns)
        order = "id" if table in ("feedback", "inbox") else columns[0]
        with self._errors(f"read {table}"), self._auto() as x:
            rows = x(f"SELECT {cols} FROM {table} ORDER BY {order}").fetchall()
        yield from rows

    def import_rows(self, table: str, rows: list[tuple]) -> int:
        """Insert rows this store does not have yet (by their key); returns how many."""
        columns, key = COPY_TABLES[table]
        cols = ", ".join(f'"{c}"' for c in columns)
        marks = ", ".join("?" for _ in columns)
        conflict = ", ".join(f'"{c}"' for c in key)
        added = 0
        with self._errors(f"write {table}"), self._tx() as x:
            for row in rows:
                added += x(f"INSERT INTO {table} ({cols}) VALUES ({marks})"
                           f" ON CONFLICT ({conflict}) DO NOTHING", tuple(row)).rowcount
        return added


def copy_state(source: SqlStore, target: SqlStore, batch: int = 500) -> dict[str, int]:
    """Copy every conversation, trace, event id, feedback row and inbox item from one store to
    another; rows the target already has are kept. Returns rows added per table."""
    added: dict[str, int] = {}
    for table in COPY_TABLES:
        added[table] = 0
        rows: list[tuple] = []
        for row in source.export_rows(table):
            rows.append(row)
            if len(rows) >= batch:
                added[table] += target.import_rows(table, rows)
                rows = []
        added[table] += target.import_rows(table, rows)
    return added


# ------------------------------------------------------------------- SQLite


class _ThreadLocks:
    """Per-thread locks on one SQLite store: a byte-range lock on `<file>.locks` (other
    processes; the kernel frees it when a process dies) under an in-process lock (other
    threads: fcntl locks belong to the process). One open descriptor per file and process, as
    closing any descriptor of a file drops all of the process's fcntl locks on it."""

    _registry: dict[tuple[int, str], _ThreadLocks] = {}
    _registry_lock = threading.Lock()

    @classmethod
    def for_path(cls, path: Path) -> _ThreadLocks:
        key = (os.getpid(), str(path.resolve()))
        with cls._registry_lock:
            locks = cls._registry.get(key)
            if locks is None:
                locks = cls._registry[key] = cls(Path(f"{path}.locks"))
            return locks

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        self._guard = threading.Lock()
        self._held: dict[int, tuple[threading.Lock, int]] = {}  # offset -> (lock, users)

    @contextmanager
    def hold(self, name: str, timeout_s: float) -> Iterator[None]:
        offset = lock_key(name) % (1 << 40)  # beyond the file's end is fine for fcntl
        with self._guard:
            lock, users = self._held.get(offset, (threading.Lock(), 0))
            self._held[offset] = (lock, users + 1)
        deadline = time.monotonic() + timeout_s
        try:
            if not lock.acquire(timeout=timeout_s):
                raise TimeoutError
            try:
                pause = 0.002
                while True:
                    try:
                        fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, offset)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise TimeoutError from None
                        time.sleep(pause)
                        pause = min(pause * 2, 0.05)
                try:
                    yield
                finally:
                    fcntl.lockf(self.fd, fcntl.LOCK_UN, 1, offset)
            finally:
                lock.release()
        finally:
            with self._guard:
                lock, users = self._held[offset]
                if users == 1:
                    del self._held[offset]
                else:
                    self._held[offset] = (lock, users - 1)


class SqliteStore(SqlStore):
    """The store in one SQLite file."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 10.0,
                 turn_lock_timeout_s: float = TURN_LOCK_TIMEOUT_S):
        self.path = Path(path)
        self.where = str(self.path)
        self.busy_timeout_s = busy_timeout_s
        self.turn_lock_timeout_s = turn_lock_timeout_s
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []  # (pid, connection)
        self._lock = threading.Lock()
        self._closed = False
        with self._errors("open the store"):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._conn()
            # Persistent in the file; switching needs a moment alone with it.
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite at %s runs in %s mode, not WAL", self.path, mode)
            self._migrate(0)
            if conn.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    # ------------------------------------------------------------ connections

    def _conn(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError("closed", f"The state store {self.path} is closed.")
        conn = getattr(self._local, "conn", None)
        # A connection inherited through fork() must not be used by the child.
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s,
                                   isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                                   check_same_thread=False)  # only so close() can close it
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA synchronous = NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
            with self._lock:
                self._conns.append((os.getpid(), conn))
        return conn

    @contextmanager
    def _tx(self) -> Iterator[Exec]:
        """One write transaction; IMMEDIATE takes the write lock up front, so it never
        fails half-way on a lock upgrade."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn.execute
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _auto(self) -> Iterator[Exec]:
        yield self._conn().execute

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Driver exceptions become StoreError values: one line, the file, the fix."""
        where = f"the state store {self.path}"
        try:
            yield
        except sqlite3.OperationalError as err:
            text = str(err)
            if "locked" in text or "busy" in text:
                raise StoreError("busy", f"{where.capitalize()} stayed locked for over "
                                         f"{self.busy_timeout_s:g} s while trying to {doing}: "
                                         "another process is holding it; stop it or retry."
                                 ) from None
            if "full" in text:
                raise StoreError("full", f"Could not {doing}: the disk holding {where} is full;"
                                         " free some space or point FUNDBOT_STATE elsewhere."
                                 ) from None
            if "readonly" in text or "unable to open" in text or "read-only" in text:
                raise StoreError("readonly", f"Could not {doing}: {where} cannot be written "
                                             f"({text}); make the file and its directory "
                                             "writable or point FUNDBOT_STATE elsewhere."
                                 ) from None
            raise StoreError("io", f"Could not {doing} in {where}: {text}; check the disk "
                                   "and the file's permissions.") from None
        except sqlite3.DatabaseError as err:
            raise StoreError("corrupt", f"{where.capitalize()} is damaged ({err}); move it "
                                        "aside to start afresh, or restore a backup."
                             ) from None
        except OSError as err:  # the directory or the lock file
            raise StoreError("readonly", f"Could not {doing}: {where} is not usable "
                                         f"({err.strerror or err}); make its directory "
                                         "writable or point FUNDBOT_STATE elsewhere.") from None

    @contextmanager
    def turn_lock(self, thread_id: str) -> Iterator[None]:
        """Hold the thread against every other turn, in this process and in others."""
        with self._errors("lock a thread"):
            locks = _ThreadLocks.for_path(self.path)
        try:
            with locks.hold(thread_id, self.turn_lock_timeout_s):
                yield
        except TimeoutError:
            raise StoreError("busy", f"A turn in thread {thread_id} waited over "
                                     f"{self.turn_lock_timeout_s:g} s for the previous one "
                                     f"(state store {self.path}); it may be stuck.") from None

    def close(self) -> None:
        """Close every thread's connection; the store cannot be used afterwards."""
        with self._lock:
            self._closed = True
            conns, self._conns = self._conns, []
        for pid, conn in conns:
            if pid != os.getpid():
                # Inherited through fork: closing (or freeing) it here could checkpoint or
                # unlink the parent's WAL, so it is kept referenced and left alone.
                _FORK_ORPHANS.append(conn)
                continue
            try:
                conn.close()
            except sqlite3.Error:
                pass


def open_store(where: str, *, pool_size: int = 10) -> SqlStore:
    """FUNDBOT_STATE: a file path keeps SQLite; `postgresql://…` selects PostgreSQL."""
    if where.startswith(("postgresql://", "postgres://")):
        from bot.store_pg import PostgresStore

        return PostgresStore(where, pool_size=pool_size)
    return SqliteStore(where)
