"""The Store port in one SQLite file: conversations per Slack thread, traces, Slack event
de-duplication and feedback.

Concurrency: WAL journal (readers never block the writer), one connection per thread and per
process, a busy timeout so two processes sharing the file (the Slack app and `fundbot chat`)
wait for each other instead of failing, and every write in a single statement or one
`BEGIN IMMEDIATE` transaction, so no reader ever sees half a save.

synchronous=NORMAL: in WAL mode this cannot corrupt the database, and a commit survives a crash
of the process; only an OS crash or power cut can roll back the last few commits. Losing the
last step of a conversation that way costs one repeated question; FULL would add an fsync to
every step of every turn.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Self

from bot.verified_store import VERIFIED_SCHEMA, SqliteVerified
from states.ports import Conversation, Trace

log = logging.getLogger("fundbot.store")

SCHEMA_VERSION = 1
_VOTES: dict[int | str, int] = {1: 1, -1: -1, "1": 1, "+1": 1, "-1": -1, "up": 1, "down": -1}
_FORK_ORPHANS: list[sqlite3.Connection] = []  # see SqliteStore.close
_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    thread_id  TEXT PRIMARY KEY,
    data       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS traces (
    trace_id   TEXT PRIMARY KEY,
    thread_id  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    data       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_by_thread ON traces (thread_id, created_at);
CREATE TABLE IF NOT EXISTS events (
    event_id    TEXT PRIMARY KEY,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    user     TEXT NOT NULL,
    value    INTEGER NOT NULL CHECK (value IN (-1, 1)),
    comment  TEXT,
    at       TEXT NOT NULL,
    UNIQUE (trace_id, user)
);
"""


