"""Each state and whole turns, with in-process fakes of the LLM, warehouse and store."""

from __future__ import annotations

from datetime import date

import pytest

from states.clarify import pick_option
from states.machine import Deps, run_turn
from states.ports import Limits, QueryError, QueryResult
from tests.core_fakes import FakeWarehouse, MemoryStore, ScriptedLLM

SQL_DB = ("SELECT sum(amount_usd) AS invested FROM investments i JOIN companies c "
          "USING (company_id) WHERE c.company_name = 'Databricks, Inc.'")
ROWS_DB = QueryResult(["invested"], [(125_000_000,)], elapsed_ms=1.0)


def make(results=None, **limits):
    llm, wh, store = ScriptedLLM(), FakeWarehouse(results), MemoryStore()
    deps = Deps(llm=llm, warehouse=wh, store=store, limits=Limits(**limits),
                today=date(2026, 10, 15))
    return deps, llm, wh, store


def test_happy_path_two_llm_calls_and_trace():
    deps, llm, wh, store = make({SQL_DB: ROWS_DB})
    llm.sql(SQL_DB).text("We invested $125M in Databricks, Inc. (data as of 2026-09-30).")
    r = run_turn(deps, "t1", "How much did we invest in databricks?")
    assert r.state == "answered" and r.llm_calls == 2
    assert r.sql == SQL_DB and r.rows == [(125_000_000,)] and "$125M" in r.answer
    # understand saw the resolved company as a fact, and the rules and as-of date
    understand_prompt = llm.history[0]["messages"]
    user = understand_prompt[-1]["content"]
    assert '"Databricks, Inc."' in user
    assert "2026-09-30" in understand_prompt[0]["content"]
    assert "Today is 2026-10-15" in understand_prompt[0]["content"]
    assert llm.history[0]["tools"][0]["function"]["name"] == "sql_query"
    # interpret saw the question, SQL and the formatted result, and no tools
    interp = llm.history[1]["messages"][-1]["content"]
    assert SQL_DB in interp and "125,000,000" in interp and llm.history[1]["tools"] is None
    trace = store.traces[r.trace_id]
    assert [s.state for s in trace.steps] == ["understand", "execute", "interpret", "verify"]
    assert trace.final_state == "answered" and trace.sql_attempts[0].ok
    assert [c.purpose for c in trace.llm_calls] == ["understand", "interpret"]
    assert trace.llm_calls[0].prompt_tokens == 100
    assert {"understand", "execute", "interpret", "total", "own", "llm"} <= set(r.timings_ms)
    assert store.load("t1").status == "idle" and store.load("t1").history[-1].sql == SQL_DB


def test_ambiguous_first_name_clarifies_without_llm_then_resumes_by_number():
    sql = "SELECT count(*) FROM investments WHERE lead_gp_id = 2"
    deps, llm, wh, store = make({sql: QueryResult(["n"], [(14,)])})
    r = run_turn(deps, "t2", "What has Adam invested in this year?")
    assert r.state == "clarify" and r.llm_calls == 0
    assert r.options == ["Adam Brooks", "Adam Levin"] and "Which Adam" in r.clarification
    conv = store.load("t2")
    assert conv.status == "clarify" and conv.pending.options == r.options
    llm.sql(sql).text("Adam Levin led 14 investments.")
    r2 = run_turn(deps, "t2", "2")
    assert r2.state == "answered" and r2.llm_calls == 2
    # the choice reached the model as a fact, and the original question was answered
    prompt = llm.history[0]["messages"][-1]["content"]
    assert "What has Adam invested in this year?" in prompt and '"Adam Levin"' in prompt
    assert store.load("t2").status == "idle" and store.load("t2").pending is None


