"""The bundled cases and the gold self-check: the replay model must score 1.0 end to end."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest

from eval import cli
from eval.cases import CaseError, case_from_dict, load_cases
from eval.gold import GoldLLM, parse_result_table, render
from states.ports import QueryResult
from states.prompts import OUT_OF_SCOPE, result_table

CATEGORIES = {"lookup", "aggregate", "join", "time", "value", "first-name", "company-name",
              "follow-up", "out-of-scope", "no-guess", "ambiguous", "clarify"}


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch, tmp_path):
    """No .env, pinned dates or endpoints from the developer's shell leak into a run."""
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "absent.env"))
    for name in ("FUNDBOT_TODAY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FUNDBOT_MODEL"):
        monkeypatch.delenv(name, raising=False)


# ------------------------------------------------------------------------ cases


def test_cases_cover_every_category():
    cases = load_cases()
    assert len(cases) >= 80
    tags = {t for c in cases for t in c.tags}
    assert CATEGORIES <= tags, CATEGORIES - tags
    assert {c.expect for c in cases} == {"answer", "clarify", "refuse"}
    follow_ups = [c for c in cases if "follow-up" in c.tags]
    assert follow_ups and all(len(c.turns) >= 2 for c in follow_ups)
    # the ambiguous Adam is asked about, and resolved by name, number and ordinal
    adam = [c for c in cases if c.turns[0].options == ["Adam Brooks", "Adam Levin"]]
    assert {c.turns[1].question for c in adam} >= {"Adam Levin", "1", "the second one"}
    # one "today" rule, the catalogue's: today is the data date, so no case pins another
    assert all(c.today is None for c in cases), [c.id for c in cases if c.today]
    # every answer turn carries values derived from its SQL (an empty list only when the
    # reference result has no important cell)
    for c in cases:
        for t in c.answer_turns:
            assert t.sql and t.answer, c.id


def test_stored_values_and_answers_match_the_data(sample_db):
    from bot.warehouse import open_warehouse
    from eval.make_cases import check
    from states.ports import Limits

    with open_warehouse(sample_db, Limits()) as wh:
        assert check(load_cases(), wh) == []


def test_a_changed_value_is_reported_by_the_check(sample_db):
    from bot.warehouse import open_warehouse
    from eval.make_cases import check
    from states.ports import Limits

    case = next(c for c in load_cases() if c.id == "agg-total-invested")
    case.turns[0].values = [case.turns[0].values[0] + 1_000_000]
    with open_warehouse(sample_db, Limits()) as wh:
        problems = check([case], wh)
    assert len(problems) == 1 and "agg-total-invested" in problems[0]


def test_bad_case_lines_are_refused_with_their_place(tmp_path):
    with pytest.raises(CaseError, match="needs 'sql'"):
        case_from_dict({"id": "x", "question": "q?", "expect": "answer"})
    with pytest.raises(CaseError, match="expect must be"):
        case_from_dict({"id": "x", "question": "q?", "expect": "maybe"})
    f = tmp_path / "cases.jsonl"
    line = json.dumps({"id": "a", "question": "q?", "expect": "refuse", "answer": "no"})
    f.write_text(line + "\n" + line + "\n")
    with pytest.raises(CaseError, match="cases.jsonl:2: duplicate case id 'a'"):
        load_cases(f)


# -------------------------------------------------------------------- templates


def test_the_result_table_the_model_sees_parses_back():
    result = QueryResult(["company_name", "invested", "d"],
                         [("Databricks, Inc.", 236_500_000.0, date(2013, 9, 17)),
                          ("Kite & Key | Co", None, date(2020, 1, 1))])
    text = "Question: q\n\nResult (2 rows):\n" + result_table(result, 50)
    cols, rows = parse_result_table(text)
    assert cols == ["company_name", "invested", "d"]
    assert rows == [("Databricks, Inc.", 236_500_000, "2013-09-17"),
                    ("Kite & Key / Co", None, "2020-01-01")]


