"""The store on both back-ends (an SQLite file and a real PostgreSQL server, see
tests/pg_fixture.py): round trips, restarts, threads and processes sharing one store,
per-thread turn locks, migrations, one-line faults, copying between stores, the inbox."""

from __future__ import annotations

import multiprocessing
import os
import sqlite3
import threading
import time
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bot.store import SqliteStore, SqlStore, StoreError, open_store
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
def store(state_url: str):
    s = open_store(state_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path):
    s = SqliteStore(tmp_path / "nested" / "state.sqlite3")
    yield s
    s.close()


def raw(store: SqlStore, sql: str) -> None:
    """A statement from outside the store's API (a hand edit, another tool)."""
    with store._auto() as x:
        x(sql)


# ------------------------------------------------------------------ round trips


def test_new_thread_is_idle(store: SqlStore) -> None:
    conv = store.load("C9:nothing-yet")
    assert (conv.thread_id, conv.status, conv.pending, conv.history, conv.version) == (
        "C9:nothing-yet", "idle", None, [], 0)


def test_conversation_round_trip_and_version(store: SqlStore) -> None:
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


def test_odd_values_are_saved_as_text(store: SqlStore) -> None:
    conv = conversation()
    conv.history[0].at = date(2026, 3, 31)  # type: ignore[assignment]
    conv.pending.facts.append(Decimal("12.50"))  # type: ignore[union-attr, arg-type]
    store.save(conv)
    loaded = store.load(conv.thread_id)
    assert loaded.history[0].at == "2026-03-31"
    assert loaded.pending is not None and loaded.pending.facts[-1] == "12.50"


def test_restart_sees_everything(state_url: str) -> None:
    path = state_url
    first = open_store(path)
    first.save(conversation("T1"))
    first.save_trace(trace("tr-1", "T1"))
    assert first.claim_event("Ev1")
    first.save_feedback("tr-1", "U1", 1)
    first.close()

    second = open_store(path)
    try:
        assert second.schema_version() == 2
        assert second.load("T1").pending.options == ["Adam Brooks", "Adam Levin"]  # type: ignore[union-attr]
        assert second.get_trace("tr-1") == trace("tr-1", "T1")
        assert second.claim_event("Ev1") is False
        assert [f["value"] for f in second.feedback_for("tr-1")] == [1]
    finally:
        second.close()


def test_wal_mode_is_on(sqlite_store: SqliteStore) -> None:
    with sqlite3.connect(sqlite_store.path) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert other.execute("PRAGMA user_version").fetchone()[0] >= 1


def test_traces_in_order_with_limit(store: SqlStore) -> None:
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


def test_feedback_round_trip(store: SqlStore) -> None:
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


def test_unreadable_row_starts_afresh(store: SqlStore) -> None:
    store.save(conversation("T"))
    raw(store, "UPDATE conversations SET data = '{not json' WHERE thread_id = 'T'")
    conv = store.load("T")
    assert conv.status == "idle" and conv.history == [] and conv.version == 1
    store.save(conv)
    assert store.load("T").version == 2


def test_compare_and_save_lets_one_racer_win(store: SqlStore) -> None:
    a, b = store.load("T"), store.load("T")
    a.status = b.status = "busy"
    assert store.compare_and_save(a, 0) is True and a.version == 1
    assert store.compare_and_save(b, 0) is False and b.version == 0
    assert store.load("T").version == 1


def test_closed_store_says_so(state_url: str) -> None:
    s = open_store(state_url)
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


def test_claim_event_once_across_instances(state_url: str) -> None:
    a, b = open_store(state_url), open_store(state_url)
    try:
        assert a.claim_event("Ev123") is True
        assert b.claim_event("Ev123") is False
        assert a.claim_event("Ev123") is False
        assert b.claim_event("Ev124") is True
    finally:
        a.close()
        b.close()


def test_concurrent_saves_from_8_threads(store: SqlStore) -> None:
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
    store = open_store(path)
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


