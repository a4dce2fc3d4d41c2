"""What one turn leaves behind: the TurnResult, the thread's history, the trace, the log."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime

from states.machine import Deps, run_turn
from states.ports import Conversation, Limits, QueryResult
from tests.core_fakes import FakeWarehouse, MemoryStore, ScriptedLLM

SQL = "SELECT fund_name, n FROM funds"
ROWS = QueryResult(["fund_name", "n"], [("Fund A", 1), ("Fund B", 2)], truncated=True)


def make():
    llm, wh, store = ScriptedLLM(), FakeWarehouse({SQL: ROWS}), MemoryStore()
    return Deps(llm=llm, warehouse=wh, store=store, limits=Limits(),
                today=date(2026, 10, 15)), llm, store


def test_an_answered_turn_is_recorded_whole(caplog):
    deps, llm, store = make()
    llm.sql(SQL).text("Fund A and Fund B.")
    caplog.set_level(logging.DEBUG, logger="fundbot.turn")
    r = run_turn(deps, "t", "Which funds?")
    assert (r.thread_id, r.state, r.question, r.as_of) == ("t", "answered", "Which funds?",
                                                           "2026-09-30")
    assert r.columns == ["fund_name", "n"] and r.truncated is True
    assert (r.prompt_tokens, r.completion_tokens) == (180, 30)  # 100 + 80, 20 + 10
    t = r.timings_ms
    assert t["own"] == round(t["total"] - t["llm"], 3) and t["total"] >= t["llm"] >= 0
    assert t["store"] >= 0
    turn = store.load("t").history[-1]
    assert (turn.question, turn.state, turn.sql, turn.answer) == ("Which funds?", "answered",
                                                                  SQL, r.answer)
    assert (turn.columns, turn.row_count, turn.trace_id) == (["fund_name", "n"], 2, r.trace_id)
    assert datetime.fromisoformat(turn.at).tzinfo is not None
    trace = store.traces[r.trace_id]
    assert (trace.thread_id, trace.question, trace.answer) == ("t", "Which funds?", r.answer)
    assert datetime.fromisoformat(trace.started_at).tzinfo is not None
    assert len(r.trace_id) == 16 and trace.error in ("", None)
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "fundbot.turn"]
    assert re.fullmatch(rf"turn thread=t state=answered ms=\d+ calls=2 trace={r.trace_id}",
                        lines[-1])
    steps = [ln for ln in lines if ln.startswith("thread=")]
    assert re.fullmatch(r"thread=t step=understand event=sql ms=\d+\.\d", steps[0])
    assert [s.split()[2] for s in steps] == ["event=sql", "event=rows", "event=done",
                                             "event=ok"]


def test_a_failed_turn_names_its_error_kind_in_the_log_line(caplog):
    deps, llm, store = make()
    llm.sql("SELECT nope FROM funds").text("no idea")
    caplog.set_level(logging.INFO, logger="fundbot.turn")
    r = run_turn(deps, "f", "Which funds?")
    assert r.error_kind == "sql"
    assert caplog.records[-1].getMessage().endswith(f"trace={r.trace_id} error=sql")


def test_a_waiting_turn_records_the_question_it_asks():
    deps, llm, store = make()
    llm.text("Which vintage do you mean?")
    r = run_turn(deps, "c", "Which funds?")
    assert r.state == "clarify"
    assert store.traces[r.trace_id].answer == "Which vintage do you mean?"
    assert store.load("c").history[-1].answer == "Which vintage do you mean?"


def test_the_thread_keeps_its_last_fifty_turns():
    deps, llm, store = make()
    for i in range(53):
        llm.text("OUT OF SCOPE: I only know the fund's data.")
        run_turn(deps, "h", f"question {i}")
    history = store.load("h").history
    assert len(history) == 50 and history[0].question == "question 3"


def test_a_bug_is_an_internal_failure_with_the_trace_to_quote():
    deps, llm, store = make()

    def boom(text):
        raise RuntimeError("resolver bug")
    deps.warehouse.resolve = boom
    r = run_turn(deps, "x", "anything")
    assert r.answer == ("Something went wrong on my side while answering. Please ask again; if "
                        f"it keeps happening, tell the fundbot maintainers (trace {r.trace_id}).")
    assert store.traces[r.trace_id].error == "RuntimeError: resolver bug"


def test_a_turn_that_never_finished_is_noted_in_the_next_trace():
    deps, llm, store = make()
    store.save(Conversation("s", status="execute"))
    llm.sql(SQL).text("Fund A and Fund B.")
    r = run_turn(deps, "s", "Which funds?")
    assert r.state == "answered"
    assert store.traces[r.trace_id].error == ("previous turn ended in state 'execute' without "
                                              "finishing")
    assert store.load("s").status == "idle"


def test_a_long_question_is_cut_in_the_trace_only():
    deps, llm, store = make()
    llm.sql(SQL).text("Fund A and Fund B.")
    text = "Which funds? " + "x" * 1987  # 2,000 characters: kept whole
    r = run_turn(deps, "q", text)
    assert store.traces[r.trace_id].question == text and len(text) == 2000
    llm.sql(SQL).text("Fund A and Fund B.")
    r = run_turn(deps, "q", text + "y")  # 2,001: cut
    assert store.traces[r.trace_id].question == text + "…"
