"""verify: scripted answers through the real machine, the real openai client and the fake
OpenAI server, on the sample warehouse; and every reference answer verifies on its own result."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from bot.llm import OpenAIChat
from bot.store import SqliteStore
from bot.warehouse import open_warehouse
from eval.cases import load_cases
from eval.gold import reference_answers
from states.machine import Deps, run_turn
from states.ports import Limits
from states.replace import withheld_answer
from states.verify import UNSUPPORTED, Evidence, check, named_in
from tests.fakes.fake_openai import FakeOpenAI

QUESTION = "How much have Fund I, Fund II and Fund III invested?"
SQL = ("SELECT f.fund_name, SUM(i.amount_usd) AS invested FROM investments i "
       "JOIN funds f USING (fund_id) WHERE f.fund_name IN ('Fund I', 'Fund II', 'Fund III') "
       "GROUP BY f.fund_name ORDER BY f.fund_name")
# the data: Fund I 270,012,000; Fund II 404,993,000; Fund III 630,001,000 (1,305,006,000)
RIGHT = "Fund I has invested $270.0M, Fund II $405.0M and Fund III $630.0M."
DERIVED = ("Fund III invested $630.0M, $360.0M more than Fund I; Fund III's share of the $1.31B "
           "the three funds invested is 48%.")
SWAPPED = "Fund I has invested $405.0M, Fund II $270.0M and Fund III $630.0M."
DIGIT = "Fund I has invested $270.0M, Fund II $405.0M and Fund III $636.0M."
INVENTED = "Fund III invested $630.0M, 62% of what the three funds invested."
OTHER_FUND = "Growth Fund I has invested $270.0M, Fund II $405.0M and Fund III $630.0M."


@pytest.fixture(scope="module")
def wh(sample_db):
    with open_warehouse(sample_db, Limits()) as w:
        yield w


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI() as f:
        yield f


def ask(fake: FakeOpenAI, wh, tmp_path: Path, *answers: str):
    """One turn: the model writes SQL, then the scripted answers in order."""
    fake.enqueue_tool_call(SQL)
    for a in answers:
        fake.enqueue_text(a)
    before = len(fake.chat_requests)
    llm = OpenAIChat("sk-test", base_url=fake.base_url, model="m", timeout_s=10, retries=0)
    with SqliteStore(tmp_path / "state.sqlite3") as store:
        deps = Deps(llm=llm, warehouse=wh, store=store, limits=Limits(),
                    today=date(2026, 10, 15))
        r = run_turn(deps, "t", QUESTION)
        trace = store.get_trace(r.trace_id)
    assert fake.pending == 0, "every scripted reply was used"
    return r, fake.chat_requests[before:], trace


@pytest.mark.parametrize("answer", [RIGHT, DERIVED], ids=["right", "derived"])
def test_right_answers_are_posted_as_written(fake, wh, tmp_path, answer):
    r, requests, _ = ask(fake, wh, tmp_path, answer)
    assert r.state == "answered" and r.answer == answer
    assert r.verification == "verified" and r.llm_calls == 2 and len(requests) == 2


@pytest.mark.parametrize("wrong", [SWAPPED, DIGIT, INVENTED, OTHER_FUND],
                         ids=["swapped", "digit", "invented-percent", "fund-not-in-result"])
def test_a_wrong_answer_is_sent_back_once_then_the_right_one_is_posted(fake, wh, tmp_path,
                                                                      wrong):
    r, requests, _ = ask(fake, wh, tmp_path, wrong, RIGHT)
    assert r.answer == RIGHT and r.verification == "revised"
    assert r.llm_calls == 3  # understand, interpret, one re-interpret
    retry = requests[-1].body["messages"][-1]["content"]
    assert wrong in retry and "do not match the result" in retry
    assert "Result (3 rows)" in retry  # the rows again, so the model can fix it


@pytest.mark.parametrize("wrong", [SWAPPED, DIGIT, INVENTED, OTHER_FUND],
                         ids=["swapped", "digit", "invented-percent", "fund-not-in-result"])
def test_wrong_twice_posts_the_results_values_and_says_so(fake, wh, tmp_path, wrong):
    r, requests, _ = ask(fake, wh, tmp_path, wrong, wrong)
    assert r.verification == "replaced" and r.llm_calls == 3 and len(requests) == 3
    assert "withheld the written summary" in r.answer
    assert "fund_name: Fund I; invested: 270,012,000" in r.answer
    assert "fund_name: Fund III; invested: 630,001,000" in r.answer
    for wrong_figure in ("405.0M", "636.0M", "62%", "Growth Fund I"):
        assert wrong_figure not in r.answer


def test_the_trace_records_each_figure_its_verdict_and_support(fake, wh, tmp_path):
    r, _, trace = ask(fake, wh, tmp_path, DIGIT, DERIVED)
    assert r.answer == DERIVED and r.verification == "revised"
    first, second = trace.verify
    assert first["verdict"] == "rejected" and second["verdict"] == "verified"
    bad = [c for c in first["checks"] if c["verdict"] == UNSUPPORTED]
    assert [c["figure"] for c in bad] == ["$636.0M"]
    support = {c["figure"]: c["support"] for c in second["checks"]}
    assert support["$630.0M"] == "cell invested (row 3)"
    assert support["$360.0M"].startswith("difference of invested and invested")
    assert support["48%"].startswith("share of invested total")
    assert support["$1.31B"] == "sum of invested"
    assert support["Fund III"].startswith("cell fund_name")
    assert [c.purpose for c in trace.llm_calls] == ["understand", "interpret", "reinterpret"]
    assert [s.state for s in trace.steps] == ["understand", "execute", "interpret", "verify",
                                              "interpret", "verify"]


# ---------------------------------------------------------------- pure checks

ROWS = [("Fund I", 270_012_000), ("Fund II", 404_993_000), ("Fund III", 630_001_000)]


def ev(**kw) -> Evidence:
    base = {"question": QUESTION, "columns": ["fund_name", "invested"], "rows": ROWS,
            "as_of": date(2026, 9, 30), "today": date(2026, 10, 15), "sql": SQL}
    return Evidence(**(base | kw))


def bad(answer: str, **kw) -> list[str]:
    return [c.figure for c in check(answer, ev(**kw)) if c.verdict == UNSUPPORTED]


@pytest.mark.parametrize(("answer", "unsupported"), [
    ("Fund II invested 404,993,000 dollars.", []),
    ("Fund II invested $0.40B.", []),
    ("Fund II invested $405M.", []),
    ("Fund II invested $404.9M.", ["$404.9M"]),  # 404,993,000 rounds to $405.0M
    ("Fund I invested $270.0M and Fund II $405.0M.", []),
    ("Fund I invested $405.0M and Fund II $270.0M.", ["$405.0M", "$270.0M"]),
    ("The three funds have invested $1.31B, $435.0M on average.", []),
    ("3 funds have invested.", []),  # the row count
    ("4 funds have invested.", ["4"]),
    ("About $1.3B in all, more than $600M of it by Fund III.", []),
    ("As of 2026-09-30, in Q3 2026, this year (2026).", []),
    ("As of 2026-09-29.", ["2026-09-29"]),
    ("Fund III invested 2.33x what Fund I did.", []),  # a ratio of two values
    ("Fund III invested 133.3% more than Fund I.", []),  # 630.0 / 270.0 - 1
    ("Fund III invested 150% more than Fund I.", ["150%"]),
    ("Fund III invested 133.8% more than Fund I.", ["133.8%"]),
    ("Fund III invested 56% more than Fund II.", []),  # percentage change 630/405 - 1
])
def test_what_counts_as_supported(answer, unsupported):
    assert bad(answer) == unsupported


def test_dates_years_and_names_from_question_sql_and_facts():
    e = ev(question="What did Fund I invest in 2023?", rows=[("Fund I", 12_000_000)],
           sql="SELECT ... WHERE investment_date >= '2023-01-01'")
    assert [c.figure for c in check("In 2023 Fund I invested $12.0M.", e)
            if c.verdict == UNSUPPORTED] == []
    assert [c.figure for c in check("In 2021 Fund I invested $12.0M.", e)
            if c.verdict == UNSUPPORTED] == ["2021"]
    named = [("Growth Fund I", ["Growth Fund I"]), ("Adam", ["Adam Brooks", "Adam Levin"])]
    checks = {c.figure: c for c in check("Growth Fund I, led by Adam.", e, named)}
    assert checks["Growth Fund I"].verdict == UNSUPPORTED
    assert checks["Adam"].verdict == UNSUPPORTED
    e2 = ev(facts=["Adam Levin"])
    assert {c.verdict for c in check("Adam led it.", e2, [("Adam", ["Adam Brooks",
                                                                     "Adam Levin"])])} \
        == {"supported"}


def test_a_follow_up_may_repeat_a_figure_the_thread_already_gave():
    e = ev(question="And what is it worth now?", columns=["current_value"],
           rows=[(2_840_000_000,)], thread=["How much did we invest in Databricks?",
                                           "We invested $236.5M in Databricks, Inc."])
    assert bad("It is worth $2.84B, up from the $236.5M we invested.", **{
        k: getattr(e, k) for k in ("question", "columns", "rows", "thread")}) == []
    assert bad("It is worth $2.84B, up from the $263.5M we invested.", **{
        k: getattr(e, k) for k in ("question", "columns", "rows", "thread")}) == ["$263.5M"]


def test_cells_the_model_was_not_shown_support_nothing():
    assert bad("Fund III invested $630.0M.", shown=2) == ["$630.0M"]
    assert bad("Fund III invested $630.0M.", shown=3) == []


def test_counts_the_question_spells_out_or_the_sql_limits():
    e = ev(question="What are our five largest funds?", sql=SQL + " LIMIT 3")
    assert [c.figure for c in check("The 5 largest, of which 3 are shown.", e)
            if c.verdict == UNSUPPORTED] == []
    assert [c.figure for c in check("The 6 largest.", e) if c.verdict == UNSUPPORTED] == ["6"]


def test_the_withheld_answer_verifies_against_its_own_result():
    text = withheld_answer(["fund_name", "invested"], ROWS)
    assert bad(text) == []
    assert withheld_answer(["n"], []).endswith("The query returned no rows.")


def test_every_reference_answer_verifies_against_its_own_result(wh):
    """No false rejections of the answers the evaluation calls right."""
    failures = []
    for ref in reference_answers(load_cases(), wh):
        wrong = [c for c in check(ref.answer, ref.evidence, named_in(wh, ref.answer))
                 if c.verdict == UNSUPPORTED]
        if wrong:
            failures.append((ref.case_id, ref.answer, wrong))
    assert failures == []