def test_two_processes_share_one_store(state_url: str) -> None:
    path = state_url
    open_store(path).close()  # the schema exists before the race, as in production
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
    store = open_store(path)
    try:
        counts = {t: len(list(store.export_rows(t))) for t in ("conversations", "events",
                                                                "feedback")}
        assert counts == {"conversations": 2 * count + 1, "events": count,
                          "feedback": 2 * count}
        assert store.load("shared").version == 2 * count  # no lost update
        assert store.load(f"p1-{count - 1}").history[0].answer == "$12.5M"
    finally:
        store.close()
    if not path.startswith("postgresql"):
        with sqlite3.connect(path) as db:
            assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert sorted(winners) == sorted(f"ev-{i}" for i in range(count))  # no event twice


def _forked_child(store: SqliteStore, queue: multiprocessing.Queue) -> None:
    store.save(conversation("from-child"))
    queue.put(store.load("from-parent").version)
    store.close()


def test_store_inherited_through_fork_opens_its_own_connection(sqlite_store: SqliteStore
                                                                ) -> None:
    store = sqlite_store
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


# --------------------------------------------------------- one turn per thread


def test_turn_lock_serialises_a_thread_across_instances(state_url: str) -> None:
    """Two stores on one state (as two processes have): the second turn of a thread waits
    for the first; another thread does not."""
    a, b = open_store(state_url), open_store(state_url)
    entered = threading.Event()
    order: list[str] = []
    try:
        with a.turn_lock("T"):
            def second() -> None:
                with b.turn_lock("T"):
                    order.append("second")
                    entered.set()
            t = threading.Thread(target=second)
            t.start()
            with b.turn_lock("other thread"):  # not held up by T
                order.append("other")
            assert not entered.wait(0.3)  # still waiting for T
            order.append("first done")
        assert entered.wait(30)
        t.join(timeout=30)
        assert order == ["other", "first done", "second"]
    finally:
        a.close()
        b.close()


def _turns_in_one_thread(path: str, n: int, count: int, go: Any) -> None:
    """A child process: `count` read-modify-write turns on one thread, under the turn lock."""
    store = open_store(path)
    try:
        go.wait(timeout=30)
        for i in range(count):
            with store.turn_lock("shared-thread"):
                conv = store.load("shared-thread")
                time.sleep(0.005)  # a turn takes time between load and save
                conv.history.append(Turn(question=f"p{n}-{i}", state="answered"))
                store.save(conv)
    finally:
        store.close()