def test_render_fills_fields_loops_and_formats():
    cols = ["fund_name", "invested", "moic"]
    rows = [("Fund I", 1_234_567, 2.345), ("Fund II", 850_000, 1.0)]
    tpl = "Top: {fund_name} at {moic:x}. All: [[{fund_name} {invested:money}]] ({n_rows})."
    assert render(tpl, cols, rows) == ("Top: Fund I at 2.35x. All: Fund I $1.2M; "
                                       "Fund II $850K (2).")
    with pytest.raises(KeyError, match="not a result column"):
        render("{nope}", cols, rows)


def test_gold_model_replies_like_a_perfect_model():
    case = case_from_dict({"id": "c", "turns": [
        {"question": "How much has Adam invested?", "expect": "clarify",
         "options": ["Adam Brooks", "Adam Levin"]},
        {"question": "Adam Levin", "sql": "SELECT 1 AS n", "answer_template": "It is {n}."},
        {"question": "Weather?", "expect": "refuse", "answer": "Only fund data."},
    ]})
    gold = GoldLLM(case)
    tools = [{"type": "function", "function": {"name": "sql_query"}}]
    assert "Adam Brooks or Adam Levin" in gold.complete([{"role": "user", "content": "q"}],
                                                        tools).content
    gold.turn = 1
    reply = gold.complete([{"role": "user", "content": "Adam Levin"}], tools)
    assert json.loads(reply.tool_calls[0].arguments) == {"sql": "SELECT 1 AS n"}
    empty = gold.complete([{"role": "user", "content": "That query ran but returned no rows."}],
                          tools)
    assert empty.content == "KEEP"
    shown = "Result (1 rows):\n" + result_table(QueryResult(["n"], [(1,)]), 50)
    assert gold.complete([{"role": "user", "content": shown}]).content == "It is 1."
    gold.turn = 2
    assert gold.complete([{"role": "user", "content": "x"}], tools).content == (
        f"{OUT_OF_SCOPE} Only fund data.")
    assert len(gold.history) == 5 and gold.history[-1]["tools"] == tools


# -------------------------------------------------------------- the self-check


