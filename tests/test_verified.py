"""Verified queries in the core: intent matching, entity swapping, direct answers with one LLM
call, examples in the prompt, and flags on SQL that stops working. The real sample warehouse
and SQLite store; the LLM is an in-process script that fails on any call it did not expect."""

from __future__ import annotations

import json
from datetime import date

import pytest

from bot import library as lib
from bot.store import SqliteStore
from bot.warehouse import open_warehouse
from states.machine import Deps, run_turn
from states.ports import Limits, VerifiedQuery
from states.verified import intent, slots_for, swap
from tests.core_fakes import ScriptedLLM

SQL_INVESTED = ("SELECT SUM(i.amount_usd) AS invested FROM investments i JOIN companies c "
                "ON c.company_id = i.company_id WHERE c.company_name = 'Databricks, Inc.'")
SQL_THIS_YEAR = ("SELECT SUM(amount_usd) AS invested FROM investments "
                 "WHERE investment_date >= DATE '2026-01-01' AND investment_date < DATE "
                 "'2027-01-01'")


@pytest.fixture(scope="module")
def warehouse(sample_db):
    with open_warehouse(sample_db, Limits()) as wh:
        yield wh


@pytest.fixture
def store(tmp_path):
    with SqliteStore(tmp_path / "state.sqlite3") as s:
        yield s


def _deps(warehouse, store, llm) -> Deps:
    return Deps(llm=llm, warehouse=warehouse, store=store, limits=Limits(),
                today=date(2026, 10, 15), library=store)


def _money(result) -> str:
    """The first cell as an answer writes it ($68.9M), so the verify step accepts it."""
    return f"${float(result.rows[0][0]) / 1e6:.1f}M"


def _intent(warehouse, question):
    return intent(question, warehouse.resolve(question)[0])


def test_paraphrases_share_an_intent_and_other_metrics_or_windows_do_not(warehouse):
    same = ["How much did we invest in Databricks?", "What did we put into Mimo so far?",
            "How much capital have we deployed into Galarra Pay in total?"]
    assert len({_intent(warehouse, q) for q in same}) == 1
    base = _intent(warehouse, same[0])
    for other in ["What is Databricks worth now?",  # another metric
                  "How much did we invest in Databricks this year?",  # another window
                  "How much did we invest in Databricks in 2024?",
                  "How many investments did we make in Databricks?",
                  "How much did each fund invest in Databricks?"]:  # another grouping
        assert _intent(warehouse, other) != base, other


def test_names_that_are_literals_of_the_sql_swap(warehouse):
    entities = warehouse.resolve("How much did we invest in Databricks?")[0]
    (slot,) = slots_for(SQL_INVESTED, entities)
    assert slot.swappable and slot.value == "Databricks, Inc."
    mimo = warehouse.resolve("and in Mimo?")[0]
    assert "'Mimo, Inc.'" in swap(SQL_INVESTED, [slot], mimo)
    # a key compared with an id column swaps too; other numbers stay as they are
    by_key = f"SELECT amount_usd FROM investments WHERE company_id = {slot.key} LIMIT 1"
    swapped = swap(by_key, slots_for(by_key, entities), mimo)
    assert f"company_id = {mimo[0].key}" in swapped and "LIMIT 1" in swapped
    # a name the SQL does not hold as a literal cannot be swapped
    fuzzy = ("SELECT SUM(i.amount_usd) FROM investments i JOIN companies c ON c.company_id = "
             "i.company_id WHERE c.company_name ILIKE '%databricks%'")
    assert swap(fuzzy, slots_for(fuzzy, entities), mimo) is None
    # a different kind or number of names never pairs up
    fund = warehouse.resolve("What did Fund III invest?")[0]
    assert swap(SQL_INVESTED, [slot], fund) is None


def test_paraphrase_with_another_company_is_answered_from_the_verified_sql(warehouse, store):
    q = lib.add(store, warehouse, "How much did we invest in Databricks?", SQL_INVESTED, "ops")
    expected = warehouse.execute(SQL_INVESTED.replace("Databricks, Inc.", "Mimo, Inc."))
    llm = ScriptedLLM().text(f"We put {_money(expected)} into Mimo.")  # interpret only
    r = run_turn(_deps(warehouse, store, llm), "t1", "What did we put into Mimo so far?")
    assert r.state == "answered" and r.verified_query == q.id
    assert r.llm_calls == 1 and llm.history[0]["tools"] is None
    assert "'Mimo, Inc.'" in r.sql and "Databricks" not in r.sql
    assert r.rows == expected.rows
    assert store.get_trace(r.trace_id).verified_query == q.id


