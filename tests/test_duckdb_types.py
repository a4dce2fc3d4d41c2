"""Every type DuckDB can return goes through the one value formatter (states/prompts.py) to
strict JSON, the terminal, the prompt's result table and Slack, and intervals stay exact."""

from __future__ import annotations

import json

import pytest

from bot.cli import main, text_table
from bot.slack.render import format_value
from bot.warehouse import DuckWarehouse
from states.ports import Limits, QueryResult
from states.prompts import fmt_value, jsonable, result_table


def _strict(text: str):
    """json.loads that refuses NaN/Infinity, as strict parsers (JavaScript's, jq's) do."""
    def bad(name: str):
        raise ValueError(f"not JSON: {name}")
    return json.loads(text, parse_constant=bad)


@pytest.fixture(scope="module")
def wh(sample_db):
    with DuckWarehouse(sample_db, Limits(), docs={}) as w:
        yield w


def test_every_duckdb_type_has_one_rendering_everywhere(wh):
    # test_all_types(): one column per DuckDB type (min, max and NULL rows), nested ones too
    res = wh.sandbox_execute("SELECT * FROM test_all_types()")
    assert len(res.columns) >= 50 and len(res.rows) == 3
    for i, column in enumerate(res.columns):
        values = [row[i] for row in res.rows]
        _strict(json.dumps(jsonable(values), allow_nan=False))
        for v in values:
            text = fmt_value(v)
            assert isinstance(text, str) and text, column
            assert format_value(v)  # Slack
    assert result_table(res, 3).count("\n") >= 4  # the prompt's table
    assert text_table(res.columns, res.rows)  # the terminal's


def test_intervals_are_exact_not_thirty_day_months(wh):
    res = wh.execute("SELECT age(DATE '2026-01-01', DATE '2010-09-15') AS tenure, "
                     "INTERVAL 3 DAY AS short, INTERVAL 1 MONTH AS month")
    assert res.rows == [("15 years 3 months 16 days", "3 days", "1 month")]
    assert res.columns == ["tenure", "short", "month"]


def test_non_finite_numbers_are_strict_json_and_readable():
    assert jsonable([float("nan"), float("inf"), -float("inf")]) == [None, "Infinity",
                                                                     "-Infinity"]
    assert [fmt_value(v) for v in (float("nan"), float("inf"))] == ["NULL", "Infinity"]
    table = result_table(QueryResult(columns=["x"], rows=[(float("inf"),)]), 5)
    assert "Infinity" in table


def test_sql_json_on_duckdb_types(env, capsys):
    sql = ("SELECT INTERVAL 3 DAY AS i, TIME '10:30:00' AS t, "
           "'0c9a7f2e-6c1f-4c57-9d5e-3f1b2a9e8d11'::UUID AS u, 1/0 AS inf, "
           "'nan'::DOUBLE AS nan, age(DATE '2026-01-01', DATE '2010-09-15') AS tenure")
    assert main(["sql", "--json", sql]) == 0
    obj = _strict(capsys.readouterr().out)
    assert obj["rows"] == [["3 days", "10:30:00", "0c9a7f2e-6c1f-4c57-9d5e-3f1b2a9e8d11",
                            "Infinity", None, "15 years 3 months 16 days"]]


def test_ask_json_prints_a_tenure_answer(env, fake, capsys):
    sql = ("SELECT full_name, age(DATE '2026-09-30', start_date) AS tenure "
           "FROM general_partners ORDER BY 1 LIMIT 2")
    fake.enqueue_tool_call(sql).enqueue_text("Their tenures are listed.")
    code = main(["ask", "--json", "How long has each partner been with us?"])
    obj = _strict(capsys.readouterr().out)
    assert code == 0 and obj["state"] == "answered", obj
    assert all(isinstance(r[1], str) and "year" in r[1] for r in obj["rows"])