@pytest.fixture(scope="module")
def gold_run(sample_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("gold")
    mp = pytest.MonkeyPatch()
    mp.setenv("FUNDBOT_ENV_FILE", str(out / "absent.env"))
    for name in ("FUNDBOT_TODAY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        mp.delenv(name, raising=False)
    try:
        floors = [arg for m in ("table-recall", "column-recall", "value-recall",
                                "execution-accuracy", "answer-accuracy",
                                "answer-value-recall", "clarification-recall",
                                "refusal-recall", "pass-rate") for arg in (f"--min-{m}", "1")]
        code = cli.main(["--model", "gold", "--db", sample_db, "--out", str(out),
                         "--concurrency", "4", "--quiet", *floors])
    finally:
        mp.undo()
    return code, out


def test_gold_scores_one_on_recall_and_execution(gold_run):
    code, out = gold_run
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    s = report["summary"]
    assert s["cases"] == len(load_cases())
    # every metric, the answer metrics included: the harness, the cases and the matcher agree
    for metric in ("table_recall", "column_recall", "table_precision", "column_precision",
                   "value_recall", "answer_value_recall", "execution_accuracy",
                   "answer_accuracy", "rouge1", "rouge2", "rougeL", "outcome_accuracy",
                   "clarification_precision", "clarification_recall", "refusal_precision",
                   "refusal_recall", "pass_rate"):
        assert s[metric] == 1.0, metric
    assert s["ci95"]["pass_rate"][1] == 1.0 and s["ci95"]["pass_rate"][0] > 0.95
    assert s["stale_cases"] == 0 and s["errors"] == 0 and s["failed_turns"] == 0
    for tag, t in report["by_tag"].items():
        for metric in ("execution_accuracy", "answer_accuracy", "answer_value_recall"):
            if t[metric] is not None:
                assert t[metric] == 1.0, (tag, metric)


def test_gold_run_makes_the_expected_clarifications(gold_run):
    _, out = gold_run
    report = json.loads((out / "report.json").read_text())
    cases = {c.id: c for c in load_cases()}
    clarify_turns = 0
    for rec in report["cases"]:
        for spec, turn in zip(cases[rec["id"]].turns, rec["turns"], strict=True):
            assert turn["outcome"] == spec.expect, (rec["id"], turn["question"])
            if spec.expect == "clarify":
                clarify_turns += 1
                assert turn["clarification"]
                if spec.options:  # a name clarification costs no LLM call
                    assert turn["options"] == spec.options and turn["llm_calls"] == 0
    assert clarify_turns >= 8
    adam = next(c for c in report["cases"] if c["id"] == "name-adam-clarify-by-name")
    assert adam["turns"][1]["sql"] == cases["name-adam-clarify-by-name"].turns[1].sql
    assert "Adam Levin" in adam["turns"][1]["answer"]


def test_gold_report_records_each_case(gold_run):
    _, out = gold_run
    report = json.loads((out / "report.json").read_text())
    rec = next(c for c in report["cases"] if c["id"] == "value-databricks-invested-vs-now")
    assert rec["passed"] and rec["llm_calls"] == 2  # understand + interpret
    assert rec["prompt_tokens"] > 0 and rec["completion_tokens"] > 0 and rec["seconds"] > 0
    assert "Databricks, Inc." in rec["sql"] and "$236.5M" in rec["answer"]
    assert rec["metrics"]["rouge1"] == 1.0 and rec["today"] == "2026-09-30"
    assert report["meta"]["model"] == "gold" and report["meta"]["as_of"] == "2026-09-30"


def test_gold_report_files_are_readable(gold_run):
    _, out = gold_run
    md = (out / "report.md").read_text()
    assert md.startswith("# fundbot evaluation: gold")
    assert "| Execution accuracy | 100.0% |" in md and "## By tag" in md
    assert "## Worst cases\n\nEvery case passed with full marks." in md
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 5 and "</html>" in page
    # self-contained: no scripts, stylesheets or images fetched from anywhere; the cases' charts
    # are embedded PNGs beside their result tables, described for screen readers
    assert not re.search(r"<(script|link)\b|url\(", page)
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) >= 8 and all(s.startswith("data:image/png;base64,iVBORw0KGgo")
                                     for s in sources)
    alts = re.findall(r"<img class='chart' src='[^']*' alt='([^']+)'", page)
    assert len(alts) == len(sources) and all(" chart of " in a for a in alts)
    report = json.loads((out / "report.json").read_text())
    charted = [t["chart"] for c in report["cases"] for t in c["turns"] if t.get("chart")]
    assert len(charted) == len(sources) and all(set(ch) == {"kind", "alt"} for ch in charted)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", page)


def test_stale_values_are_flagged_not_scored_silently(sample_db, tmp_path):
    lines = cli.DEFAULT_CASES.read_text(encoding="utf-8").splitlines()
    line = next(ln for ln in lines if '"agg-total-invested"' in ln)
    d = json.loads(line)
    d["values"] = [d["values"][0] * 2]  # as if the data had changed since the case was made
    cases = tmp_path / "cases.jsonl"
    cases.write_text(json.dumps(d) + "\n")
    code = cli.main(["--model", "gold", "--db", sample_db, "--cases", str(cases),
                     "--out", str(tmp_path / "out"), "--quiet", "--min-value-recall", "1"])
    assert code == 1
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["summary"]["stale_cases"] == 1
    assert report["summary"]["value_recall"] == 0.0
    assert report["cases"][0]["stale"] and "stored" in report["cases"][0]["stale"][0]
    assert "stale" in (tmp_path / "out" / "report.md").read_text()


def test_gold_answers_all_verify(gold_run):
    """Verify rejects none of the gold model's answers (no false rejections)."""
    _, out = gold_run
    report = json.loads((out / "report.json").read_text())
    answered = [t for c in report["cases"] for t in c["turns"] if t["outcome"] == "answer"]
    assert len(answered) >= 100
    assert {t["verification"] for t in answered} == {"verified"}
    s = report["summary"]
    assert s["verify_rejected"] == 0.0 and s["verify_replacement_right"] is None
