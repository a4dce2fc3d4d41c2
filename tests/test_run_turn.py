"""run_turn's own duties around the machine: the store's turn lock, a store that cannot be
reached, what the caller hands in (user, trace id, progress), which thread state resumes a
clarification, the query tag, and how the turn's time is measured and logged."""

from __future__ import annotations

import json
import logging
import re
import time
from contextlib import contextmanager
from datetime import date

from states.machine import Deps, S, build_machine, run_turn
from states.ports import CURRENT_TURN, Conversation, Limits, Pending, QueryResult, StoreError
from tests.core_fakes import ADAMS, FakeWarehouse, MemoryStore, ScriptedLLM

SQL = "SELECT fund_name FROM funds"
ROWS = QueryResult(["fund_name"], [("Fund A",)])
NAP_S = 0.05


def make(store=None, llm=None):
    llm = llm or ScriptedLLM()
    wh = FakeWarehouse({SQL: ROWS})
    return Deps(llm=llm, warehouse=wh, store=store or MemoryStore(), limits=Limits(),
                today=date(2026, 10, 15)), llm, wh


class LockingStore(MemoryStore):
    """A store with a turn lock, recording what it locked and what ran inside the lock."""

    def __init__(self) -> None:
        super().__init__()
        self.locked: list[str] = []
        self.held = False
        self.inside: list[str] = []

    @contextmanager
    def turn_lock(self, thread_id: str):
        self.locked.append(thread_id)
        self.held = True
        try:
            yield
        finally:
            self.held = False

    def load(self, thread_id: str) -> Conversation:
        self.inside.append(f"load:{self.held}")
        return super().load(thread_id)

    def save(self, conversation: Conversation) -> None:
        self.inside.append(f"save:{self.held}")
        super().save(conversation)


class DownStore(MemoryStore):
    def load(self, thread_id: str) -> Conversation:
        raise StoreError("unreachable", "cannot reach PostgreSQL at db:5432; is it running?")


class SlowStore(MemoryStore):
    def load(self, thread_id: str) -> Conversation:
        time.sleep(NAP_S)
        return super().load(thread_id)


class SlowLLM(ScriptedLLM):
    def complete(self, messages, tools=None, tool_choice=None):
        time.sleep(NAP_S)
        return super().complete(messages, tools, tool_choice)


def test_the_turn_runs_from_load_to_save_inside_the_stores_turn_lock():
    store = LockingStore()
    deps, llm, _ = make(store)
    llm.sql(SQL).text("Fund A.")
    assert run_turn(deps, "C1:100", "Which funds?").state == "answered"
    assert store.locked == ["C1:100"]
    assert store.inside == ["load:True", "save:True"]


def test_a_store_that_cannot_be_reached_is_said_in_one_line_and_nothing_is_answered(caplog):
    deps, llm, _ = make(DownStore())
    caplog.set_level(logging.ERROR, logger="fundbot.turn")
    r = run_turn(deps, "C1:100", "Which funds?")
    assert (r.thread_id, r.state, r.error_kind) == ("C1:100", "failed", "store")
    assert r.answer == ("I can't reach my conversation store, so I didn't answer: "
                        "cannot reach PostgreSQL at db:5432; is it running?")
    assert llm.history == []
    assert [rec.getMessage() for rec in caplog.records] == [
        "cannot reach PostgreSQL at db:5432; is it running?"]


def test_the_callers_trace_id_user_and_progress_are_used():
    deps, llm, _ = make()
    llm.sql(SQL).text("Fund A.")
    seen: list[str] = []
    r = run_turn(deps, "t", "Which funds?", user="U1", trace_id="slack-Ev123",
                 progress=seen.append)
    assert r.trace_id == "slack-Ev123" and "slack-Ev123" in deps.store.traces
    assert seen == ["understand", "execute", "interpret", "verify"]
    # the asker of a clarification is the user who asked the question
    assert run_turn(deps, "a", "What did Adam invest?", user="U7").state == "clarify"
    assert deps.store.load("a").pending.asker == "U7"


