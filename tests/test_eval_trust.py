"""Issue 11: an evaluation a team can trust to choose between two models.

Each test names the defect it pins down; scripted models (eval/scripted.py replays, or a
model behind the fake OpenAI-compatible server on 127.0.0.1) have known right and wrong
answers.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from bot import cli as bot_cli
from eval import cli, stats
from eval.cases import CaseError, case_from_dict, load_cases
from eval.metrics import check_answer, execution_match, sql_recall
from states import values as V
from tests.fakes.fake_openai import FakeOpenAI, error, text, tool_call

ROOT = Path(__file__).resolve().parents[1]


pytestmark = pytest.mark.usefixtures("clean_llm_env")


def _report(out: Path) -> dict:
    return json.loads((out / "report.json").read_text())


def _endpoint(monkeypatch, fake: FakeOpenAI) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")


def _write_cases(path: Path, *cases: dict | str) -> Path:
    path.write_text("".join((c if isinstance(c, str) else json.dumps(c)) + "\n" for c in cases))
    return path


def _question(body: dict) -> str:
    return [m["content"] for m in body["messages"] if m["role"] == "user"][-1]


# --------------------------------------------------------------- 1. pass means right


def test_two_candidate_columns_do_not_pass_on_either():
    # COUNT(*) 72 beside COUNT(DISTINCT company_id) 22 for a one-value question
    assert not execution_match(["n_rows", "n_companies"], [(72, 22)], ["exits"], [(72,)])
    assert not execution_match(["n_rows", "n_companies"], [(72, 22)], ["exits"], [(22,)])
    # an extra label or key column is no rival answer
    assert execution_match(["exit_year", "exits"], [("2025", 72)], ["exits"], [(72,)])
    assert execution_match(["fund_id", "exits"], [(3, 72)], ["exits"], [(72,)])


def test_a_wrong_figure_in_the_prose_fails_the_answer():
    q = "How much did we invest in Databricks?"
    bad = check_answer("We invested $263.5M in Databricks.", q, [236_500_000], ["invested"],
                       [(Decimal("236500000.00"),)])
    assert not bad.ok and bad.unbacked == ["$263.5M"] and bad.missed == [236_500_000]
    good = check_answer("We invested $236.5M in Databricks.", q, [236_500_000], ["invested"],
                        [(Decimal("236500000.00"),)])
    assert good.ok
    # "22 exits" when the reference says 72
    assert not check_answer("We had 22 exits.", "How many exits?", [72], ["exits"], [(72,)]).ok
    # a sector paired with another sector's count
    rows = [("AI/ML", 28), ("Cybersecurity", 38)]
    swapped = check_answer("AI/ML 38; Cybersecurity 28.", "By sector?", ["AI/ML", 28,
                           "Cybersecurity", 38], ["sector", "n"], rows)
    assert not swapped.ok
    assert check_answer("AI/ML 28; Cybersecurity 38.", "By sector?", ["AI/ML", 28,
                        "Cybersecurity", 38], ["sector", "n"], rows).ok
    # the numbers of a list are not figures; a figure the data does not give is
    listed = "Top two:\n1. AI/ML: 28\n2. Cybersecurity: 38"
    assert check_answer(listed, "Top 2 sectors?", ["AI/ML", 28, "Cybersecurity", 38],
                        ["sector", "n"], rows).ok
    assert check_answer("AI/ML 28 across 13 funds.", "q", ["AI/ML", 28], ["sector", "n"],
                        rows).unbacked == ["13"]


def test_wrong_number_model_passes_only_where_there_is_no_amount(sample_db, tmp_path):
    code = cli.main(["--model", "replay:wrong-numbers", "--db", sample_db, "--out",
                     str(tmp_path), "--quiet", "--min-answer-accuracy", "0.9",
                     "--tags", "aggregate,lookup"])
    assert code == 1  # below the answer-accuracy floor
    s = _report(tmp_path)["summary"]
    # its prose matches its own (wrong) rows, so verify has nothing to object to...
    assert s["verify_rejected"] == 0.0 and s["table_recall"] == 1.0
    # ...the evaluation does
    assert s["execution_accuracy"] < 0.5 and s["answer_accuracy"] < 0.5
    assert s["pass_rate"] < 0.5
    # what passes has no amount to misstate (names, statuses, years, dates)
    amounts = (V.MONEY, V.NUMBER, V.PERCENT, V.MULTIPLE)
    for c in _report(tmp_path)["cases"]:
        if c["passed"]:
            figs = V.figures(c["answer"] or "")
            assert not [f for f in figs if f.kind in amounts and not f.is_year], c["answer"]
    by_id = {c["id"]: c for c in _report(tmp_path)["cases"]}
    assert not by_id["agg-total-invested"]["passed"]
    assert "answer_accuracy" in _report(tmp_path)["by_tag"]["aggregate"]


# --------------------------------------------------------- 2. several right answers


def test_minimal_answers_match_on_the_important_columns():
    # "What sector is Databricks in?" answered by SELECT sector
    ref_cols, ref = ["company_name", "sector"], [("Databricks, Inc.", "Data Infrastructure")]
    assert execution_match(["sector"], [("Data Infrastructure",)], ref_cols, ref,
                           value_columns=["sector"])
    assert not execution_match(["sector"], [("Fintech",)], ref_cols, ref,
                               value_columns=["sector"])
    # key columns of the reference may be missing
    assert execution_match(["invested"], [(5,), (7,)], ["company_id", "invested"],
                           [(1, 5), (2, 7)])
    # names only for a top-N list (its order still counts)
    ref_cols, ref = ["company_name", "invested"], [("B", 9), ("A", 5)]
    assert execution_match(["company_name"], [("B",), ("A",)], ref_cols, ref, ordered=True,
                           value_columns=["company_name"])
    assert not execution_match(["company_name"], [("A",), ("B",)], ref_cols, ref,
                               ordered=True, value_columns=["company_name"])


def test_a_minimal_model_passes_the_bundled_cases(sample_db, tmp_path):
    """The reference cut down to its important columns (labels and keys left out) is right."""
    assert cli.main(["--model", "replay:minimal", "--db", sample_db, "--out", str(tmp_path),
                     "--quiet", "--tags", "lookup,value,aggregate",
                     "--min-pass-rate", "1", "--min-execution-accuracy", "1"]) == 0
    rep = _report(tmp_path)
    turns = [t for c in rep["cases"] for t in c["turns"] if t["expect"] == "answer"]
    narrower = [t for t in turns if len(t["columns"]) < len(t["reference_columns"])]
    assert len(narrower) >= 5  # several cases really were answered with fewer columns


def test_sql_may_list_acceptable_queries():
    case = case_from_dict({"id": "x", "question": "How many exits last year?",
                           "sql": ["SELECT 1 AS n", "SELECT 2 AS n"]})
    assert case.turns[0].sqls == ["SELECT 1 AS n", "SELECT 2 AS n"]
    with pytest.raises(CaseError, match="'sql' must be a string or a non-empty list"):
        case_from_dict({"id": "x", "question": "q", "sql": []})


def _alternative_model(body: dict) -> object:
    """Answers 'exits last year' by counting companies (the second accepted reading)."""
    if not body.get("tools"):
        return text("We had 22 exits in 2025.")
    return tool_call("SELECT COUNT(DISTINCT company_id) AS companies_exited FROM exits "
                     "WHERE exit_date >= DATE '2025-01-01' AND exit_date < DATE '2026-01-01'")


def test_an_alternative_reading_passes_and_is_scored_on_its_own_values(
        sample_db, tmp_path, monkeypatch):
    with FakeOpenAI(_alternative_model, model="m") as fake:
        _endpoint(monkeypatch, fake)
        code = cli.main(["--model", "m", "--db", sample_db, "--out", str(tmp_path),
                         "--quiet", "--tags", "time-exits-last-year"])
    assert code == 0
    turn = _report(tmp_path)["cases"][0]["turns"][0]
    assert turn["matched_reference"] == 1 and turn["values"] == [22]
    assert turn["execution_match"] and turn["answer_ok"]
    assert _report(tmp_path)["cases"][0]["passed"]


# ---------------------------------------------------- 3. a team's own minimal cases


def _team_model(body: dict) -> object:
    q = _question(body)
    if body.get("tools"):
        if "Fund II" in q:
            return tool_call("SELECT vintage_year FROM funds WHERE fund_name = 'Fund II'")
        return tool_call("SELECT COUNT(*) AS n FROM general_partners WHERE end_date IS NULL")
    # the second answer states no figure at all: verify passes it, answer accuracy does not
    return text("Fund II is a 2015 vintage." if "vintage_year" in q else
                "Several GPs are at the firm today.")


def test_a_hand_written_case_file_is_scored_fully(sample_db, tmp_path, monkeypatch):
    cases = _write_cases(
        tmp_path / "team.jsonl",
        {"id": "vintage", "question": "What vintage is Fund II?", "expect": "answer",
         "sql": "SELECT fund_name, vintage_year FROM funds WHERE fund_name = 'Fund II'",
         "value_columns": ["vintage_year"]},
        {"id": "gps", "question": "How many GPs are at the firm now?", "expect": "answer",
         "sql": "SELECT COUNT(*) AS gps FROM general_partners WHERE end_date IS NULL",
         "answer_template": "{gps} GPs are at the firm."})
    with FakeOpenAI(_team_model, model="m") as fake:
        _endpoint(monkeypatch, fake)
        cli.main(["--model", "m", "--db", sample_db, "--cases", str(cases),
                  "--out", str(tmp_path / "out"), "--quiet"])
    by_id = {c["id"]: c for c in _report(tmp_path / "out")["cases"]}
    vintage, gps = by_id["vintage"]["turns"][0], by_id["gps"]["turns"][0]
    assert vintage["values"] == [2015] and vintage["reference_answer"] == "2015."
    assert by_id["vintage"]["passed"] and vintage["answer_value_recall"] == 1.0
    assert gps["values"] == [10] and gps["reference_answer"] == "10 GPs are at the firm."
    assert gps["execution_match"] and not gps["answer_ok"]  # the count is never stated
    assert gps["answer_missing_values"] == [10]
    assert not by_id["gps"]["passed"] and gps["rouge1"] < 1


# ---------------------------------------------------------------- 5. money as money


def test_numbers_are_compared_as_money():
    total = Decimal("11747132870.00")
    assert not execution_match(["t"], [(float(total) - 177_000,)], ["t"], [(total,)])
    assert not execution_match(["t"], [(float(total) + 1_100_000,)], ["t"], [(total,)])
    assert not execution_match(["t"], [(float(total) + 0.02,)], ["t"], [(total,)])
    assert execution_match(["t"], [(11747132870.000002,)], ["t"], [(total,)])  # float sum
    # ROUND(moic, 2) is the same answer; ROUND(moic, 1) to 3.7 is not
    assert execution_match(["m"], [(Decimal("3.63"),)], ["m"], [(3.6254375419575156,)])
    assert not execution_match(["m"], [(3.7,)], ["m"], [(3.6254375419575156,)])


def test_null_is_its_own_value():
    assert not execution_match(["d"], [("None",)], ["d"], [(None,)])
    assert not execution_match(["d"], [(0,)], ["d"], [(None,)])
    assert execution_match(["d"], [(None,)], ["d"], [(None,)])


# ------------------------------------------------------------------ 4. the matcher


def test_answer_value_recall_reads_prose_with_the_one_matcher():
    # plurals and the gold answer's own multiple
    assert check_answer("We had 21 acquisitions.", "q", ["Acquisition", 21],
                        ["exit_type", "n"], [("Acquisition", 21)]).value_recall == 1.0
    assert check_answer("Fund II's MOIC is 3.63x.", "q", [3.6254375419575156], ["moic"],
                        [(3.6254375419575156,)]).ok
    # "Fund I" inside "Growth Fund I" is not Fund I
    funds = ["Fund I", "Growth Fund I"]
    r = check_answer("Growth Fund I holds it.", "q", funds, ["fund_name"],
                     [("Fund I",), ("Growth Fund I",)])
    assert r.value_recall == 0.5 and r.missed == ["Fund I"]
    # a value the question already states earns nothing
    r = check_answer("Fund III invested $630.0M.", "How much did Fund III invest?",
                     ["Fund III", 630_001_000], ["fund_name", "invested"],
                     [("Fund III", 630_001_000)])
    assert r.value_recall == 1.0 and r.missed == []


# ----------------------------------------------------------- 7. test-suite accuracy


def test_db_init_seed_builds_a_valid_variant_of_the_same_firm(sample_db, tmp_path, capsys):
    path = tmp_path / "v.duckdb"
    assert bot_cli.main(["db", "init", "--path", str(path), "--seed", "7"]) == 0
    assert "built" in capsys.readouterr().out
    sample = tmp_path / "sample.duckdb"  # a copy: the session's warehouses hold the original
    shutil.copyfile(sample_db, sample)  # open with the sandbox's settings, which DuckDB pins
    a, b = duckdb.connect(str(sample), read_only=True), duckdb.connect(str(path), read_only=True)
    try:
        names = "SELECT company_id, company_name, sector FROM companies ORDER BY 1"
        assert a.execute(names).fetchall() == b.execute(names).fetchall()
        funds = "SELECT fund_name FROM funds ORDER BY 1"
        assert a.execute(funds).fetchall() == b.execute(funds).fetchall()
        total = "SELECT SUM(amount_usd) FROM investments"
        assert a.execute(total).fetchone() != b.execute(total).fetchone()
        # still valid: every investment's company and fund exist, Databricks' rounds stand
        assert b.execute("SELECT COUNT(*) FROM investments i LEFT JOIN companies c "
                         "USING (company_id) WHERE c.company_id IS NULL").fetchone() == (0,)
        assert b.execute("SELECT SUM(amount_usd) FROM investments JOIN companies USING "
                         "(company_id) WHERE company_name = 'Databricks, Inc.'"
                         ).fetchone() == (Decimal("236500000.00"),)
    finally:
        a.close()
        b.close()


def test_hard_coded_values_fail_on_seeded_variants(sample_db, tmp_path):
    tags = "agg-total-invested,lookup-fund-vintage,agg-company-count"
    args = ["--db", sample_db, "--tags", tags, "--quiet"]
    assert cli.main(["--model", "replay:hard-coded", *args, "--out", str(tmp_path / "one")]
                    ) == 0  # right by coincidence on the one sample
    assert _report(tmp_path / "one")["summary"]["execution_accuracy"] == 1.0
    cli.main(["--model", "replay:hard-coded", *args, "--variants", "1",
              "--out", str(tmp_path / "hard")])
    rep = _report(tmp_path / "hard")
    by_id = {c["id"]: c["metrics"]["execution_accuracy"] for c in rep["cases"]}
    # the total differs on the variant; a fund's vintage and the company count do not
    assert by_id == {"agg-total-invested": 0.0, "lookup-fund-vintage": 1.0,
                     "agg-company-count": 1.0}
    assert rep["meta"]["variants"] == 1
    assert cli.main(["--model", "gold", *args, "--variants", "1",
                     "--out", str(tmp_path / "gold")]) == 0
    assert _report(tmp_path / "gold")["summary"]["execution_accuracy"] == 1.0


# -------------------------------------------------------------------- 6. statistics


def test_intervals_and_paired_tests():
    assert stats.wilson(0, 0) is None
    lo, hi = stats.wilson(90, 100)
    assert 0.82 < lo < 0.84 and 0.94 < hi < 0.95
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(0, 10) == pytest.approx(2 / 1024)
    same = stats.paired([1.0, 0.0, 1.0], [1.0, 0.0, 1.0])
    assert same["difference"] == 0 and same["p_value"] == 1.0
    assert not stats.distinguishable(same)
    worse = stats.paired([1.0] * 100, [1.0] * 80 + [0.0] * 20)
    assert worse["difference"] == pytest.approx(-0.2) and worse["p_value"] < 1e-4
    assert worse["ci95"][1] < 0 and stats.distinguishable(worse)


def test_reports_carry_intervals_and_compare_tells_noise_from_difference(
        sample_db, tmp_path, capsys):
    runs = {}
    for name, model in (("gold1", "gold"), ("gold2", "gold"), ("wrong", "replay:wrong-20pct")):
        cli.main(["--model", model, "--db", sample_db, "--out", str(tmp_path / name),
                  "--quiet", "--tags", "aggregate"])
        runs[name] = _report(tmp_path / name)
    ci = runs["gold1"]["summary"]["ci95"]
    assert set(ci) == {"pass_rate", "execution_accuracy", "answer_accuracy"}
    assert ci["pass_rate"][0] < 1.0 == ci["pass_rate"][1]
    capsys.readouterr()
    assert cli.main(["compare", str(tmp_path / "gold1"), str(tmp_path / "gold2")]) == 0
    assert "cases passed: gold1 and gold2 are not distinguishable" in capsys.readouterr().out
    page = tmp_path / "cmp.html"
    assert cli.main(["compare", str(tmp_path / "gold1"), str(tmp_path / "wrong"), "--json",
                     "--html", str(page)]) == 0
    data = json.loads(capsys.readouterr().out)
    m = {x["metric"]: x for x in data["metrics"]}
    assert m["pass_rate"]["difference"] < -0.1 and m["pass_rate"]["p_value"] < 0.05
    assert m["pass_rate"]["ci95"][1] < 0 and m["pass_rate"]["test"] == "mcnemar-exact"
    assert m["execution_accuracy"]["difference"] < 0
    assert m["table_recall"]["p_value"] == 1.0  # same tables: not distinguishable
    html = page.read_text()
    assert "95% CI" in html and "Now failing in wrong" in html and data["broken"][0] in html
    assert "95% CI" in (tmp_path / "gold1" / "report.html").read_text()
    assert "| 95% interval |" in (tmp_path / "gold1" / "report.md").read_text()


def _flaky_model():
    seen: dict[str, int] = {}

    def reply(body: dict) -> object:
        q = _question(body)
        if body.get("tools"):
            seen[q] = seen.get(q, 0) + 1
            # right the first time, wrong the second: the case flips between repeats
            if seen[q] == 1:
                return tool_call("SELECT vintage_year FROM funds WHERE fund_name = 'Fund III'")
            return tool_call("SELECT vintage_year FROM funds WHERE fund_name = 'Fund II'")
        return text("It is a 2018 vintage." if "2018" in q else "It is a 2015 vintage.")
    return reply


def test_repeat_reports_flip_rates_and_meta_records_sampling(sample_db, tmp_path, monkeypatch):
    with FakeOpenAI(_flaky_model(), model="m") as fake:
        _endpoint(monkeypatch, fake)
        cli.main(["--model", "m", "--db", sample_db, "--out", str(tmp_path), "--quiet",
                  "--tags", "lookup-fund-vintage", "--repeat", "2", "--concurrency", "1",
                  "--temperature", "0", "--seed", "42"])
        bodies = [r.body for r in fake.chat_requests]
    rep = _report(tmp_path)
    assert rep["meta"]["temperature"] == 0 and rep["meta"]["seed"] == 42
    assert rep["meta"]["repeat"] == 2
    assert all(b["temperature"] == 0 and b["seed"] == 42 for b in bodies)
    rec = rep["cases"][0]["repeats"]
    assert rec["runs"] == 2 and sorted(rec["passed"]) == [False, True]
    assert rec["flip_rate"] == 0.5 and rep["summary"]["flipped_cases"] == 1


# -------------------------------------------------------------- 8. a scriptable CLI


def test_dead_endpoint_or_unknown_model_exits_2_before_spending(
        sample_db, tmp_path, monkeypatch, capsys):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    argv = ["--db", sample_db, "--out", str(tmp_path), "--quiet", "--tags", "lookup"]
    assert cli.main(["--model", "m", *argv]) == 2
    assert "unreachable" in capsys.readouterr().err
    with FakeOpenAI(lambda body: text("x"), model="served") as fake:
        _endpoint(monkeypatch, fake)
        assert cli.main(["--model", "not-served", *argv]) == 2
        assert fake.chat_requests == []
    assert "does not serve the model 'not-served'" in capsys.readouterr().err
    assert not (tmp_path / "report.json").exists()


def test_every_turn_failing_exits_1(sample_db, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FUNDBOT_LLM_RETRIES", "0")
    with FakeOpenAI(lambda body: error(400, {"error": {"message": "bad"}}), model="m") as fake:
        _endpoint(monkeypatch, fake)
        code = cli.main(["--model", "m", "--db", sample_db, "--out", str(tmp_path),
                         "--quiet", "--tags", "lookup-fund-vintage,agg-total-invested"])
    assert code == 1
    assert "every turn failed" in capsys.readouterr().err
    assert _report(tmp_path)["summary"]["failed_turns"] == 2


@pytest.mark.parametrize("line, message", [
    ("[1, 2]", "team.jsonl:2: expected a JSON object, got a list"),
    ('{"id": "t", "question": "q?", "sql": "SELECT 1", "tags": "lookup"}',
     "team.jsonl:2: 'tags' must be a list of strings, not a string"),
    ('{"id": "t", "question": "q?", "sql": "SELECT 1", "values": "Opportunity"}',
     "team.jsonl:2 (t): 'values' must be a list of numbers and strings"),
    ('{"id": "t", "question": "q?", "sql": "SELECT nope FROM funds"}',
     "t turn 1: reference SQL fails"),
])
def test_bad_case_files_exit_2_with_the_line(line, message, sample_db, tmp_path, capsys):
    ok = {"id": "ok", "question": "What vintage is Fund III?",
          "sql": "SELECT vintage_year FROM funds WHERE fund_name = 'Fund III'"}
    cases = _write_cases(tmp_path / "team.jsonl", ok, line)
    assert cli.main(["--model", "gold", "--db", sample_db, "--cases", str(cases),
                     "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_a_failed_run_leaves_no_earlier_report_looking_current(sample_db, tmp_path, capsys):
    out = tmp_path / "out"
    assert cli.main(["--model", "gold", "--db", sample_db, "--out", str(out), "--quiet",
                     "--tags", "lookup-fund-vintage"]) == 0
    assert (out / "report.json").exists()
    broken = _write_cases(tmp_path / "b.jsonl", {"id": "b", "question": "q?",
                                                 "sql": "SELECT nope FROM funds"})
    assert cli.main(["--model", "gold", "--db", sample_db, "--out", str(out), "--quiet",
                     "--cases", str(broken)]) == 2
    assert not any((out / n).exists() for n in ("report.json", "report.md", "report.html"))
    assert not [p for p in out.iterdir() if p.name.startswith(".report")]


def test_unwritable_out_is_one_line_exit_2(sample_db, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert cli.main(["--model", "gold", "--db", sample_db, "--out", str(blocker / "out"),
                     "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fundbot eval: cannot write reports to") and err.count("\n") == 1


def test_ctrl_c_writes_a_partial_report_and_exits_130(sample_db, tmp_path):
    """A real `fundbot eval` process against a slow endpoint, interrupted mid-run."""
    with FakeOpenAI(lambda body: tool_call("SELECT 1 AS n") if body.get("tools")
                    else text("One."), latency=0.3, model="m") as fake:
        env = {**os.environ, "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "sk-test",
               "FUNDBOT_ENV_FILE": str(tmp_path / "absent.env")}
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "eval", "--model", "m", "--db", sample_db,
             "--out", str(tmp_path), "--quiet", "--concurrency", "1", "--tags", "aggregate"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            while len(fake.chat_requests) < 4:  # a few cases are done, most are queued
                assert proc.poll() is None, proc.communicate()
                time.sleep(0.05)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "interrupted" in err
    rep = _report(tmp_path)
    assert rep["interrupted"] is True and rep["meta"]["interrupted"] is True
    assert 0 < rep["summary"]["cases"] < len(load_cases(tags=["aggregate"]))


# ------------------------------------------------------------- 9. honest recall


def test_precision_beside_recall_and_resolved_keys_read_their_table(sample_db):
    from bot.warehouse import open_warehouse
    from states.ports import Limits

    with open_warehouse(sample_db, Limits()) as wh:
        cat = wh.catalog
    ref = ("SELECT SUM(i.amount_usd) AS invested FROM investments i JOIN companies c "
           "ON c.company_id = i.company_id WHERE c.company_name = 'Databricks, Inc.'")
    star = ("SELECT * FROM investments, companies, funds, general_partners, valuations, "
            "exits")
    r = sql_recall(star, ref, cat)
    assert r.table_recall == 1.0 and r.table_precision == pytest.approx(2 / 6)
    assert r.column_precision < 0.2
    by_key = sql_recall("SELECT SUM(amount_usd) FROM investments WHERE company_id = 273",
                        ref, cat)
    assert by_key.table_recall == 1.0 and by_key.column_recall == 1.0
    assert by_key.table_precision == 1.0
    by_gp = sql_recall("SELECT COUNT(*) FROM investments WHERE lead_gp_id IN (1, 8)",
                       "SELECT COUNT(*) FROM investments i JOIN general_partners g ON "
                       "g.gp_id = i.lead_gp_id WHERE g.full_name = 'Adam Brooks'", cat)
    assert by_gp.table_recall == 1.0 and by_gp.column_recall == 1.0


def test_moic_is_rounded_once(sample_db, tmp_path):
    assert cli.main(["--model", "gold", "--db", sample_db, "--out", str(tmp_path), "--quiet",
                     "--tags", "value-fund-ii-moic"]) == 0
    case = _report(tmp_path)["cases"][0]
    assert case["answer"] == "Fund II's MOIC is 3.63x."  # 3.6254, not 3.625 -> 3.62
    assert case["metrics"]["answer_accuracy"] == 1.0
