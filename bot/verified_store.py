"""The VerifiedLibrary port (states/ports.py) on the store, SQLite and PostgreSQL alike: one
table of verified queries, created by migration 3 of bot/store.py's numbered migrations.

Mixed into SqlStore, whose connections, transactions and error handling it uses. Slots are
kept as JSON; ids are small integers so that people can type them (`fundbot verified verify 3`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from states.ports import VerifiedQuery

STATUSES = ("proposed", "verified", "retired")

# Migration 3 of bot/store.py's list: (version, SQLite DDL, PostgreSQL DDL). `key` is a hash
# of question and SQL: the same pair proposed twice is one row (a unique index on the long
# texts themselves would exceed PostgreSQL's index row size).
VERIFIED_MIGRATION = (3, """
CREATE TABLE verified_queries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, question TEXT NOT NULL,
    sql TEXT NOT NULL, data TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('proposed', 'verified', 'retired')),
    updated_at TEXT NOT NULL);
CREATE INDEX verified_by_status ON verified_queries (status, id);
""", """
CREATE TABLE verified_queries (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, key TEXT NOT NULL UNIQUE,
    question TEXT NOT NULL, sql TEXT NOT NULL, data TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('proposed', 'verified', 'retired')),
    updated_at TEXT NOT NULL);
CREATE INDEX verified_by_status ON verified_queries (status, id);
""")
# For `fundbot db migrate-state`: the columns copied and the one that identifies a row (ids
# are the target's own).
VERIFIED_COPY = (["key", "question", "sql", "data", "status", "updated_at"], ["key"])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _key(question: str, sql: str) -> str:
    return hashlib.sha256(f"{question}\0{sql}".encode()).hexdigest()


def _row(row: tuple) -> VerifiedQuery:
    qid, data, status, updated_at = row
    q = VerifiedQuery.from_dict(json.loads(data))
    q.id, q.status, q.updated_at = int(qid), status, updated_at
    return q


class VerifiedRows:
    """Verified-query methods of bot/store.py's SqlStore, in the SQL both engines accept
    (`?` placeholders); uses the store's _auto, _tx and _errors."""

    _COLUMNS = "id, data, status, updated_at"

    def propose_verified(self, query: VerifiedQuery) -> VerifiedQuery:
        """Insert; the same question and SQL again returns the row already kept."""
        if query.status not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        now = _now()
        query.proposed_at = query.proposed_at or now
        key = _key(query.question, query.sql)
        with self._errors("save a verified query"), self._tx() as x:
            row = x("INSERT INTO verified_queries (key, question, sql, data, status, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING RETURNING id",
                    (key, query.question, query.sql, _dump(query), query.status, now)
                    ).fetchone()
            if row is None:  # proposed before (by anyone, in any process)
                return _row(x(f"SELECT {self._COLUMNS} FROM verified_queries WHERE key = ?",
                              (key,)).fetchone())
            query.id, query.updated_at = int(row[0]), now
            x("UPDATE verified_queries SET data = ? WHERE id = ?", (_dump(query), query.id))
        return query

    def get_verified(self, query_id: int) -> VerifiedQuery | None:
        with self._errors("read a verified query"), self._auto() as x:
            row = x(f"SELECT {self._COLUMNS} FROM verified_queries WHERE id = ?",
                    (int(query_id),)).fetchone()
        return _row(row) if row else None

    def list_verified(self, status: str | None = None) -> list[VerifiedQuery]:
        """All queries (or those of one status), oldest first."""
        sql = f"SELECT {self._COLUMNS} FROM verified_queries"
        args: tuple[Any, ...] = ()
        if status:
            sql, args = sql + " WHERE status = ?", (status,)
        with self._errors("read verified queries"), self._auto() as x:
            rows = x(sql + " ORDER BY id", args).fetchall()
        return [_row(r) for r in rows]

    def review_verified(self, query_id: int, status: str, by: str) -> VerifiedQuery:
        if status not in ("verified", "retired"):
            raise ValueError("a review sets the status to verified or retired")
        if not by.strip():
            raise ValueError("a review needs the reviewer's name")
        return self._update_verified(query_id, status, by=by.strip())

    def flag_verified(self, query_id: int, reason: str) -> None:
        self._update_verified(query_id, None, broken=reason or "flagged")

    def _update_verified(self, query_id: int, status: str | None, by: str = "",
                         broken: str | None = None) -> VerifiedQuery:
        now = _now()
        with self._errors("update a verified query"), self._tx() as x:
            row = x(f"SELECT {self._COLUMNS} FROM verified_queries WHERE id = ?",
                    (int(query_id),)).fetchone()
            if row is None:
                raise KeyError(f"no verified query {query_id}")
            q = _row(row)
            if status == "verified":
                q.verified_by, q.verified_at, q.broken = by, now, ""
            elif status == "retired":
                q.retired_by, q.retired_at = by, now
            if broken is not None:
                q.broken = broken
            q.status, q.updated_at = status or q.status, now
            x("UPDATE verified_queries SET data = ?, status = ?, updated_at = ? WHERE id = ?",
              (_dump(q), q.status, now, q.id))
        return q

    def disputed_answers(self, limit: int = 50) -> list[dict[str, Any]]:
        """Thumbs-down votes with a comment, newest first: the traces open for review."""
        with self._errors("read feedback"), self._auto() as x:
            rows = x(
                'SELECT f.trace_id, f."user", f.comment, f.at, t.data FROM feedback f'
                " LEFT JOIN traces t ON t.trace_id = f.trace_id"
                " WHERE f.value = -1 AND COALESCE(f.comment, '') <> ''"
                " ORDER BY f.at DESC, f.id DESC LIMIT ?", (limit,)).fetchall()
        out = []
        for trace_id, user, comment, at, data in rows:
            trace = json.loads(data) if data else {}
            out.append({"trace_id": trace_id, "user": user, "comment": comment, "at": at,
                        "question": trace.get("question", ""),
                        "verified_query": trace.get("verified_query")})
        return out


def _dump(q: VerifiedQuery) -> str:
    return json.dumps(q.to_dict(), default=str, ensure_ascii=False, separators=(",", ":"))
