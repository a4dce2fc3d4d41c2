"""Charts: the choice rules on a table of result shapes, and real PNGs for the bundled cases."""

from __future__ import annotations

import io
import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from PIL import Image

from bot.chart import MAX_POINTS, chart_for, choose, label, money_short
from bot.cli import main
from bot.warehouse import open_warehouse
from states.ports import Limits
from tests.fakes.fake_openai import tool_calls

D = date
Q = [D(2025, 3, 31), D(2025, 6, 30), D(2025, 9, 30), D(2025, 12, 31)]

# (name, columns, rows, hint, expected kind or None, expected x)
SHAPES = [
    ("one row", ["total"], [(Decimal("236500000.00"),)], None, None, None),
    ("two rows", ["fund_name", "invested"], [("Fund I", 1), ("Fund II", 2)], None, None, None),
    ("time series", ["valuation_date", "fair_value_usd"],
     [(d, Decimal(i * 1e6)) for i, d in enumerate(Q, 1)], None, "line", "valuation_date"),
    ("two series", ["valuation_date", "invested_usd", "value_usd"],
     [(d, i, i * 2) for i, d in enumerate(Q, 1)], None, "line", "valuation_date"),
    ("five series is too many", ["d", "a", "b", "c", "e", "f"],
     [(d, 1, 2, 3, 4, 5) for d in Q], None, None, None),
    ("years as time", ["vintage_year", "committed_usd"],
     [(2018, 5e8), (2020, 7e8), (2022, 9e8)], None, "line", "vintage_year"),
    ("quarters as time", ["quarter", "deals"],
     [("2025-Q1", 4), ("2025-Q2", 7), ("2025-Q3", 5)], None, "line", "quarter"),
    ("series per fund", ["valuation_date", "fund_name", "value_usd"],
     [(d, f, 1.0) for d in Q for f in ("Fund I", "Fund II")], None, "line", "valuation_date"),
    ("a repeated date is not a line", ["valuation_date", "value_usd"],
     [(Q[0], 1), (Q[0], 2), (Q[1], 3)], None, None, None),
    ("category and number", ["sector", "companies"],
     [("Fintech", 30), ("Healthcare", 46), ("Robotics", 28)], None, "bar", "sector"),
    ("21 categories is too many", ["company", "value_usd"],
     [(f"Co {i}", i) for i in range(21)], None, None, None),
    ("20 categories", ["company", "value_usd"],
     [(f"Co {i}", i) for i in range(20)], None, "bar", "company"),
    ("two numbers per category", ["fund_name", "invested", "value"],
     [("Fund I", 1, 2), ("Fund II", 3, 4), ("Fund III", 5, 6)], None, None, None),
    ("shares by name", ["sector", "share_pct"],
     [("Fintech", 40.0), ("Healthcare", 35.0), ("Robotics", 25.0)], None, "share", "sector"),
    ("fractions of a whole", ["sector", "portion"],
     [("Fintech", 0.5), ("Healthcare", 0.3), ("Robotics", 0.2)], None, "share", "sector"),
    ("unnamed fractions that sum to one", ["sector", "x"],
     [("A", 0.5), ("B", 0.25), ("C", 0.25)], None, "share", "sector"),
    ("a duplicated label is not a bar", ["sector", "n"],
     [("A", 1), ("A", 2), ("B", 3)], None, None, None),
    ("ids are not numbers", ["company_id", "company_name"],
     [(1, "a"), (2, "b"), (3, "c")], None, None, None),
    ("text only", ["company_name", "sector"], [("a", "b"), ("c", "d"), ("e", "f")],
     None, None, None),
    ("the model can switch a chart off", ["sector", "companies"],
     [("Fintech", 30), ("Healthcare", 46), ("Robotics", 28)], "none", None, None),
    ("the model cannot force a chart", ["company_name", "sector"],
     [("a", "b"), ("c", "d"), ("e", "f")], "line", None, None),
    ("the model picks between allowed kinds", ["vintage_year", "committed_usd"],
     [(2018, 5e8), (2020, 7e8), (2022, 9e8)], "bar", "bar", "vintage_year"),
    ("a NULL bar is no chart", ["sector", "companies"],
     [("Fintech", 30), ("Healthcare", None), ("Robotics", 28)], None, None, None),
]