class StoreError(Exception):
    """The state file could not be used. kind: busy (locked too long), corrupt, io, closed."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


def _now() -> str:
    # One fixed format, so ISO strings sort and compare as text.
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _dumps(data: Any) -> str:
    # default=str: dates and Decimals that slip into answers or traces must not fail a save.
    return json.dumps(data, default=str, ensure_ascii=False, separators=(",", ":"))


class SqliteStore(SqliteVerified):
    """`Store` port plus traces, event claims, feedback and verified queries, in one SQLite
    file."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float = 10.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._conns: list[tuple[int, sqlite3.Connection]] = []  # (pid, connection)
        self._lock = threading.Lock()
        self._closed = False
        with self._errors("open"):
            self._init_schema()

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

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

    def _init_schema(self) -> None:
        conn = self._conn()
        # Persistent in the file; switching needs a moment alone with it, hence the busy wait.
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("SQLite at %s runs in %s mode, not WAL", self.path, mode)
        with self._tx() as c:
            for statement in (_SCHEMA + VERIFIED_SCHEMA).split(";"):
                if statement.strip():
                    c.execute(statement)
            if c.execute("PRAGMA user_version").fetchone()[0] < SCHEMA_VERSION:
                c.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so it never
        fails half-way on a lock upgrade."""
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """sqlite3 exceptions become StoreError values with a message an operator can act on."""
        try:
            yield
        except sqlite3.OperationalError as err:
            text = str(err)
            if "locked" in text or "busy" in text:
                raise StoreError("busy", f"The state store {self.path} stayed locked for over "
                                         f"{self.busy_timeout_s:g} s while trying to {doing}; "
                                         "another process is holding it.") from None
            raise StoreError("io", f"Could not {doing} in the state store {self.path}: "
                                   f"{text}.") from None
        except sqlite3.DatabaseError as err:
            raise StoreError("corrupt", f"The state store {self.path} is damaged ({err}); "
                                        "move it aside to start afresh.") from None

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

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------- conversations

    def load(self, thread_id: str) -> Conversation:
        """The thread's conversation, or a new idle one."""
        with self._errors("load a conversation"):
            row = self._conn().execute(
                "SELECT data, version FROM conversations WHERE thread_id = ?", (thread_id,)
            ).fetchone()
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

        Turns hold only columns and row_count, never result rows, so the file stays small and
        holds no more fund data than the thread already shows."""
        data = _dumps(conversation.to_dict())
        with self._errors("save a conversation"):
            (version,) = self._conn().execute(
                "INSERT INTO conversations (thread_id, data, version, updated_at)"
                " VALUES (?, ?, 1, ?)"
                " ON CONFLICT (thread_id) DO UPDATE SET data = excluded.data,"
                "  version = conversations.version + 1, updated_at = excluded.updated_at"
                " RETURNING version",
                (conversation.thread_id, data, _now()),
            ).fetchone()
        conversation.version = version

    def compare_and_save(self, conversation: Conversation, expected_version: int) -> bool:
        """Save only if the stored version is still `expected_version` (0: no row yet).

        For claiming a thread (status busy) when two messages race; False if someone else
        saved first, in which case nothing is written."""
        data = _dumps(conversation.to_dict())
        with self._errors("save a conversation"), self._tx() as conn:
            row = conn.execute("SELECT version FROM conversations WHERE thread_id = ?",
                               (conversation.thread_id,)).fetchone()
            if (row[0] if row else 0) != expected_version:
                return False
            conn.execute(
                "INSERT OR REPLACE INTO conversations (thread_id, data, version, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (conversation.thread_id, data, expected_version + 1, _now()))
        conversation.version = expected_version + 1
        return True

    # ----------------------------------------------------------------- traces

    def save_trace(self, trace: Trace) -> None:
        """Insert or replace: a trace may be saved again as the turn goes on."""
        data = _dumps(trace.to_dict())
        with self._errors("save a trace"):
            self._conn().execute(
                "INSERT OR REPLACE INTO traces (trace_id, thread_id, created_at, data)"
                " VALUES (?, ?, ?, ?)",
                (trace.trace_id, trace.thread_id, trace.started_at or _now(), data))

    def get_trace(self, trace_id: str) -> Trace | None:
        with self._errors("read a trace"):
            row = self._conn().execute("SELECT data FROM traces WHERE trace_id = ?",
                                       (trace_id,)).fetchone()
        return Trace.from_dict(json.loads(row[0])) if row else None

    def traces_for(self, thread_id: str, limit: int | None = None) -> list[Trace]:
        """The thread's traces, oldest first (the newest `limit` when given)."""
        with self._errors("read traces"):
            rows = self._conn().execute(
                "SELECT data FROM (SELECT data, created_at, rowid AS r FROM traces"
                " WHERE thread_id = ? ORDER BY created_at DESC, r DESC LIMIT ?)"
                " ORDER BY created_at, r",
                (thread_id, -1 if limit is None else limit)).fetchall()
        return [Trace.from_dict(json.loads(data)) for (data,) in rows]

    # ----------------------------------------------------------------- events

    def claim_event(self, event_id: str) -> bool:
        """True the first time an event id is seen, by any process, across restarts.

        Slack re-delivers an event it thinks went unanswered; only the claimant answers it."""
        with self._errors("record a Slack event"):
            cur = self._conn().execute(
                "INSERT OR IGNORE INTO events (event_id, received_at) VALUES (?, ?)",
                (event_id, _now()))
        return cur.rowcount == 1

    def prune_events(self, older_than_s: float = 7 * 86400) -> int:
        """Forget event ids older than Slack's retry window (hours) with a wide margin."""
        cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_s)).isoformat(
            timespec="milliseconds")
        with self._errors("prune Slack events"):
            cur = self._conn().execute("DELETE FROM events WHERE received_at < ?", (cutoff,))
        return cur.rowcount

    # --------------------------------------------------------------- feedback

    def save_feedback(self, trace_id: str, user: str, value: int | str,
                      comment: str | None = None) -> None:
        """One vote per user per answer: a second click replaces the first; a vote without a
        comment keeps the comment given before. value: +1/-1, or "up"/"down" as buttons say."""
        key = value if isinstance(value, int) else str(value).strip().lower()
        vote = None if isinstance(value, bool) else _VOTES.get(key)
        if vote is None:
            raise ValueError(f"feedback value must be +1/-1 or up/down, not {value!r}")
        value = vote
        with self._errors("save feedback"):
            self._conn().execute(
                "INSERT INTO feedback (trace_id, user, value, comment, at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (trace_id, user) DO UPDATE SET value = excluded.value,"
                "  comment = COALESCE(excluded.comment, feedback.comment), at = excluded.at",
                (trace_id, user, value, comment, _now()))

    def feedback_for(self, trace_id: str) -> list[dict[str, Any]]:
        """[{id, trace_id, user, value, comment, at}], oldest first."""
        with self._errors("read feedback"):
            cur = self._conn().execute(
                "SELECT id, trace_id, user, value, comment, at FROM feedback"
                " WHERE trace_id = ? ORDER BY id", (trace_id,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
