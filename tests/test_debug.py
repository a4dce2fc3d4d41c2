"""debug on its own: what the model is shown, and how a debug step that goes wrong ends."""

from __future__ import annotations

from datetime import date

from states.debug import KEEP
from states.machine import Deps, run_turn
from states.ports import Limits, QueryError, QueryResult
from tests.core_fakes import FakeWarehouse, MemoryStore, ScriptedLLM

BAD = "SELECT amount FROM investments"
EMPTY = "SELECT * FROM investments WHERE 1 = 0"
ERROR = 'Referenced column "amount" not found'


def make(**limits):
    llm, store = ScriptedLLM(), MemoryStore()
    wh = FakeWarehouse({BAD: QueryError("binder", ERROR, BAD), EMPTY: QueryResult(["x"], [])})
    deps = Deps(llm=llm, warehouse=wh, store=store, limits=Limits(**limits),
                today=date(2026, 10, 15))
    return deps, llm, store


def test_a_failed_query_is_shown_back_as_the_assistant_turn_and_its_error():
    deps, llm, store = make()
    llm.sql(BAD).error("server")
    run_turn(deps, "d1", "list amounts")
    request = llm.history[1]
    assert request["messages"][-2:] == [
        {"role": "assistant", "content": f"```sql\n{BAD}\n```"},
        {"role": "user", "content": f"That query failed (binder): {ERROR}\n"
                                    "Call sql_query with a corrected query."}]
    assert [t["function"]["name"] for t in request["tools"]] == ["sql_query"]


def test_an_empty_result_is_shown_back_with_the_way_to_keep_it():
    deps, llm, store = make()
    llm.sql(EMPTY).text(KEEP).text("None.")
    run_turn(deps, "d2", "investments in 1850?")
    assert llm.history[1]["messages"][-2:] == [
        {"role": "assistant", "content": f"```sql\n{EMPTY}\n```"},
        {"role": "user", "content": (
            "That query ran but returned no rows. If the question implies rows should exist "
            "(a name spelled differently from the data, a date filter too narrow, a wrong "
            "join), call sql_query with a corrected query. If no rows is the right answer, "
            "reply with the single word KEEP.")}]


def test_a_model_fault_while_debugging_is_an_llm_failure_with_its_cause_in_the_trace():
    deps, llm, store = make()
    llm.sql(BAD).error("rate_limit", "slow down")
    r = run_turn(deps, "d3", "list amounts")
    assert r.state == "failed" and r.error_kind == "llm"
    assert "rate-limiting us" in r.answer
    assert store.traces[r.trace_id].error == "rate_limit: slow down"
    assert store.load("d3").status == "idle"


def test_no_corrected_query_ends_the_turn_with_the_last_sql():
    deps, llm, store = make()
    llm.sql(BAD).text("I am not sure what to change.")
    r = run_turn(deps, "d4", "list amounts")
    assert r.state == "failed" and r.error_kind == "sql"
    assert r.answer.startswith("I could not get a working query for this (1 attempt). Last "
                               "problem: the model offered no corrected query")
    assert f"Last SQL tried:\n```sql\n{BAD}\n```" in r.answer


def test_an_empty_result_with_neither_sql_nor_keep_is_not_kept():
    deps, llm, store = make()
    llm.sql(EMPTY).text("Perhaps try another year?")
    r = run_turn(deps, "d5", "investments in 1850?")
    assert r.state == "failed" and r.error_kind == "sql"
    assert "the model offered no corrected query" in r.answer


def _ctx_with(attempts):
    from states.context import TurnContext
    from states.ports import Conversation, Trace

    deps, _, _ = make()
    trace = Trace(trace_id="t", thread_id="d", question="q", started_at="2026-10-15T00:00:00")
    trace.sql_attempts.extend(attempts)
    return TurnContext(deps=deps, conv=Conversation("d"), text="q", trace=trace, question="q")


def test_the_give_up_message_names_the_tries_the_last_problem_and_the_last_sql():
    from states.debug import exhausted_message
    from states.ports import SqlAttempt

    tip = "\nTry naming the fund, company or period more precisely."
    one = _ctx_with([SqlAttempt(BAD, ok=False, error_kind="binder", error=ERROR)])
    assert exhausted_message(one) == (
        f"I could not get a working query for this (1 attempt). Last problem: binder: {ERROR}"
        f"\nLast SQL tried:\n```sql\n{BAD}\n```" + tip)
    # the last attempt ran (an empty result): no problem of its own to name
    ran = _ctx_with([SqlAttempt(BAD, ok=False, error_kind="binder", error=ERROR),
                     SqlAttempt(EMPTY, ok=True)])
    assert exhausted_message(ran) == (
        "I could not get a working query for this (2 attempts). Last problem: unknown"
        f"\nLast SQL tried:\n```sql\n{EMPTY}\n```" + tip)
    assert exhausted_message(ran, "the model gave no SQL").startswith(
        "I could not get a working query for this (2 attempts). Last problem: the model gave "
        "no SQL\n")
    assert exhausted_message(_ctx_with([])) == (
        "I could not get a working query for this (0 attempts). Last problem: unknown" + tip)
    long_sql, long_error = "SELECT " + "x, " * 2000 + "1", "e" * 900
    cut = exhausted_message(_ctx_with([SqlAttempt(long_sql, ok=False, error_kind="runtime",
                                                  error=long_error)]))
    assert f"Last problem: {('runtime: ' + long_error)[:500]}\n" in cut
    assert f"```sql\n{long_sql[:3000]}\n```" in cut
