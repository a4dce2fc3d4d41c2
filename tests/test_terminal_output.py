"""What the terminal shows: readable headers, numbers right-aligned, money as money, the SQL
laid out on lines, the trace id, --version, and a clear word when "3" answers a question
with two options."""

from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest

from bot.cli import main, result_blocks, text_table
from bot.store import SqliteStore
from states.ports import TurnResult

SQL_ADAM = ("SELECT c.company_name, sum(i.amount_usd) AS invested_usd FROM investments i "
            "JOIN general_partners g ON g.gp_id = i.lead_gp_id JOIN companies c "
            "ON c.company_id = i.company_id WHERE g.full_name = 'Adam Levin' GROUP BY 1")


def test_table_headers_alignment_and_money():
    table = text_table(["company_name", "amount_usd", "rounds"],
                       [("Databricks, Inc.", Decimal("2500000.00"), 3),
                        ("Bee", Decimal("850.5"), 12)])
    head, rule, first, second = table.splitlines()
    assert head.split("  ")[0] == "Company name" and "Amount (USD)" in head
    assert "$2,500,000" in first and "$850.50" in second
    # right-aligned: the numbers end where their column ends
    for line in (first, second):
        assert line.endswith(("  3", " 12"))
    assert first.index("$2,500,000") + len("$2,500,000") == second.index("$850.50") + len(
        "$850.50")
    assert first.startswith("Databricks, Inc.") and second.startswith("Bee ")


def test_answer_shows_pretty_sql_and_trace():
    r = TurnResult(thread_id="cli-1", state="answered", answer="Adam Levin led 2 deals.",
                   sql=SQL_ADAM, columns=["company_name", "invested_usd"],
                   rows=[("Acme", Decimal("1200000"))], trace_id="abc123def4567890",
                   as_of="2026-09-30", timings_ms={"total": 1234})
    text = "\n".join(result_blocks(r))
    lines = text.splitlines()
    assert any(line.strip().startswith("FROM investments") for line in lines)
    assert any(line.strip().startswith("WHERE") for line in lines)
    assert lines[-1] == "(data as of 2026-09-30; 1 row; 1.2s; trace abc123def4567890)"


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("fundbot 0.")


def test_ask_prints_the_trace_id(env, fake, capsys):
    fake.enqueue_tool_call("SELECT count(*) AS funds FROM funds").enqueue_text("8 funds.")
    assert main(["ask", "how many funds?"]) == 0
    found = re.findall(r"trace ([0-9a-f]{16})\)", capsys.readouterr().out)
    assert len(found) == 1
    assert SqliteStore(env["FUNDBOT_STATE"]).get_trace(found[0]).final_state == "answered"


def test_an_option_number_out_of_range_says_why(env, fake, capsys):
    assert main(["ask", "--json", "What has Adam invested in?"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["options"] == ["Adam Brooks", "Adam Levin"]
    for reply in ("3", "third"):
        assert main(["ask", "--json", "--thread", first["thread"], reply]) == 0
        again = json.loads(capsys.readouterr().out)
        assert again["state"] == "clarify" and again["options"] == first["options"]
        assert f'"{reply}" is not one of the options: there are only 2' in \
            again["clarification"]
    assert not fake.chat_requests  # nothing went to the model
    fake.enqueue_tool_call(SQL_ADAM).enqueue_text("Adam Levin led these.")
    assert main(["ask", "--json", "--thread", first["thread"], "2"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["state"] == "answered" and "Adam Levin" in json.dumps(fake.bodies[0])