def test_clarify_by_name_survives_a_new_store_instance():
    deps, llm, wh, store = make({"SELECT 1 FROM investments": QueryResult(["x"], [(1,)])})
    run_turn(deps, "t3", "Show Adam's deals")
    # a restart: a new process loads the same stored JSON
    reborn = MemoryStore()
    reborn.conversations = dict(store.conversations)
    deps2 = Deps(llm=llm, warehouse=wh, store=reborn, limits=deps.limits, today=deps.today)
    llm.sql("SELECT 1 FROM investments").text("ok")
    r = run_turn(deps2, "t3", "adam brooks")
    assert r.state == "answered"
    assert '"Adam Brooks"' in llm.history[0]["messages"][-1]["content"]


def test_llm_clarifying_question_then_answer_attached():
    deps, llm, wh, store = make({"SELECT 2 FROM funds": QueryResult(["x"], [(2,)])})
    llm.text("Do you mean committed capital or invested capital?")
    r = run_turn(deps, "t4", "How big is fund II?")
    assert r.state == "clarify" and r.llm_calls == 1 and r.options == []
    llm.sql("SELECT 2 FROM funds").text("Fund II committed $2.")
    r2 = run_turn(deps, "t4", "committed capital")
    assert r2.state == "answered"
    prompt = llm.history[1]["messages"][-1]["content"]
    assert "How big is fund II?" in prompt and "committed capital" in prompt


def test_clarification_rounds_are_bounded():
    deps, llm, wh, store = make(clarify_rounds=2)
    llm.text("Which fund?").text("Which year?").text("Which currency?")
    assert run_turn(deps, "t5", "how much?").state == "clarify"
    assert run_turn(deps, "t5", "the big one").state == "clarify"
    r = run_turn(deps, "t5", "the recent one")
    assert r.state == "failed" and r.error_kind == "clarify" and "2 clarifying" in r.answer
    assert store.load("t5").status == "idle"


def test_debug_repairs_failing_sql():
    bad, good = "SELECT amount FROM investments", "SELECT amount_usd FROM investments"
    deps, llm, wh, store = make({
        bad: QueryError("binder", 'Referenced column "amount" not found', bad),
        good: QueryResult(["amount_usd"], [(5,)]),
    })
    llm.sql(bad).sql(good).text("5 dollars.")
    r = run_turn(deps, "t6", "list amounts")
    assert r.state == "answered" and r.sql == good and r.llm_calls == 3
    debug_prompt = llm.history[1]["messages"]
    assert bad in debug_prompt[-2]["content"] and "binder" in debug_prompt[-1]["content"]
    trace = store.traces[r.trace_id]
    assert [s.state for s in trace.steps] == ["understand", "execute", "debug", "execute",
                                              "interpret", "verify"]
    assert [a.ok for a in trace.sql_attempts] == [False, True]


def test_debug_exhaustion_says_what_went_wrong_and_last_sql():
    deps, llm, wh, store = make(debug_attempts=3)
    for i in range(4):
        llm.sql(f"SELECT nope{i} FROM investments")
    r = run_turn(deps, "t7", "something impossible")
    assert r.state == "failed" and r.error_kind == "sql"
    assert r.llm_calls == 4  # understand + 3 debug attempts
    assert "SELECT nope3 FROM investments" in r.answer and "4 attempts" in r.answer
    assert len(store.traces[r.trace_id].sql_attempts) == 4
    assert store.load("t7").status == "idle"


def test_empty_result_is_debugged_once_and_kept_when_model_says_so():
    sql = "SELECT * FROM investments WHERE 1=0"
    deps, llm, wh, store = make({sql: QueryResult(["x"], [])})
    llm.sql(sql).text("KEEP").text("No matching investments were found.")
    r = run_turn(deps, "t8", "investments in 1850?")
    assert r.state == "answered" and r.llm_calls == 3 and r.rows == []
    assert "no rows" in llm.history[1]["messages"][-1]["content"]


def test_out_of_scope_is_refused_politely():
    deps, llm, wh, store = make()
    llm.text("OUT OF SCOPE: I only know the fund's portfolio data, not the weather.")
    r = run_turn(deps, "t9", "What's the weather in Paris?")
    assert r.state == "answered" and r.refused and r.sql is None
    assert r.answer.startswith("I only know") and wh.executed == []


