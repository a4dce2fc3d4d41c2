"""One rule for exit codes and `refused` (README "Exit codes"), tested for every outcome:
0 answered or asking back; 1 failed (could not answer: SQL, LLM); 2 refused (declined as
asked: outside the data, not a read-only query, empty or too long) or bad usage."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.warehouse import DuckWarehouse
from states.guard import check
from states.ports import Limits, QueryError

BAD_SQL = "SELECT nope FROM funds"


@pytest.fixture(scope="module")
def catalog(sample_db):
    with DuckWarehouse(sample_db, Limits(), docs={}) as wh:
        return wh.catalog


def ask(capsys, *argv):
    code = main(["ask", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_answered(env, fake, capsys):
    fake.enqueue_tool_call("SELECT count(*) AS n FROM funds").enqueue_text("8 funds.")
    code, r = ask(capsys, "how many funds?")
    assert (code, r["state"], r["refused"]) == (0, "answered", False)


def test_clarify(env, fake, capsys):
    code, r = ask(capsys, "What has Adam invested in?")
    assert (code, r["state"], r["refused"]) == (0, "clarify", False)


def test_out_of_scope_is_refused(env, fake, capsys):
    fake.enqueue_text("OUT OF SCOPE: I only know the fund's data.")
    code, r = ask(capsys, "what is the weather in Paris?")
    assert (code, r["state"], r["refused"]) == (2, "answered", True)


@pytest.mark.parametrize("question, kind", [("DROP TABLE investments", "refused"),
                                            ("   ", "empty"), ("x" * 5000, "too_long")])
def test_declined_requests_are_refused(env, fake, capsys, question, kind):
    code, r = ask(capsys, question)
    assert (code, r["state"], r["refused"], r["error_kind"]) == (2, "failed", True, kind)
    assert not fake.chat_requests


def test_sql_that_keeps_failing_is_a_failure_not_a_refusal(env, fake, capsys, monkeypatch):
    monkeypatch.setenv("FUNDBOT_DEBUG_ATTEMPTS", "1")
    fake.enqueue_tool_call(BAD_SQL).enqueue_tool_call(BAD_SQL)
    code, r = ask(capsys, "how many funds?")
    assert (code, r["state"], r["refused"], r["error_kind"]) == (1, "failed", False, "sql")


def test_llm_trouble_is_a_failure(env, fake, capsys):
    fake.enqueue_error(500).enqueue_error(500).enqueue_error(500)
    code, r = ask(capsys, "how many funds?")
    assert (code, r["state"], r["refused"], r["error_kind"]) == (1, "failed", False, "llm")


@pytest.mark.parametrize("sql, code, kind", [
    ("SELECT count(*) FROM funds", 0, None),
    ("DROP TABLE funds", 2, "refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", 2, "refused"),
    (BAD_SQL, 1, "binder"),  # an unknown column is DuckDB's binder error, not a refusal
    ("SELECT * FROM fundz", 1, "binder"),
    ("SELEC 1", 1, "parse"),
])
def test_sql_command(env, capsys, sql, code, kind):
    assert main(["sql", "--json", sql]) == code
    out = json.loads(capsys.readouterr().out)
    if kind is None:
        assert "rows" in out
    else:
        assert out["error"]["kind"] == kind and out["refused"] is (kind == "refused")


def test_bad_usage_and_settings_exit_2(env, monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["ask"])  # no question
    assert stop.value.code == 2
    monkeypatch.setenv("FUNDBOT_MAX_ROWS", "lots")
    assert main(["sql", "SELECT 1"]) == 2


# names that do not exist: a binder error with the guard's helpful message (moved here from
# test_guard's refusals when they stopped being refusals)
@pytest.mark.parametrize(("sql", "fragment"), [
    ("select * from fundz", "Did you mean funds"),
    ("select fund_name from funds where fund_id = (select fund_id from investmentz)",
     "unknown table investmentz"),
    ("select fund_nam from funds", "column fund_nam does not exist"),
    ("select f.nope from funds f", "column f.nope does not exist"),
    ("select fund_name, bogus_col from funds union select company_name, sector from companies",
     "bogus_col"),
    ("with c as (select fund_id from funds) select c.fund_name from c", "c.fund_name"),
])
def test_unknown_names_are_binder_errors(catalog, sql, fragment):
    with pytest.raises(QueryError) as info:
        check(sql, catalog, 1000)
    assert info.value.kind == "binder" and fragment in info.value.message