def test_queries_are_tagged_with_the_turns_trace_id():
    deps, llm, wh = make()
    tags: list[str] = []
    execute = wh.execute

    def tagged(sql: str):
        tags.append(CURRENT_TURN.get())
        return execute(sql)
    wh.execute = tagged
    llm.sql(SQL).text("Fund A.")
    r = run_turn(deps, "t", "Which funds?")
    assert tags == [r.trace_id] and CURRENT_TURN.get() == ""


def test_a_clarification_waiting_in_the_thread_is_resumed_and_not_called_unfinished():
    deps, llm, _ = make()
    asked = run_turn(deps, "a", "What did Adam invest?")  # two Adams: asked which
    assert asked.state == "clarify" and len(asked.options) == len(ADAMS) == 2
    llm.sql(SQL).text("Fund A.")
    r = run_turn(deps, "a", "Adam Levin")
    assert r.state == "answered" and r.question == "What did Adam invest?"
    assert deps.store.traces[r.trace_id].error == ""


def test_a_leftover_pending_without_a_clarify_status_is_not_resumed_nor_restored():
    deps, llm, _ = make()
    stale = Pending(question="What did Adam invest?", prompt="Which Adam?",
                    options=["Adam Brooks", "Adam Levin"])
    deps.store.save(Conversation("s", status="idle", pending=stale))
    llm.error("timeout", "the model did not answer in time")
    r = run_turn(deps, "s", "Which funds?")
    assert r.question == "Which funds?" and r.error_kind == "llm"
    conv = deps.store.load("s")
    assert conv.status == "idle" and conv.pending is None


def test_a_clarifying_turn_records_that_it_waits():
    deps, llm, _ = make()
    llm.text("Which vintage do you mean?")
    r = run_turn(deps, "c", "Which funds?")
    assert [(s.state, s.event) for s in deps.store.traces[r.trace_id].steps][-1] == (
        "clarify", "wait")


def test_the_machine_has_only_its_own_moves():
    class Model:
        def can_debug(self) -> bool:
            return True
    model = Model()
    build_machine(model, S.UNDERSTAND)
    assert not [name for name in dir(model) if name.startswith("to_")]  # no jump to any state


def test_times_are_measured_in_milliseconds_inside_the_turn(caplog):
    deps, llm, _ = make(SlowStore(), SlowLLM())
    llm.sql(SQL).text("Fund A.")
    caplog.set_level(logging.INFO, logger="fundbot.turn")
    started = time.perf_counter()
    r = run_turn(deps, "t", "Which funds?")
    outside_ms = (time.perf_counter() - started) * 1000
    t = r.timings_ms
    # each part at least the time it slept, and none more than the whole turn took
    assert NAP_S * 1000 <= t["store"] <= t["total"] <= outside_ms
    assert 2 * NAP_S * 1000 <= t["llm"] <= t["total"]
    steps = {s.state: s.ms for s in deps.store.traces[r.trace_id].steps}
    assert NAP_S * 1000 <= steps["understand"] <= t["total"]
    assert NAP_S * 1000 <= steps["interpret"] <= t["total"]
    assert all(round(v, 3) == v for v in t.values())  # milliseconds to the microsecond
    line = [rec.getMessage() for rec in caplog.records][-1]
    assert re.fullmatch(rf"turn thread=t state=answered ms={t['total']:.0f} calls=2 "
                        rf"trace={r.trace_id}", line)


def test_a_wrong_figure_gets_one_more_draft_and_then_the_results_values():
    wh_rows = QueryResult(["n"], [(120,)])
    deps, llm, wh = make()
    wh.results["SELECT count(*) AS n FROM companies"] = wh_rows
    llm.sql("SELECT count(*) AS n FROM companies").text("We have 121 companies.").text(
        "We have 120 companies.")
    r = run_turn(deps, "v1", "How many companies?")
    assert (r.answer, r.verification, r.llm_calls) == ("We have 120 companies.", "revised", 3)
    llm.sql("SELECT count(*) AS n FROM companies").text("We have 121 companies.").text(
        "We have 122 companies.")
    r = run_turn(deps, "v2", "How many companies?")
    assert r.llm_calls == 3 and "121" not in r.answer and "122" not in r.answer
    assert "120" in r.answer and r.verification != "revised"
    assert [v["round"] for v in deps.store.traces[r.trace_id].verify] == [1, 2]