def test_concurrent_turns_of_one_thread_keep_every_turn(state_url: str) -> None:
    """Issue 10: two processes answering in one thread lost a turn; with the lock, none."""
    open_store(state_url).close()
    ctx = multiprocessing.get_context("spawn")
    go, count = ctx.Barrier(2), 20
    procs = [ctx.Process(target=_turns_in_one_thread, args=(state_url, n, count, go))
             for n in (0, 1)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    store = open_store(state_url)
    try:
        questions = [t.question for t in store.load("shared-thread").history]
    finally:
        store.close()
    assert sorted(questions) == sorted(f"p{n}-{i}" for n in (0, 1) for i in range(count))


def test_a_thread_held_too_long_is_a_busy_error(state_url: str) -> None:
    holder, waiter = open_store(state_url), open_store(state_url)
    waiter.turn_lock_timeout_s = 0.3
    try:
        with holder.turn_lock("T"), pytest.raises(StoreError) as info:
            with waiter.turn_lock("T"):
                pass
        assert info.value.kind == "busy" and "thread T" in info.value.message or \
            "lock" in info.value.message
        with waiter.turn_lock("T"):  # free again
            pass
    finally:
        holder.close()
        waiter.close()


# ------------------------------------------------------------------- migrations


V1_SQLITE = """
CREATE TABLE conversations (thread_id TEXT PRIMARY KEY, data TEXT NOT NULL,
    version INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE traces (trace_id TEXT PRIMARY KEY, thread_id TEXT NOT NULL,
    created_at TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE events (event_id TEXT PRIMARY KEY, received_at TEXT NOT NULL);
CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, trace_id TEXT NOT NULL,
    user TEXT NOT NULL, value INTEGER NOT NULL, comment TEXT, at TEXT NOT NULL,
    UNIQUE (trace_id, user));
INSERT INTO conversations VALUES ('T', '{"thread_id": "T", "status": "idle"}', 3, 'x');
PRAGMA user_version = 1;
"""


def test_a_file_from_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(V1_SQLITE)
    store = SqliteStore(path)
    try:
        assert store.schema_version() == 2
        assert store.load("T").version == 3  # the old rows are kept
        assert store.inbox_put("Ev1", "T", "{}") is True  # the new table exists
    finally:
        store.close()


def test_migrations_are_recorded_once_and_a_newer_store_is_refused(state_url: str) -> None:
    open_store(state_url).close()
    store = open_store(state_url)  # a second start migrates nothing
    try:
        with store._auto() as x:
            versions = [v for (v,) in x("SELECT version FROM schema_version ORDER BY version")]
        assert versions == [1, 2]
        raw(store, "INSERT INTO schema_version (version, applied_at) VALUES (99, 'later')")
    finally:
        store.close()
    with pytest.raises(StoreError) as info:
        open_store(state_url)
    assert info.value.kind == "schema" and "upgrade fundbot" in info.value.message
    assert "\n" not in info.value.message


# ------------------------------------------------------------ one-line faults


def test_read_only_directory_is_one_line_naming_the_file(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    locked.mkdir()
    path = locked / "sub" / "state.sqlite3"
    locked.chmod(0o500)
    try:
        if os.geteuid() == 0:  # root writes anywhere: a file in the way of the directory
            locked.chmod(0o700)
            (locked / "sub").write_text("not a directory")
        with pytest.raises(StoreError) as info:
            SqliteStore(path)
    finally:
        locked.chmod(0o700)
    message = info.value.message
    assert str(path) in message and "FUNDBOT_STATE" in message and "\n" not in message


def test_corrupt_file_is_one_line_with_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite3"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(StoreError) as info:
        SqliteStore(path)
    assert info.value.kind == "corrupt" and str(path) in info.value.message
    assert "move it aside" in info.value.message


def test_full_disk_is_one_line_with_the_fix(sqlite_store: SqliteStore) -> None:
    sqlite_store.save(conversation("T"))
    pages = sqlite_store._conn().execute("PRAGMA page_count").fetchone()[0]
    sqlite_store._conn().execute(f"PRAGMA max_page_count = {pages}")  # no room to grow
    big = conversation("T2")
    big.history[0].answer = "x" * 200_000
    with pytest.raises(StoreError) as info:
        sqlite_store.save(big)
    assert info.value.kind == "full" and str(sqlite_store.path) in info.value.message
    assert "free some space" in info.value.message


def test_unreachable_postgres_is_one_line_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://fundbot:s3cret-PW@/nodb?host={tmp_path}&port=1"
    with pytest.raises(StoreError) as info:
        open_store(url)
    message = info.value.message
    assert info.value.kind == "unreachable" and "FUNDBOT_STATE" in message
    assert "s3cret-PW" not in message and "\n" not in message and "nodb" in message


# -------------------------------------------------------------------- copying


def test_migrate_state_copies_every_row_both_ways(tmp_path: Path, pg_url: str) -> None:
    from bot.store import copy_state

    src = SqliteStore(tmp_path / "src.sqlite3")
    pg = open_store(pg_url)
    back = SqliteStore(tmp_path / "back.sqlite3")
    try:
        src.save(conversation("T1"))
        src.save(conversation("T1"))  # version 2
        for i, at in enumerate(["2026-01-02", "2026-01-01"]):
            src.save_trace(trace(f"tr-{i}", "T1", at))
        src.claim_event("Ev1")
        src.save_feedback("tr-0", "U1", 1, "good")
        src.save_feedback("tr-0", "U2", -1)
        src.inbox_put("Ev2", "C1:1", '{"event": {}}')
        assert copy_state(src, pg) == {"conversations": 1, "traces": 2, "events": 1,
                                       "feedback": 2, "inbox": 1}
        assert copy_state(src, pg)["conversations"] == 0  # a second run adds nothing
        copy_state(pg, back)
        for store in (pg, back):
            assert store.load("T1") == src.load("T1") and store.load("T1").version == 2
            assert [t.trace_id for t in store.traces_for("T1")] == ["tr-1", "tr-0"]
            assert store.claim_event("Ev1") is False
            assert [(f["user"], f["value"], f["comment"]) for f in
                    store.feedback_for("tr-0")] == [("U1", 1, "good"), ("U2", -1, None)]
            assert [i.event_id for i in store.inbox_lease("me", 5, 30)] == ["Ev2"]
    finally:
        src.close()
        pg.close()
        back.close()


# ---------------------------------------------------------------------- inbox


def test_inbox_deduplicates_event_ids_across_instances(state_url: str) -> None:
    a, b = open_store(state_url), open_store(state_url)
    try:
        assert a.inbox_put("Ev1", "C:1", "{}") is True
        assert b.inbox_put("Ev1", "C:1", "{}") is False
        assert a.inbox_counts() == {"queued": 1, "leased": 0}
    finally:
        a.close()
        b.close()


def test_inbox_leases_keep_each_threads_order_between_owners(store: SqlStore) -> None:
    for i, key in enumerate(["A", "A", "B", "A", "C"]):
        store.inbox_put(f"Ev{i}", key, "{}")
    first = store.inbox_lease("p1", limit=2, lease_s=30)
    assert [i.event_id for i in first] == ["Ev0", "Ev1"]  # A's first two
    # p2 may not take A's third while p1 holds A's earlier ones; B and C are free
    assert [i.event_id for i in store.inbox_lease("p2", 10, 30)] == ["Ev2", "Ev4"]
    assert [i.event_id for i in store.inbox_lease("p1", 10, 30)] == ["Ev3"]  # follows its own
    assert store.inbox_lease("p2", 10, 30) == []
    for item in first:
        store.inbox_done(item.event_id)
    assert store.inbox_counts() == {"queued": 0, "leased": 3}


def test_expired_leases_are_taken_over_with_what_was_done(store: SqlStore) -> None:
    store.inbox_put("Ev1", "A", '{"q": 1}')
    store.inbox_put("Ev2", "A", '{"q": 2}')
    dead = store.inbox_lease("dead", 10, lease_s=0.2)
    store.inbox_note("Ev1", placeholder="1700.1")
    store.inbox_note("Ev1", result='{"answer": "42"}')
    assert store.inbox_lease("alive", 10, 30) == []  # still leased
    live = store.inbox_lease("live-owner", 10, 30)
    assert live == []
    assert store.inbox_renew("dead", 0.2) == 2
    time.sleep(0.5)  # the dead owner stops renewing
    taken = store.inbox_lease("alive", 10, 30)
    assert [(i.event_id, i.attempts, i.placeholder, i.result) for i in taken] == [
        ("Ev1", 2, "1700.1", '{"answer": "42"}'), ("Ev2", 2, None, None)]
    assert len(dead) == 2 and store.inbox_release("alive", ["Ev2"]) == 1
    assert [i.event_id for i in store.inbox_lease("other", 10, 30)] == []  # Ev1 still alive's
    store.inbox_done("Ev1")
    assert [i.event_id for i in store.inbox_lease("other", 10, 30)] == ["Ev2"]


# ------------------------------------------------------- a turn and its store


def _turn_deps(store: Any, answer: str = "We hold 400 companies."):
    from states.machine import Deps
    from states.ports import QueryResult
    from tests.core_fakes import FakeWarehouse, ScriptedLLM

    sql = "SELECT count(*) AS n FROM companies"
    llm = ScriptedLLM().sql(sql).text(answer)
    return Deps(llm=llm, warehouse=FakeWarehouse({sql: QueryResult(["n"], [(400,)])}),
                store=store, today=date(2026, 10, 15))


class _FailingSaves:
    """A real store whose next `failures` conversation saves fail as a full disk would."""

    def __init__(self, store: SqlStore, failures: int):
        self.store, self.failures = store, failures

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    def save(self, conversation: Conversation) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("full", "Could not save a conversation: the disk is full.")
        self.store.save(conversation)


def test_a_failed_final_save_is_retried_once(sqlite_store: SqliteStore) -> None:
    from states.machine import run_turn

    r = run_turn(_turn_deps(_FailingSaves(sqlite_store, 1)), "T", "how many companies?")
    assert r.state == "answered" and r.warning is None and "⚠️" not in (r.answer or "")
    assert [t.answer for t in sqlite_store.load("T").history] == ["We hold 400 companies."]


def test_an_answer_that_cannot_be_saved_is_still_delivered_with_a_warning(
        sqlite_store: SqliteStore) -> None:
    from states.machine import run_turn

    pages = sqlite_store._conn().execute("PRAGMA page_count").fetchone()[0]
    sqlite_store._conn().execute(f"PRAGMA max_page_count = {pages + 8}")
    filler = conversation("filler")
    filler.history[0].answer = "f" * 500
    with pytest.raises(StoreError):  # the disk fills up
        for i in range(1000):
            filler.thread_id = f"filler-{i}"
            sqlite_store.save(filler)
    deps = _turn_deps(sqlite_store, "We hold 400 companies. " + "x" * 100_000)  # long
    r = run_turn(deps, "T", "how many companies?")
    assert r.state == "answered" and r.answer.startswith("We hold 400 companies.")
    assert r.warning and "could not be saved" in r.warning and "disk" in r.warning
    assert r.answer.endswith(r.warning)  # every edge shows it with the answer


def test_an_unusable_store_fails_the_turn_in_one_line(tmp_path: Path) -> None:
    from states.machine import run_turn

    store = SqliteStore(tmp_path / "state.sqlite3")
    store.close()
    r = run_turn(_turn_deps(store), "T", "how many companies?")
    assert r.state == "failed" and r.error_kind == "store"
    assert str(tmp_path / "state.sqlite3") in r.answer and "\n" not in r.answer


# ------------------------------------------------------------ the command line


def test_cli_store_faults_are_one_line_not_a_traceback(tmp_path: Path, monkeypatch, capsys
                                                       ) -> None:
    from bot.cli import main

    bad = tmp_path / "state.sqlite3"
    bad.write_bytes(b"garbage" * 1000)
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("FUNDBOT_STATE", str(bad))
    assert main(["trace", "abc"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("fundbot: ") and str(bad) in err and len(err.splitlines()) == 1
    assert "Traceback" not in err


def test_cli_migrate_state_to_postgres(tmp_path: Path, pg_url: str, capsys) -> None:
    from bot.cli import main

    src = SqliteStore(tmp_path / "src.sqlite3")
    src.save(conversation("T1"))
    src.save_trace(trace("tr-1", "T1"))
    src.close()
    assert main(["db", "migrate-state", "--from", str(tmp_path / "src.sqlite3"),
                 "--to", pg_url]) == 0
    out = capsys.readouterr().out
    assert "conversations 1" in out and "traces 1" in out
    with open_store(pg_url) as pg:
        assert pg.load("T1").pending.options == ["Adam Brooks", "Adam Levin"]  # type: ignore


def test_an_owner_that_lost_its_lease_can_neither_hold_nor_finish_the_item(store: SqlStore
                                                                          ) -> None:
    store.inbox_put("Ev1", "A", "{}")
    assert store.inbox_lease("stalled", 10, lease_s=0.1)
    assert store.inbox_hold("Ev1", "stalled", 0.1) is True
    time.sleep(0.3)  # the stalled process misses its heartbeat
    assert [i.event_id for i in store.inbox_lease("other", 10, 30)] == ["Ev1"]
    assert store.inbox_hold("Ev1", "stalled", 30) is False  # it must not answer now
    store.inbox_done("Ev1", "stalled")  # nor finish it for the new holder
    assert store.inbox_counts() == {"queued": 0, "leased": 1}
    assert store.inbox_hold("Ev1", "other", 30) is True
    store.inbox_done("Ev1", "other")
    assert store.inbox_counts() == {"queued": 0, "leased": 0}