@pytest.mark.parametrize("name,columns,rows,hint,kind,x", SHAPES, ids=[s[0] for s in SHAPES])
def test_choice_rules(name, columns, rows, hint, kind, x):
    spec = choose(columns, rows, hint)
    assert (spec.kind if spec else None) == kind
    if spec:
        assert spec.x == x


# The drawing's time bound (5 s) is the bot's guard, tested with timeout_s=0; on a loaded
# machine a chart can take longer, and what these tests check is the picture, not its speed.
ROOMY_S = 300.0

def test_money_and_counts_are_told_apart():
    money = choose(["fund_name", "invested"], [("A", Decimal("1.5e8")), ("B", Decimal("2e9")),
                                              ("C", Decimal("3e7"))])
    counts = choose(["full_name", "investments"], [("A", 285), ("B", 34), ("C", 70)])
    assert money.money and not counts.money


@pytest.mark.parametrize("value,text", [(1.2e6, "$1.2M"), (3e9, "$3B"), (4e5, "$400K"),
                                        (236.5e6, "$236.5M"), (-2.5e9, "-$2.5B"), (12, "$12")])
def test_money_on_axes(value, text):
    assert money_short(value) == text


def test_headers_read_as_words():
    assert label("fair_value_usd") == "Fair value (USD)"
    assert label("share_pct") == "Share (%)"


def _pixels(png: bytes) -> tuple[tuple[int, int], float]:
    img = Image.open(io.BytesIO(png)).convert("RGB")
    white = dict((c, n) for n, c in img.getcolors(img.size[0] * img.size[1])).get((255,) * 3, 0)
    ink = img.size[0] * img.size[1] - white
    return img.size, ink / (img.size[0] * img.size[1])


def _qualifying_cases(db: str) -> list[tuple[dict, list[str], list[tuple]]]:
    """The bundled answer cases whose reference result deserves a chart, run as the bot runs."""
    out = []
    with open_warehouse(db, Limits()) as wh:
        for line in Path("eval/cases.jsonl").read_text().splitlines():
            case = json.loads(line)
            sql = case.get("sql")
            if case.get("expect") != "answer" or not sql:
                continue
            res = wh.execute(sql[0] if isinstance(sql, list) else sql)
            if choose(res.columns, res.rows):
                out.append((case, res.columns, res.rows))
    return out


def test_bundled_cases_that_qualify_render_readable_pngs(sample_db):
    cases = _qualifying_cases(sample_db)
    assert len(cases) >= 8, [c["id"] for c, _, _ in cases]
    for case, columns, rows in cases:
        chart = chart_for(columns, rows, title=case["question"], as_of="2026-09-30",
                          timeout_s=ROOMY_S)
        assert chart is not None, case["id"]
        assert chart.png.startswith(b"\x89PNG\r\n\x1a\n")
        size, ink = _pixels(chart.png)
        assert size == (960, 540) == (chart.width, chart.height)
        assert 0.03 < ink < 0.6, (case["id"], ink)  # drawn, and not a solid block
        assert 10_000 < len(chart.png) < 400_000
        assert chart.alt.startswith(("Line chart", "Horizontal bar chart"))
        assert label(chart.spec.x) in chart.alt and "2026-09-30" in chart.alt
        if chart.spec.kind != "line":
            assert f"{len(rows)} bars" in chart.alt


def test_a_line_over_time_describes_its_range(sample_db):
    with open_warehouse(sample_db, Limits()) as wh:
        res = wh.execute(
            "SELECT valuation_date, SUM(fair_value_usd) AS fair_value_usd FROM valuations "
            "WHERE valuation_date >= DATE '2024-01-01' GROUP BY 1 ORDER BY 1")
    columns, rows = res.columns, res.rows
    chart = chart_for(columns, rows, title="How has our value moved since 2024?",
                      timeout_s=ROOMY_S)
    assert chart.spec.kind == "line" and chart.spec.money
    assert f"from {rows[0][0].isoformat()} to {rows[-1][0].isoformat()}" in chart.alt
    assert f"({len(rows)} points)" in chart.alt
    assert _pixels(chart.png)[1] > 0.03


