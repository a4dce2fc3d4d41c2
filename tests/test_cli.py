"""The `fundbot` command end to end: the real openai client against a fake chat-completions
server on 127.0.0.1, the real DuckDB warehouse, the real SQLite store."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main, print_result
from states.ports import TurnResult

SQL_DB = ("SELECT sum(i.amount_usd) AS invested FROM investments i "
          "JOIN companies c ON c.company_id = i.company_id "
          "WHERE c.company_name = 'Databricks, Inc.'")


def run_json(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_ask_json_contract_happy_path(env, fake, capsys):
    fake.enqueue_tool_call(SQL_DB).enqueue_text("We invested $X in Databricks, Inc.")
    code, obj = run_json(capsys, "ask", "--json",
                         "How much did we invest in databricks?")
    assert code == 0
    assert set(obj) >= {"thread", "state", "answer", "sql", "columns", "rows", "clarification",
                        "options", "trace_id", "llm_calls", "timings_ms"}
    assert obj["state"] == "answered" and obj["sql"] == SQL_DB and obj["llm_calls"] == 2
    assert obj["columns"] == ["invested"] and len(obj["rows"]) == 1
    assert isinstance(obj["rows"][0][0], (int, float)) and obj["rows"][0][0] > 0
    assert obj["thread"].startswith("cli-") and obj["clarification"] is None
    # the real client sent our tool and the resolved company to the fake endpoint
    first = fake.chat_requests[0]
    assert first.body["tools"][0]["function"]["name"] == "sql_query"
    assert "Databricks, Inc." in json.dumps(first.body["messages"])
    assert first.auth_matches("sk-test-cli-SECRET")


def test_ask_json_clarify_then_thread_continues(env, fake, capsys):
    code, obj = run_json(capsys, "ask", "--json", "What has Adam invested in?")
    assert code == 0 and obj["state"] == "clarify" and obj["llm_calls"] == 0
    assert obj["options"] == ["Adam Brooks", "Adam Levin"] and not fake.chat_requests
    sql = ("SELECT c.company_name FROM investments i JOIN general_partners g ON "
           "g.gp_id = i.lead_gp_id JOIN companies c ON c.company_id = i.company_id "
           "WHERE g.full_name = 'Adam Levin'")
    fake.enqueue_tool_call(sql).enqueue_text("Adam Levin led these deals.")
    code, obj2 = run_json(capsys, "ask", "--json", "--thread", obj["thread"], "Adam Levin")
    assert code == 0 and obj2["state"] == "answered" and obj2["sql"] == sql
    assert obj2["thread"] == obj["thread"] and obj2["rows"]
    assert "What has Adam invested in?" in json.dumps(fake.chat_requests[0].body["messages"])


def test_ask_json_llm_down_is_a_clear_failure(env, fake, capsys):
    fake.enqueue_error(500).enqueue_error(500)
    code, obj = run_json(capsys, "ask", "--json", "How much did we invest in databricks?")
    assert code == 1 and obj["state"] == "failed" and obj["error_kind"] == "llm"
    assert "language model" in obj["answer"] and "SECRET" not in json.dumps(obj)


def test_ask_without_llm_configured_names_the_settings(monkeypatch, env, capsys):
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY")
    code = main(["ask", "hello"])
    err = capsys.readouterr().err
    assert code == 2 and "OPENAI_API_KEY" in err and "OPENAI_BASE_URL" in err
    assert "Ollama" in err and "Databricks" in err


def test_sql_json_rows(env, capsys):
    code, obj = run_json(capsys, "sql", "--json",
                         "SELECT fund_name, vintage_year FROM funds ORDER BY fund_id")
    assert code == 0 and obj["columns"] == ["fund_name", "vintage_year"]
    assert len(obj["rows"]) >= 8 and all(isinstance(r[1], int) for r in obj["rows"])


def test_sql_json_refused_exit_2(env, capsys):
    code, obj = run_json(capsys, "sql", "--json", "DROP TABLE investments")
    assert code == 2 and obj["error"]["kind"] == "refused" and obj["error"]["message"]


def test_sql_json_failure_exit_1(env, capsys):
    code, obj = run_json(capsys, "sql", "--json", "SELECT 1/0::INTEGER + 'x' FROM funds")
    assert code in (1, 2) and obj["error"]["kind"] in {"binder", "runtime", "refused", "parse"}
    code, obj = run_json(capsys, "sql", "--json", "SELEC fund_name FROM funds")
    assert code in (1, 2) and obj["error"]["kind"] in {"parse", "refused"}


@pytest.mark.parametrize("sql", [
    "SELECT " + "(" * 500 + "1" + ")" * 500 + " FROM funds",
    "SELECT 1 FROM funds WHERE " + "NOT " * 500 + "true",
    "SELECT " + "CASE WHEN true THEN " * 300 + "1" + " END" * 300 + " FROM funds",
])
def test_sql_nested_500_deep_is_one_line_not_a_traceback(env, capsys, sql):
    """Issue 10: `fundbot sql` printed a 1,000-frame RecursionError traceback."""
    code = main(["sql", sql])
    out = capsys.readouterr()
    assert code == 2 and "Traceback" not in out.err + out.out
    assert "nested too deeply" in out.err + out.out
    assert len((out.err + out.out).strip().splitlines()) <= 2


def test_missing_warehouse_names_db_init(monkeypatch, env, tmp_path, capsys):
    monkeypatch.setenv("FUNDBOT_DB", str(tmp_path / "missing.duckdb"))
    code = main(["sql", "SELECT 1"])
    assert code == 1 and "fundbot db init" in capsys.readouterr().err


def test_diagram_prints_mermaid(capsys):
    assert main(["diagram"]) == 0
    assert "stateDiagram-v2" in capsys.readouterr().out


def test_console_script_as_a_user_runs_it(env, fake, tmp_path):
    """One real process: the installed entry point, .env-free environment, JSON on stdout."""
    fake.enqueue_tool_call("SELECT count(*) AS n FROM funds").enqueue_text("We have 8 funds.")
    exe = Path(sys.executable).with_name("fundbot")
    proc = subprocess.run([str(exe), "ask", "--json", "How many funds do we have?"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["state"] == "answered" and obj["rows"][0][0] >= 8
    assert "SECRET" not in proc.stdout + proc.stderr


def test_ask_marks_a_verified_answer_and_says_when_it_was_replaced(env, fake, capsys):
    fake.enqueue_tool_call("SELECT count(*) AS n FROM funds").enqueue_text("We have 8 funds.")
    code, obj = run_json(capsys, "ask", "--json", "How many funds do we have?")
    assert obj["verification"] == "verified" and obj["answer"] == "We have 8 funds."
    shown = io.StringIO()
    print_result(TurnResult(thread_id="t", state="answered", answer=obj["answer"],
                            sql=obj["sql"], columns=obj["columns"], rows=[(8,)],
                            verification=obj["verification"]), out=shown)
    assert "; ✓ figures checked against the data; " in shown.getvalue()
    fake.enqueue_tool_call("SELECT count(*) AS n FROM funds")
    fake.enqueue_text("We have 9 funds.").enqueue_text("We have 9 funds, really.")
    code, obj = run_json(capsys, "ask", "--json", "How many funds do we have?")
    assert code == 0 and obj["verification"] == "replaced" and obj["llm_calls"] == 3
    assert "withheld the written summary" in obj["answer"] and "n: 8" in obj["answer"]
    assert "9" not in obj["answer"]