@pytest.mark.parametrize("text", ["", "   \n\t "])
def test_empty_question(text):
    deps, llm, wh, store = make()
    r = run_turn(deps, "e", text)
    assert r.state == "failed" and r.error_kind == "empty" and r.llm_calls == 0
    assert "Ask me a question" in r.answer


def test_huge_question_is_refused_without_llm_and_trace_is_capped():
    deps, llm, wh, store = make()
    r = run_turn(deps, "h", "how much " * 2300)  # ~20,700 characters
    assert r.state == "failed" and r.error_kind == "too_long" and "4,000" in r.answer
    assert r.llm_calls == 0 and len(store.traces[r.trace_id].question) <= 2001


def test_non_english_question_goes_to_the_model():
    deps, llm, wh, store = make({"SELECT 1 FROM funds": QueryResult(["n"], [(8,)])})
    llm.sql("SELECT 1 FROM funds").text("Wir haben 8 Fonds.")
    r = run_turn(deps, "ne", "Wie viele Fonds haben wir? 我们有多少基金？")
    assert r.state == "answered" and "8" in r.answer


def test_pasted_select_runs_without_understand_call():
    sql = "SELECT count(*) FROM investments"
    deps, llm, wh, store = make({sql: QueryResult(["n"], [(2000,)])})
    llm.text("There are 2,000 investments.")
    r = run_turn(deps, "p", sql)
    assert r.state == "answered" and r.llm_calls == 1 and wh.executed == [sql]


@pytest.mark.parametrize("sql", ["DROP TABLE investments",
                                 "SELECT 1 FROM funds; DELETE FROM funds",
                                 "ATTACH '/tmp/x.db' AS x"])
def test_pasted_hostile_sql_is_refused_without_running(sql):
    deps, llm, wh, store = make()
    r = run_turn(deps, "ph", sql)
    assert r.state == "failed" and r.error_kind == "refused" and wh.executed == []
    assert "read-only" in r.answer


def test_english_starting_with_select_is_a_question():
    deps, llm, wh, store = make({"SELECT 3 FROM funds": QueryResult(["n"], [(3,)])})
    llm.sql("SELECT 3 FROM funds").text("3.")
    r = run_turn(deps, "s", "Select the three best funds by committed capital please")
    assert r.llm_calls == 2 and r.state == "answered"


@pytest.mark.parametrize("kind", ["rate_limit", "server", "timeout", "connection"])
def test_llm_failure_is_a_clear_message_and_next_question_works(kind):
    deps, llm, wh, store = make({SQL_DB: ROWS_DB})
    llm.error(kind)
    r = run_turn(deps, "l", "How much did we invest in databricks?")
    assert r.state == "failed" and r.error_kind == "llm" and kind in r.answer
    assert store.load("l").status == "idle"
    llm.sql(SQL_DB).text("$125M.")
    assert run_turn(deps, "l", "How much did we invest in databricks?").state == "answered"


def test_malformed_tool_arguments_get_one_corrective_round():
    deps, llm, wh, store = make({SQL_DB: ROWS_DB})
    llm.raw_tool("sql_query", '{"sql": "SELECT').sql(SQL_DB).text("$125M.")
    r = run_turn(deps, "m", "How much did we invest in databricks?")
    assert r.state == "answered" and r.llm_calls == 3
    assert "not valid JSON" in llm.history[1]["messages"][-1]["content"]


def test_unknown_tool_twice_fails_clearly():
    deps, llm, wh, store = make()
    llm.raw_tool("drop_tables", "{}").raw_tool("python", '{"code": "1"}')
    r = run_turn(deps, "u", "How much did we invest?")
    assert r.state == "failed" and r.error_kind == "llm" and "unknown tool" in r.answer
    assert wh.executed == []