def test_a_chart_that_cannot_be_drawn_never_blocks_the_answer():
    # a row shorter than the header: choosing fails inside, and the answer goes out without it
    assert chart_for(["sector", "companies"], [("a", 1), ("b",), ("c", 3)]) is None
    # drawing that cannot finish in the time given is abandoned, not waited for
    rows = [(f"s{i}", i) for i in range(10)]
    assert chart_for(["sector", "companies"], rows, timeout_s=0) is None


def test_only_the_capped_rows_are_drawn():
    start = D(2020, 1, 1).toordinal()
    rows = [(D.fromordinal(start + i), float(i)) for i in range(MAX_POINTS + 500)]
    chart = chart_for(["day", "value_usd"], rows, timeout_s=ROOMY_S)
    assert chart is not None and f"({MAX_POINTS} points)" in chart.alt


# ------------------------------------------------------------- through the command line

BY_FUND = ("SELECT f.fund_name, SUM(i.amount_usd) AS invested FROM investments i "
           "JOIN funds f USING (fund_id) GROUP BY 1")


def _ask(capsys, *argv):
    code = main(["ask", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_ask_chart_saves_the_png_and_its_alt_text(env, fake, capsys, tmp_path):
    fake.enqueue_tool_call(BY_FUND).enqueue_text("Here is what each fund has invested.")
    out = tmp_path / "charts" / "by-fund.png"
    code, obj = _ask(capsys, "--chart", str(out), "How much has each fund invested?")
    assert code == 0 and obj["state"] == "answered" and obj["chart"] == str(out)
    assert out.read_bytes().startswith(b"\x89PNG") and _pixels(out.read_bytes())[1] > 0.03
    alt = out.with_suffix(".txt").read_text()
    assert alt.startswith("Horizontal bar chart of Invested by Fund name") and "8 bars" in alt


def test_the_model_may_switch_the_chart_off_and_one_row_gets_none(env, fake, capsys, tmp_path):
    fake.enqueue(tool_calls([("sql_query", {"sql": BY_FUND, "chart": "none"})]))
    fake.enqueue_text("Here is what each fund has invested.")
    code, obj = _ask(capsys, "--chart", str(tmp_path / "a.png"), "How much per fund?")
    assert code == 0 and obj["chart"] is None and not (tmp_path / "a.png").exists()
    fake.enqueue_tool_call("SELECT count(*) AS n FROM funds").enqueue_text("We have 8 funds.")
    code, obj = _ask(capsys, "--chart", str(tmp_path / "b.png"), "How many funds?")
    assert code == 0 and obj["chart"] is None and not (tmp_path / "b.png").exists()


def test_a_chart_that_cannot_be_saved_does_not_fail_the_answer(env, fake, capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    fake.enqueue_tool_call(BY_FUND).enqueue_text("Here is what each fund has invested.")
    code = main(["ask", "--chart", str(blocker / "x.png"), "How much has each fund invested?"])
    captured = capsys.readouterr()
    assert code == 0 and "invested" in captured.out and "chart: none" in captured.out
    assert "could not save the chart" in captured.err


def test_chat_saves_each_chart_and_prints_its_path(env, fake, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("FUNDBOT_CHART_DIR", str(tmp_path / "charts"))
    monkeypatch.setattr("sys.stdin", io.StringIO("How much has each fund invested?\n/quit\n"))
    fake.enqueue_tool_call(BY_FUND).enqueue_text("Here is what each fund has invested.")
    assert main(["chat"]) == 0
    out = capsys.readouterr().out
    saved = list((tmp_path / "charts").glob("*.png"))
    assert len(saved) == 1 and f"(chart: {saved[0]})" in out
    assert saved[0].read_bytes().startswith(b"\x89PNG")