def test_a_near_miss_goes_to_the_model_with_the_verified_example(warehouse, store):
    lib.add(store, warehouse, "How much did we invest in Databricks?", SQL_INVESTED, "ops")
    worth = ("SELECT SUM(v.fair_value_usd) AS value FROM valuations v JOIN companies c ON "
             "c.company_id = v.company_id WHERE c.company_name = 'Mimo, Inc.' AND "
             "v.valuation_date = (SELECT MAX(valuation_date) FROM valuations)")
    llm = ScriptedLLM().sql(worth).text(f"Mimo is worth {_money(warehouse.execute(worth))}.")
    r = run_turn(_deps(warehouse, store, llm), "t2", "How much is our Mimo investment worth?")
    assert r.state == "answered" and r.verified_query is None and r.llm_calls == 2
    asked = llm.history[0]["messages"][-1]["content"]
    assert asked.startswith("How much is our Mimo investment worth?")
    assert "verified queries" in asked and SQL_INVESTED in asked


def test_proposed_retired_and_time_relative_queries_are_not_run(warehouse, store):
    proposed = store.propose_verified(VerifiedQuery(
        id=0, question="How much did we invest in Databricks?", sql=SQL_INVESTED,
        slots=slots_for(SQL_INVESTED, warehouse.resolve("Databricks")[0]), proposed_by="amy"))
    this_year = lib.add(store, warehouse, "How much have we invested this year?", SQL_THIS_YEAR,
                        "ops")
    deps = _deps(warehouse, store, None)
    for question in ("How much did we put into Mimo?", "How much have we invested this year?"):
        deps.llm = ScriptedLLM().sql(SQL_THIS_YEAR).text("Some amount.")
        assert run_turn(deps, f"t-{question}", question).verified_query is None
    lib.verify(store, warehouse, proposed.id, "bob")
    lib.retire(store, proposed.id, "bob")
    deps.llm = ScriptedLLM().sql(SQL_INVESTED).text("Some amount.")
    assert run_turn(deps, "t-retired", "How much did we put into Mimo?").verified_query is None
    assert store.get_verified(this_year.id).broken == ""
    with pytest.raises(ValueError):
        store.review_verified(proposed.id, "verified", " ")  # nothing verified without a name


def test_sql_that_no_longer_fits_the_warehouse_is_flagged_never_used(warehouse, store):
    # written when investments had an `amount` column; the guard now refuses it
    stale = store.propose_verified(VerifiedQuery(
        id=0, question="How much did we invest in Databricks?",
        sql=SQL_INVESTED.replace("i.amount_usd", "i.amount"),
        slots=slots_for(SQL_INVESTED, warehouse.resolve("Databricks")[0])))
    store.review_verified(stale.id, "verified", "bob")
    llm = ScriptedLLM().sql(SQL_INVESTED).text(
        f"We invested {_money(warehouse.execute(SQL_INVESTED))}.")
    r = run_turn(_deps(warehouse, store, llm), "t3", "How much did we invest in Mimo?")
    assert r.verified_query is None and r.llm_calls == 2
    assert "amount" in store.get_verified(stale.id).broken
    assert stale.id not in [q.id for q in store.list_verified("verified") if q.usable]


def test_sql_that_fails_when_run_is_flagged_and_the_turn_is_not_marked(warehouse, store):
    failing = ("SELECT CAST(c.company_name AS INTEGER) AS n FROM companies c "
               "WHERE c.company_name = 'Databricks, Inc.'")
    q = store.propose_verified(VerifiedQuery(
        id=0, question="What number is Databricks?", sql=failing,
        slots=slots_for(failing, warehouse.resolve("Databricks")[0])))
    store.review_verified(q.id, "verified", "bob")
    fixed = "SELECT company_id AS n FROM companies WHERE company_name = 'Mimo, Inc.'"
    llm = ScriptedLLM().sql(fixed).text("Mimo is number 399.")  # debug, then interpret
    r = run_turn(_deps(warehouse, store, llm), "t4", "What number is Mimo?")
    assert r.state == "answered" and r.verified_query is None
    assert [c.purpose for c in store.get_trace(r.trace_id).llm_calls] == ["debug", "interpret"]
    assert store.get_verified(q.id).broken.startswith("runtime")
    assert lib.check_all(store, warehouse) == []  # already flagged: no longer "verified, usable"


def test_check_flags_queries_that_stopped_running(warehouse, store):
    q = store.propose_verified(VerifiedQuery(id=0, question="Old column?",
                                             sql="SELECT amount FROM investments"))
    store.review_verified(q.id, "verified", "bob")
    assert [qid for qid, _ in lib.check_all(store, warehouse)] == [q.id]
    with pytest.raises(lib.LibraryError):
        lib.verify(store, warehouse, q.id, "bob")  # a reviewer cannot verify SQL that fails


# ------------------------------------------------------------------ the command line