def test_interpret_failure_still_answers_with_rows():
    deps, llm, wh, store = make({SQL_DB: ROWS_DB})
    llm.sql(SQL_DB).error("timeout")
    r = run_turn(deps, "i", "How much did we invest in databricks?")
    assert r.state == "answered" and r.rows and "could not get the language model" in r.answer


def test_follow_up_sees_thread_history():
    deps, llm, wh, store = make({SQL_DB: ROWS_DB, "SELECT 9 FROM valuations":
                                 QueryResult(["v"], [(9,)])})
    llm.sql(SQL_DB).text("We invested $125M.")
    run_turn(deps, "f", "How much did we invest in databricks?")
    llm.sql("SELECT 9 FROM valuations").text("It is worth $9.")
    run_turn(deps, "f", "and what is it worth now?")
    msgs = llm.history[2]["messages"]
    assert msgs[1] == {"role": "user", "content": "How much did we invest in databricks?"}
    assert SQL_DB in msgs[2]["content"] and "$125M" in msgs[2]["content"]


def test_unexpected_exception_fails_cleanly():
    deps, llm, wh, store = make()

    def boom(text):
        raise RuntimeError("resolver bug")
    wh.resolve = boom
    r = run_turn(deps, "x", "anything")
    assert r.state == "failed" and r.error_kind == "internal" and r.trace_id in r.answer
    assert "resolver bug" in store.traces[r.trace_id].error
    assert store.load("x").status == "idle"


@pytest.mark.parametrize("reply,expected", [
    ("1", "Adam Brooks"), ("#2", "Adam Levin"), ("the second one", "Adam Levin"),
    ("Adam Levin", "Adam Levin"), ("levin", "Adam Levin"), ("brooks please", "Adam Brooks"),
    ("adam", None), ("7", None), ("", None),
])
def test_pick_option(reply, expected):
    assert pick_option(reply, ["Adam Brooks", "Adam Levin"]) == expected


@pytest.mark.parametrize("bad", ["", "x" * 5000])
def test_bad_reply_to_a_clarification_keeps_the_question_open(bad):
    sql = "SELECT 1 FROM investments"
    deps, llm, wh, store = make({sql: QueryResult(["x"], [(1,)])})
    run_turn(deps, "k", "What has Adam invested in?")
    r = run_turn(deps, "k", bad)
    assert r.state == "failed" and r.error_kind in ("empty", "too_long")
    conv = store.load("k")
    assert conv.status == "clarify" and conv.pending.options == ["Adam Brooks", "Adam Levin"]
    assert conv.pending.facts == [] and conv.pending.settled == {}
    llm.sql(sql).text("ok")
    assert run_turn(deps, "k", "Adam Levin").state == "answered"


def test_llm_failure_after_a_clarification_keeps_it_open_for_a_retry():
    sql = "SELECT 1 FROM investments"
    deps, llm, wh, store = make({sql: QueryResult(["x"], [(1,)])})
    run_turn(deps, "kr", "What has Adam invested in?")
    llm.error("server")
    assert run_turn(deps, "kr", "Adam Levin").error_kind == "llm"
    assert store.load("kr").pending.settled == {}  # the failed try left no trace in the state
    llm.sql(sql).text("ok")
    assert run_turn(deps, "kr", "Adam Levin").state == "answered"
    assert store.load("kr").status == "idle"


@pytest.mark.parametrize("text", [
    "Create a list of our fintech companies", "Call out our biggest exits",
    "Load up the numbers for Adam Levin", "Set aside Fund I: how did Fund II do?",
    "Drop the exits and show me investments", "Reset: how much did we invest?",
])
def test_english_that_sqlglot_reads_as_a_command_is_a_question(text):
    deps, llm, wh, store = make({"SELECT 4 FROM funds": QueryResult(["n"], [(4,)])})
    llm.sql("SELECT 4 FROM funds").text("4.")
    r = run_turn(deps, "cmd", text)
    assert r.state == "answered" and r.llm_calls == 2


