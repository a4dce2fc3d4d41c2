"""Block Kit rendering of turn results: answers, tables, clarifications, errors, feedback."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json

import pytest

from bot.slack import render, safety
from states.ports import TurnResult


def _result(**kw) -> TurnResult:
    base = {"thread_id": "C1:1.0", "state": "answered",
            "answer": "We invested **$35M** in total.",
            "sql": "SELECT sum(amount_usd) FROM investments", "columns": ["total"],
            "rows": [(decimal.Decimal("35000000.00"),)], "trace_id": "t123",
            "as_of": "2024-12-31"}
    base.update(kw)
    return TurnResult(**base)


def _types(message: dict) -> list[str]:
    return [b["type"] for b in message["blocks"]]


def test_answer_has_text_context_sql_table_and_feedback():
    msg = render.result_message(_result(), seconds=1.234)
    assert _types(msg) == ["markdown", "context", "section", "context_actions"]
    assert msg["blocks"][0]["text"] == "We invested **$35M** in total."
    context = msg["blocks"][1]["elements"][0]["text"]
    assert context == "Data as of 2024-12-31 · 1 row · 1.2 s"
    assert msg["blocks"][2]["text"]["text"] == (
        "*SQL*\n```SELECT sum(amount_usd) FROM investments```")
    feedback = msg["blocks"][3]["elements"][0]
    assert feedback["type"] == "feedback_buttons" and feedback["action_id"] == "feedback"
    assert render.parse_feedback(feedback["positive_button"]["value"]) == ("up", "t123")
    assert render.parse_feedback(feedback["negative_button"]["value"]) == ("down", "t123")
    table = msg["attachments"][0]["blocks"][0]
    assert table["type"] == "table"
    assert table["rows"] == [[{"type": "raw_text", "text": "total"}],
                             [{"type": "raw_number", "value": 35000000,
                               "text": "35,000,000"}]]
    assert table["column_settings"] == [{"align": "right"}]
    assert msg["text"].startswith("We invested")


def test_answer_without_sql_has_no_row_count():
    result = _result(sql=None, columns=[], rows=[], refused=True,
                     answer="I can only answer questions about the fund's data.")
    msg = render.answer(result, seconds=0.3)
    assert msg["blocks"][1]["elements"][0]["text"] == "Data as of 2024-12-31 · 0.3 s"
    assert _types(msg) == ["markdown", "context", "context_actions"]


def test_large_result_shows_ten_rows_and_points_to_csv():
    rows = [(f"Company {i}", i * 1000.5) for i in range(25)]
    msg = render.answer(_result(columns=["company", "value"], rows=rows), seconds=0.5)
    table = msg["attachments"][0]["blocks"][0]
    assert len(table["rows"]) == 1 + render.TABLE_ROWS
    assert table["rows"][1] == [{"type": "raw_text", "text": "Company 0"},
                                {"type": "raw_number", "value": 0.0, "text": "0"}]
    notes = [b["elements"][0]["text"] for b in msg["blocks"] if b["type"] == "context"]
    assert any("Showing 10 of 25 rows" in n and "CSV" in n for n in notes)
    assert "25 rows" in notes[0]


def test_truncated_result_says_so():
    msg = render.answer(_result(columns=["x"], rows=[(i,) for i in range(3)], truncated=True))
    notes = " ".join(b["elements"][0]["text"] for b in msg["blocks"] if b["type"] == "context")
    assert "3 rows+" in notes and "row cap" in notes


def test_no_rows_means_no_table():
    msg = render.answer(_result(columns=["x"], rows=[]))
    assert "attachments" not in msg


def test_wide_result_keeps_twenty_columns():
    cols = [f"c{i}" for i in range(25)]
    msg = render.answer(_result(columns=cols, rows=[tuple(range(25))]))
    table = msg["attachments"][0]["blocks"][0]
    assert len(table["rows"][0]) == 20 and len(table["rows"][1]) == 20
    assert any("first 20 of 25 columns" in b["elements"][0]["text"]
               for b in msg["blocks"] if b["type"] == "context")


@pytest.mark.parametrize("value, shown", [
    (None, "–"), (2021, "2021"), (1234567.891, "1,234,567.89"), (0.12345, "0.1235"),
    (decimal.Decimal("2500000.00"), "2,500,000"), (dt.date(2024, 3, 31), "2024-03-31"),
    (True, "true"), ("", "–"), (float("nan"), "–"), ("Databricks, Inc.", "Databricks, Inc."),
])
def test_format_value(value, shown):
    assert render.format_value(value) == shown


def test_csv_has_every_row_and_raw_values():
    rows = [("Databricks, Inc.", decimal.Decimal("10.50"), None)] * 12
    text = render.rows_csv(["company", "amount", "note"], rows)
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[0] == ["company", "amount", "note"]
    assert len(parsed) == 13 and parsed[1] == ["Databricks, Inc.", "10.50", ""]


def test_sql_is_fenced_safely_and_capped():
    msg = render.answer(_result(sql="SELECT '```' AS x" + " " * 5000 + "-- end"))
    code = msg["blocks"][2]["text"]["text"]
    assert code.count("```") == 2 and len(code) <= render.SECTION_CHARS


def test_clarification_buttons_carry_the_option():
    result = TurnResult(thread_id="C1:1.0", state="clarify",
                        clarification="Which Adam: Adam Brooks or Adam Levin?",
                        options=["Adam Brooks", "Adam Levin"], trace_id="t9")
    msg = render.result_message(result)
    assert _types(msg) == ["markdown", "actions", "context"]
    buttons = msg["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == ["clarify_0", "clarify_1"]
    assert [b["text"]["text"] for b in buttons] == ["Adam Brooks", "Adam Levin"]
    # The value holds the index and a fingerprint; the option stays in the thread's state.
    assert [render.clarify_choice(b["value"]) for b in buttons] == [
        (0, render.option_fingerprint("Adam Brooks")), (1, render.option_fingerprint("Adam Levin"))]
    assert "reply in this thread" in msg["blocks"][2]["elements"][0]["text"]


def test_clarification_without_options_asks_for_a_reply():
    result = TurnResult(thread_id="C1:1.0", state="clarify", clarification="Which period?")
    msg = render.result_message(result)
    assert _types(msg) == ["markdown", "context"]


def test_long_option_label_is_cut_and_value_stays_small():
    option = "A" * 5000  # far past a button value's 2,000 characters
    button = render.clarify_button(3, option)
    assert len(button["text"]["text"]) == render.BUTTON_CHARS
    assert len(button["value"]) < 40
    assert render.clarify_choice(button["value"]) == (3, render.option_fingerprint(option))


def test_choice_made_replaces_buttons_with_the_choice():
    msg = render.clarification(TurnResult(thread_id="x", state="clarify", clarification="Which?",
                                          options=["A & B", "C"]))
    blocks = render.choice_made(msg["blocks"], "U1", "A & B")
    assert [b["type"] for b in blocks] == ["markdown", "context"]
    # Built raw; the seal escapes the option and keeps our own mention of the clicker live.
    sealed = safety.seal("chat.update", {"blocks": blocks})["blocks"]
    assert sealed[-1]["elements"][0]["text"] == "<@U1> chose *A &amp; B*"


def test_failure_is_short_with_ref_and_feedback():
    result = TurnResult(thread_id="x", state="failed", error_kind="llm", trace_id="t5",
                        answer="I could not get an answer from the language model (server). "
                               "Try again shortly.")
    msg = render.result_message(result)
    assert _types(msg) == ["markdown", "context", "context_actions"]
    assert msg["blocks"][0]["text"].startswith(render.WARNING + " I could not get an answer")
    assert "t5" in msg["blocks"][1]["elements"][0]["text"]


def test_failure_for_empty_question_has_no_feedback():
    msg = render.failure("Ask me a question.", "empty", "t6")
    assert "context_actions" not in _types(msg)


def test_working_placeholder_mentions_queue():
    assert "Working on it" in render.working(0)["text"]
    assert "Queued" in render.working(2)["text"]


def test_feedback_modal_round_trip():
    view = render.feedback_modal("down", "t7")
    assert view["callback_id"] == render.FEEDBACK_MODAL
    assert json.loads(view["private_metadata"]) == {"vote": "down", "trace_id": "t7"}
    assert view["blocks"][0]["block_id"] == "comment"
    assert view["blocks"][0]["element"]["action_id"] == "text"


def test_parse_feedback_rejects_garbage():
    with pytest.raises(ValueError):
        render.parse_feedback("sideways|t1")
    with pytest.raises(ValueError):
        render.parse_feedback("up|")


def test_blocks_validate_with_slack_sdk_models():
    from slack_sdk.models.blocks import Block

    msg = render.answer(_result(columns=["a"], rows=[(1,)] * 12))
    clar = render.clarification(TurnResult(thread_id="x", state="clarify",
                                           clarification="Which?", options=["A", "B"]))
    for block in [*msg["blocks"], *msg["attachments"][0]["blocks"], *clar["blocks"]]:
        parsed = Block.parse(block)
        assert parsed is not None, block
        parsed.validate_json()  # raises on a block Slack would reject for its shape


@pytest.mark.parametrize(("verification", "mark"), [
    ("verified", " · ✓ figures checked against the data · "),
    ("revised", " · ✓ figures checked against the data (second draft) · "),
    ("replaced", " · summary withheld: its figures did not match the data · "),
    ("", "Data as of 2024-12-31 · 1 row"),
])
def test_context_marks_a_verified_answer_and_a_replaced_one(verification, mark):
    msg = render.result_message(_result(verification=verification), seconds=1.0)
    assert mark in msg["blocks"][1]["elements"][0]["text"]