def test_fundbot_verified_commands_and_the_terminal_mark(sample_db, warehouse, tmp_path,
                                                         monkeypatch, capsys):
    from bot.cli import main
    from tests.fakes.fake_openai import FakeOpenAI

    with FakeOpenAI() as fake:
        for key, value in {"FUNDBOT_ENV_FILE": str(tmp_path / "no.env"), "FUNDBOT_DB": sample_db,
                           "FUNDBOT_STATE": str(tmp_path / "state.sqlite3"),
                           "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test",
                           "FUNDBOT_TODAY": "2026-10-15", "FUNDBOT_LLM_RETRIES": "0"}.items():
            monkeypatch.setenv(key, value)
        assert main(["verified", "add", "--question", "How much did we invest in Databricks?",
                     "--sql", "SELECT SUM(amount) FROM investments", "--by", "ops"]) == 1
        assert "does not run against the warehouse" in capsys.readouterr().err
        assert main(["verified", "add", "--question", "How much did we invest in Databricks?",
                     "--sql", SQL_INVESTED, "--by", "ops"]) == 0
        assert "swappable: company 'Databricks, Inc.'" in capsys.readouterr().out
        assert main(["verified", "show", "1"]) == 0
        shown = capsys.readouterr().out
        assert "swappable" in shown and "reviewed:" in shown and "by ops" in shown

        mimo = warehouse.execute(SQL_INVESTED.replace("Databricks, Inc.", "Mimo, Inc."))
        fake.enqueue_text(f"We put {_money(mimo)} into Mimo.")  # interpret only: no SQL call
        assert main(["ask", "What did we put into Mimo so far?"]) == 0
        out = capsys.readouterr().out
        assert "verified query #1" in out and "'Mimo, Inc.'" in out and len(fake.requests) == 1

        assert main(["verified", "retire", "1", "--by", "ops"]) == 0
        assert main(["verified", "list", "--json"]) == 0
        listed = json.loads(capsys.readouterr().out.splitlines()[-1])
        assert [(q["id"], q["status"]) for q in listed] == [(1, "retired")]
        assert main(["verified", "verify", "99", "--by", "ops"]) == 1
        assert "no verified query 99" in capsys.readouterr().err


def test_masking_replaces_whole_names_only(warehouse):
    question = "Compare Fund I with Fund II"
    entities = warehouse.resolve(question)[0]
    assert sorted(e.value for e in entities) == ["Fund I", "Fund II"]
    assert intent(question, entities) == frozenset({"compare", "ent_fund"})


def test_an_empty_result_of_a_verified_query_is_the_answer(warehouse, store):
    exits = ("SELECT f.fund_name, e.exit_type, e.exit_date FROM exits e JOIN funds f ON "
             "f.fund_id = e.fund_id JOIN companies c ON c.company_id = e.company_id "
             "WHERE c.company_name = 'Acme Robotics, Inc.'")
    lib.add(store, warehouse, "How did our funds exit Acme Robotics, Inc.?", exits, "ops")
    llm = ScriptedLLM().text("We have not exited Mimo.")  # no debug call on the empty result
    r = run_turn(_deps(warehouse, store, llm), "t5", "How did our funds exit Mimo?")
    assert r.state == "answered" and r.verified_query and r.rows == [] and r.llm_calls == 1


def test_today_is_a_window_for_flows(warehouse):
    assert _intent(warehouse, "How much did we invest in Mimo today?") != \
        _intent(warehouse, "How much did we invest in Mimo?")


# ------------------------------------------------------------ both store back-ends


def test_the_library_on_sqlite_and_postgresql(state_url, warehouse, tmp_path):
    from bot.store import SCHEMA_VERSION, copy_state, open_store

    with open_store(state_url) as st:
        assert st.schema_version() == SCHEMA_VERSION
        long_sql = SQL_INVESTED + " AND 1 = 1" * 400  # past PostgreSQL's index row size
        q = lib.add(st, warehouse, "How much did we invest in Databricks?", long_sql, "ops")
        again = st.propose_verified(VerifiedQuery(id=0, question=q.question, sql=long_sql))
        assert again.id == q.id and again.status == "verified"  # one row per question and SQL
        other = st.propose_verified(VerifiedQuery(id=0, question="Other?", sql="SELECT 1"))
        assert [x.id for x in st.list_verified()] == [q.id, other.id]
        assert [x.id for x in st.list_verified("proposed")] == [other.id]
        st.flag_verified(q.id, "runtime: boom")
        assert not st.get_verified(q.id).usable
        assert st.review_verified(q.id, "verified", "bob").usable  # re-verified: in use again

        expected = warehouse.execute(long_sql.replace("Databricks, Inc.", "Mimo, Inc."))
        llm = ScriptedLLM().text(f"We put {_money(expected)} into Mimo.")
        r = run_turn(_deps(warehouse, st, llm), "t-both", "What did we put into Mimo so far?")
        assert r.verified_query == q.id and r.llm_calls == 1 and r.rows == expected.rows

        st.save_feedback(r.trace_id, "UBOB", "down", comment="wrong company")
        (dispute,) = st.disputed_answers()
        assert dispute["verified_query"] == q.id and dispute["comment"] == "wrong company"

        with SqliteStore(tmp_path / "copy.sqlite3") as target:  # fundbot db migrate-state
            copy_state(st, target)
            assert [x.question for x in target.list_verified()] == [q.question, "Other?"]