class FlakyStore(MemoryStore):
    """Fails its next `failures` saves of the conversation (and, with `steps`, every trace save
    before the final one) with a StoreError."""

    def __init__(self, failures: int, steps: bool = False) -> None:
        super().__init__()
        self.failures, self.steps = failures, steps

    def save(self, conversation: Conversation) -> None:
        if self.failures:
            self.failures -= 1
            raise StoreError("io", "disk I/O error writing state.sqlite3")
        super().save(conversation)

    def save_trace(self, trace) -> None:
        if self.steps and not trace.final_state:
            raise StoreError("busy", "state.sqlite3 is locked")
        super().save_trace(trace)


def test_a_final_save_that_fails_once_is_tried_again(caplog):
    deps, llm, _ = make(FlakyStore(failures=1))
    llm.sql(SQL).text("Fund A.")
    caplog.set_level(logging.WARNING, logger="fundbot.turn")
    r = run_turn(deps, "t", "Which funds?")
    assert (r.answer, r.warning) == ("Fund A.", None)
    assert deps.store.load("t").history[-1].answer == "Fund A."
    assert caplog.messages == ["final save failed (attempt 1): disk I/O error writing "
                               "state.sqlite3"]


def test_a_final_save_that_fails_twice_delivers_the_answer_with_a_warning(caplog):
    deps, llm, _ = make(FlakyStore(failures=2))
    llm.sql(SQL).text("Fund A.")
    caplog.set_level(logging.WARNING, logger="fundbot.turn")
    r = run_turn(deps, "t", "Which funds?")
    warning = ("This answer could not be saved, so a follow-up question won't know about it "
               "(disk I/O error writing state.sqlite3)")
    assert (r.state, r.warning, r.answer) == ("answered", warning, f"Fund A.\n\n⚠️ {warning}")
    assert [m.split(":")[0] for m in caplog.messages] == [
        "final save failed (attempt 1)", "final save failed (attempt 2)"]
    deps.store.failures = 2
    asked = run_turn(deps, "c", "What did Adam invest?")
    assert asked.clarification.endswith(f"\n\n⚠️ {warning}") and asked.answer is None


def test_a_trace_step_that_cannot_be_saved_costs_only_that_step(caplog):
    deps, llm, _ = make(FlakyStore(failures=0, steps=True))
    llm.sql(SQL).text("Fund A.")
    caplog.set_level(logging.WARNING, logger="fundbot.turn")
    r = run_turn(deps, "t", "Which funds?")
    assert r.answer == "Fund A." and r.trace_id in deps.store.traces
    assert caplog.messages == ["trace step not saved: state.sqlite3 is locked"] * 4


class SlowTraceStore(MemoryStore):
    def save_trace(self, trace) -> None:
        time.sleep(NAP_S)
        super().save_trace(trace)


def test_store_time_counts_every_trace_write():
    deps, llm, _ = make(SlowTraceStore())
    llm.sql(SQL).text("Fund A.")
    r = run_turn(deps, "t", "Which funds?")
    # a trace write after each of the 4 steps, and the final one
    assert r.timings_ms["store"] >= 5 * NAP_S * 1000


def test_a_turn_without_rows_records_none_and_the_models_chart_hint_is_passed_on():
    deps, llm, _ = make()
    r = run_turn(deps, "c", "What did Adam invest?")
    assert r.state == "clarify" and deps.store.load("c").history[-1].row_count == 0
    llm.raw_tool("sql_query", json.dumps({"sql": SQL, "chart": "bar"})).text("Fund A.")
    r = run_turn(deps, "t", "Which funds?")
    assert r.chart_hint == "bar" and r.verified_query is None