@pytest.mark.parametrize("sql", ["LOAD httpfs", "CALL pragma_version()", "INSTALL httpfs",
                                 "PRAGMA version", "SET memory_limit='10GB'"])
def test_pasted_commands_are_still_refused(sql):
    deps, llm, wh, store = make()
    r = run_turn(deps, "cmd-sql", sql)
    assert r.state == "failed" and r.error_kind == "refused" and r.llm_calls == 0


# ------------------------------------------- option matching: what is not an option

ADAMS = ["Adam Brooks", "Adam Levin"]


@pytest.mark.parametrize("reply", ["brooks or levin", "Adam Brooks or Adam Levin", "0", "-1",
                                   "00", "3", "99", "#0", "third", "both"])
def test_replies_that_name_no_single_option_pick_nothing(reply):
    assert pick_option(reply, ADAMS) is None


@pytest.mark.parametrize("reply", ["brooks or levin", "-1", "both of them"])
def test_a_reply_naming_no_single_option_asks_which_adam_again(reply):
    deps, llm, wh, store = make()
    assert run_turn(deps, "two", "What has Adam invested in?").state == "clarify"
    r = run_turn(deps, "two", reply)
    # no model call: the ambiguity is still open, so the same question comes back
    assert r.state == "clarify" and r.llm_calls == 0 and wh.executed == []
    assert r.options == ADAMS and "Which Adam" in r.clarification
    assert store.load("two").pending.settled == {}


@pytest.mark.parametrize("reply", ["0", "3", "#0", "third"])
def test_a_number_outside_the_options_says_so_and_keeps_the_question(reply):
    deps, llm, wh, store = make()
    run_turn(deps, "oor", "What has Adam invested in?")
    r = run_turn(deps, "oor", reply)
    assert r.state == "clarify" and r.llm_calls == 0 and r.options == ADAMS
    assert "not one of the options" in r.clarification and "from 1 to 2" in r.clarification
    pending = store.load("oor").pending
    assert pending.rounds == 1 and pending.facts == [] and pending.settled == {}


# ------------------------------------------------- debug on an empty result

EMPTY_A = "SELECT * FROM investments WHERE company_id = -1"
EMPTY_B = "SELECT * FROM investments WHERE company_id = -2"


def test_debug_offers_other_sql_that_is_also_empty_then_the_empty_result_is_interpreted():
    deps, llm, wh, store = make({EMPTY_A: QueryResult(["x"], []),
                                 EMPTY_B: QueryResult(["x"], [])}, debug_attempts=3)
    llm.sql(EMPTY_A).sql(EMPTY_B).text("No matching investments were found.")
    r = run_turn(deps, "ee", "investments in company -1?")
    # an empty result is debugged once: the second empty one is the answer, not another debug
    assert r.state == "answered" and r.rows == [] and r.sql == EMPTY_B
    assert "No matching" in r.answer and wh.executed == [EMPTY_A, EMPTY_B]
    trace = store.traces[r.trace_id]
    assert [c.purpose for c in trace.llm_calls] == ["understand", "debug", "interpret"]
    assert [s.state for s in trace.steps] == ["understand", "execute", "debug", "execute",
                                              "interpret", "verify"]


def test_debug_repeating_the_same_sql_on_an_empty_result_keeps_it_without_running_again():
    deps, llm, wh, store = make({EMPTY_A: QueryResult(["x"], [])}, debug_attempts=3)
    llm.sql(EMPTY_A).sql(EMPTY_A).text("No matching investments were found.")
    r = run_turn(deps, "same", "investments in company -1?")
    assert r.state == "answered" and r.rows == [] and wh.executed == [EMPTY_A]
    trace = store.traces[r.trace_id]
    assert [s.state for s in trace.steps] == ["understand", "execute", "debug", "interpret",
                                              "verify"]
    assert trace.steps[2].event == "keep"
