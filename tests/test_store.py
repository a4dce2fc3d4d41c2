"""SqliteStore on real files: round trips, restarts, threads and processes sharing one file."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.store import SqliteStore, StoreError
from states.ports import Conversation, LLMCall, Pending, SqlAttempt, Step, Trace, Turn


def conversation(thread_id: str = "C1:1700000000.000100") -> Conversation:
    return Conversation(
        thread_id=thread_id,
        status="clarify",
        pending=Pending(question="how much did adam invest?", prompt="Which Adam?",
                        options=["Adam Brooks", "Adam Levin"], kind="entity", mention="adam",
                        facts=["fund = Fund III"]),
        history=[Turn(question="total invested in databricks", state="answered",
                      sql="SELECT SUM(amount) FROM investments", answer="$12.5M",
                      columns=["total"], row_count=1, trace_id="t0",
                      at="2026-01-02T03:04:05+00:00")],
    )


def trace(trace_id: str, thread_id: str = "C1:1", started_at: str = "2026-01-01T00:00:00"
          ) -> Trace:
    return Trace(trace_id=trace_id, thread_id=thread_id, question="q?", started_at=started_at,
                 steps=[Step(state="understand", ms=12.5, event="sql")],
                 sql_attempts=[SqlAttempt(sql="SELECT 1", ok=True, rows=1, ms=0.4)],
                 llm_calls=[LLMCall(purpose="understand", ms=800.0, prompt_tokens=900)],
                 final_state="answered", answer="one")


@pytest.fixture
def store(tmp_path: Path):
    s = SqliteStore(tmp_path / "nested" / "state.sqlite3")
    yield s
    s.close()


# ------------------------------------------------------------------ round trips


def test_new_thread_is_idle(store: SqliteStore) -> None:
    conv = store.load("C9:nothing-yet")
    assert (conv.thread_id, conv.status, conv.pending, conv.history, conv.version) == (
        "C9:nothing-yet", "idle", None, [], 0)


def test_conversation_round_trip_and_version(store: SqliteStore) -> None:
    conv = conversation()
    store.save(conv)
    assert conv.version == 1
    loaded = store.load(conv.thread_id)
    assert loaded == conv
    loaded.status = "idle"
    loaded.pending = None
    store.save(loaded)
    assert loaded.version == 2
    again = store.load(conv.thread_id)
    assert again.status == "idle" and again.pending is None and again.version == 2
    assert again.history[0].sql == "SELECT SUM(amount) FROM investments"


def test_odd_values_are_saved_as_text(store: SqliteStore) -> None:
    conv = conversation()
    conv.history[0].at = date(2026, 3, 31)  # type: ignore[assignment]
    conv.pending.facts.append(Decimal("12.50"))  # type: ignore[union-attr, arg-type]
    store.save(conv)
    loaded = store.load(conv.thread_id)
    assert loaded.history[0].at == "2026-03-31"
    assert loaded.pending is not None and loaded.pending.facts[-1] == "12.50"


def test_restart_sees_everything(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    first = SqliteStore(path)
    first.save(conversation("T1"))
    first.save_trace(trace("tr-1", "T1"))
    assert first.claim_event("Ev1")
    first.save_feedback("tr-1", "U1", 1)
    first.close()

    second = SqliteStore(path)
    try:
        assert second.load("T1").pending.options == ["Adam Brooks", "Adam Levin"]  # type: ignore[union-attr]
        assert second.get_trace("tr-1") == trace("tr-1", "T1")
        assert second.claim_event("Ev1") is False
        assert [f["value"] for f in second.feedback_for("tr-1")] == [1]
    finally:
        second.close()


def test_wal_mode_is_on(store: SqliteStore) -> None:
    with sqlite3.connect(store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_traces_in_order_with_limit(store: SqliteStore) -> None:
    for i, at in enumerate(["2026-01-03", "2026-01-01", "2026-01-02"]):
        store.save_trace(trace(f"tr-{i}", "T", at))
    store.save_trace(trace("elsewhere", "U"))
    assert [t.trace_id for t in store.traces_for("T")] == ["tr-1", "tr-2", "tr-0"]
    assert [t.trace_id for t in store.traces_for("T", limit=2)] == ["tr-2", "tr-0"]
    assert store.get_trace("missing") is None
    updated = trace("tr-1", "T", "2026-01-01")
    updated.answer = "revised"
    store.save_trace(updated)  # a trace saved again replaces itself
    assert store.get_trace("tr-1").answer == "revised"  # type: ignore[union-attr]
    assert len(store.traces_for("T")) == 3


def test_feedback_round_trip(store: SqliteStore) -> None:
    store.save_feedback("tr-1", "U1", 1)
    store.save_feedback("tr-1", "U2", -1, "wrong fund")
    store.save_feedback("tr-1", "U1", -1, "actually, stale numbers")  # changed their mind
    store.save_feedback("tr-1", "U2", -1)  # a repeated click keeps the comment
    store.save_feedback("tr-2", "U1", "up")  # as Slack buttons name them
    store.save_feedback("tr-2", "U2", "down")
    rows = store.feedback_for("tr-1")
    assert [(r["user"], r["value"], r["comment"]) for r in rows] == [
        ("U1", -1, "actually, stale numbers"), ("U2", -1, "wrong fund")]
    assert all(r["trace_id"] == "tr-1" and r["at"] for r in rows)
    assert [r["value"] for r in store.feedback_for("tr-2")] == [1, -1]
    for bad in (5, 0, "meh", True):
        with pytest.raises(ValueError):
            store.save_feedback("tr-1", "U3", bad)  # type: ignore[arg-type]
    assert len(store.feedback_for("tr-1")) == 2


def test_unreadable_row_starts_afresh(store: SqliteStore) -> None:
    store.save(conversation("T"))
    with sqlite3.connect(store.path) as other:
        other.execute("UPDATE conversations SET data = '{not json' WHERE thread_id = 'T'")
    conv = store.load("T")
    assert conv.status == "idle" and conv.history == [] and conv.version == 1
    store.save(conv)
    assert store.load("T").version == 2


def test_compare_and_save_lets_one_racer_win(store: SqliteStore) -> None:
    a, b = store.load("T"), store.load("T")
    a.status = b.status = "busy"
    assert store.compare_and_save(a, 0) is True and a.version == 1
    assert store.compare_and_save(b, 0) is False and b.version == 0
    assert store.load("T").version == 1


def test_closed_store_says_so(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.sqlite3")
    s.close()
    with pytest.raises(StoreError) as info:
        s.load("T")
    assert info.value.kind == "closed"


def test_lock_held_too_long_is_busy_error(tmp_path: Path) -> None:
    s = SqliteStore(tmp_path / "s.sqlite3", busy_timeout_s=0.2)
    holder = sqlite3.connect(s.path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreError) as info:
            s.save(conversation("T"))
        assert info.value.kind == "busy" and "locked" in info.value.message
        assert time.monotonic() - started < 8
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    s.save(conversation("T"))  # and it recovers once the lock is gone
    assert s.load("T").version == 1
    s.close()


# ---------------------------------------------------------------- concurrency


def test_claim_event_once_across_instances(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    a, b = SqliteStore(path), SqliteStore(path)
    try:
        assert a.claim_event("Ev123") is True
        assert b.claim_event("Ev123") is False
        assert a.claim_event("Ev123") is False
        assert b.claim_event("Ev124") is True
    finally:
        a.close()
        b.close()


def test_concurrent_saves_from_8_threads(store: SqliteStore) -> None:
    per_thread, errors, claims = 25, [], []
    start = threading.Barrier(8)

    def work(n: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.save(conversation(f"own-{n}"))
                store.save(conversation("shared"))  # every save bumps the same row
                claims.append((f"ev-{i}", store.claim_event(f"ev-{i}")))
                store.save_trace(trace(f"tr-{n}-{i}", f"own-{n}"))
        except Exception as err:  # noqa: BLE001  (asserted empty below, with the error)
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert store.load("shared").version == 8 * per_thread
    assert all(store.load(f"own-{n}").version == per_thread for n in range(8))
    winners = [ev for ev, won in claims if won]
    assert sorted(winners) == sorted(f"ev-{i}" for i in range(per_thread))  # each exactly once
    assert sum(len(store.traces_for(f"own-{n}")) for n in range(8)) == 8 * per_thread


def _process_worker(path: str, n: int, count: int, go: Any, results: Any) -> None:
    """Runs in a child process: its own store on the shared file, started with the other."""
    store = SqliteStore(path)
    won = []
    try:
        go.wait(timeout=30)  # both processes write at the same time, not one after the other
        for i in range(count):
            store.save(conversation(f"p{n}-{i}"))
            store.save(conversation("shared"))
            if store.claim_event(f"ev-{i}"):
                won.append(f"ev-{i}")
            store.save_feedback(f"tr-{i}", f"U{n}", 1 if n % 2 else -1)
    finally:
        store.close()
    results.put(won)


def test_two_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "state.sqlite3")
    SqliteStore(path).close()  # the schema exists before the race, as in production
    count = 200
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_process_worker, args=(path, n, count, go, results))
             for n in (0, 1)]
    for p in procs:
        p.start()
    winners = results.get(timeout=60) + results.get(timeout=60)
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 2 * count + 1
        assert db.execute("SELECT COUNT(*) FROM events").fetchone()[0] == count
        assert db.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 2 * count
    store = SqliteStore(path)
    try:
        assert store.load("shared").version == 2 * count  # no lost update
        assert store.load(f"p1-{count - 1}").history[0].answer == "$12.5M"
    finally:
        store.close()
    assert sorted(winners) == sorted(f"ev-{i}" for i in range(count))  # no event twice


def _forked_child(store: SqliteStore, queue: multiprocessing.Queue) -> None:
    store.save(conversation("from-child"))
    queue.put(store.load("from-parent").version)
    store.close()


def test_store_inherited_through_fork_opens_its_own_connection(store: SqliteStore) -> None:
    store.save(conversation("from-parent"))  # the parent's connection now exists
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_forked_child, args=(store, queue))
    child.start()
    child.join(timeout=30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) == 1
    assert store.load("from-child").version == 1
    store.save(conversation("from-parent"))  # the parent's connection still works
    assert store.load("from-parent").version == 2
