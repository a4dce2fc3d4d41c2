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


# ----------------------------------------------------- exact Block Kit of every builder
# Each builder's whole output is pinned: a renamed key, a lost block or a changed limit is a
# message Slack renders differently (or rejects), or a button the listeners no longer match.

def _ctx(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _sec(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _plain(text: str) -> dict:
    return {"type": "plain_text", "text": text}


def _feedback(trace_id: str) -> dict:
    return {"type": "context_actions", "elements": [{
        "type": "feedback_buttons", "action_id": "feedback",
        "positive_button": {"text": _plain("Good answer"),
                            "accessibility_label": "Mark this answer as good",
                            "value": f"up|{trace_id}"},
        "negative_button": {"text": _plain("Wrong answer"),
                            "accessibility_label": "Mark this answer as wrong",
                            "value": f"down|{trace_id}"}}]}


def test_working_placeholder_is_one_context_line():
    text = ":hourglass_flowing_sand: Working on it…"
    assert render.working() == {"text": text, "blocks": [_ctx(text)]}
    queued = ":hourglass_flowing_sand: Queued behind an earlier question in this thread…"
    assert render.working(1) == {"text": queued, "blocks": [_ctx(queued)]}


def test_answer_message_exactly():
    result = _result(rows=[(1,), (2,)], columns=["n"], trace_id="t1", as_of="")
    assert render.answer(result) == {
        "text": "We invested **$35M** in total.",
        "blocks": [{"type": "markdown", "text": "We invested **$35M** in total."},
                   _ctx("2 rows"),
                   _sec("*SQL*\n```SELECT sum(amount_usd) FROM investments```"),
                   _feedback("t1")],
        "attachments": [{"blocks": [{
            "type": "table",
            "rows": [[{"type": "raw_text", "text": "n"}],
                     [{"type": "raw_number", "value": 1, "text": "1"}],
                     [{"type": "raw_number", "value": 2, "text": "2"}]],
            "column_settings": [{"align": "right"}]}]}]}


def test_answer_without_words_trace_or_rows():
    result = _result(answer="  ", sql="", columns=[], rows=[], trace_id="", as_of="")
    text = "Done, but I have no words for it."
    assert render.answer(result) == {
        "text": text, "blocks": [{"type": "markdown", "text": text}, _ctx("")]}
    assert render.answer(_result(answer=None, sql="", rows=[], trace_id=""))["text"] == text


@pytest.mark.parametrize(("n", "truncated", "note"), [
    (11, False, "Showing 10 of 11 rows; all of them are in the CSV below."),
    (10, False, None),
    (10, True, "Showing 10 of 10 rows (the query hit the row cap); all of them are in the CSV "
               "below."),
    (3, True, "Showing 3 of 3 rows (the query hit the row cap); all of them are in the CSV "
              "below."),
    (12345, False, "Showing 10 of 12,345 rows; all of them are in the CSV below."),
])
def test_answer_points_to_the_csv_only_when_rows_are_left_out(n, truncated, note):
    msg = render.answer(_result(columns=["x"], rows=[(i,) for i in range(n)],
                                truncated=truncated, trace_id=""))
    notes = [b["elements"][0]["text"] for b in msg["blocks"][2:] if b["type"] == "context"]
    assert notes == ([note] if note else [])


@pytest.mark.parametrize(("width", "note"), [
    (20, None), (21, "Showing the first 20 of 21 columns.")])
def test_answer_says_when_columns_are_left_out(width, note):
    msg = render.answer(_result(columns=[f"c{i}" for i in range(width)],
                                rows=[tuple(range(width))], trace_id=""))
    notes = [b["elements"][0]["text"] for b in msg["blocks"][2:] if b["type"] == "context"]
    assert notes == ([note] if note else [])


@pytest.mark.parametrize(("kw", "seconds", "line"), [
    ({}, None, "Data as of 2024-12-31 · 1 row"),
    ({"rows": []}, 0.04, "Data as of 2024-12-31 · 0 rows · 0.0 s"),
    ({"rows": [(1,)] * 1234, "truncated": True}, 12.36, "Data as of 2024-12-31 · 1,234 rows+ · "
                                                        "12.4 s"),
    ({"as_of": "", "sql": "", "verified_query": 7}, None, "✅ Verified query #7"),
    ({"as_of": "", "verification": "verified", "rows": [(1,), (2,)]}, 1.0,
     "✓ figures checked against the data · 2 rows · 1.0 s"),
    ({"verification": "unknown"}, None, "Data as of 2024-12-31 · 1 row"),
])
def test_context_line(kw, seconds, line):
    assert render.context_line(_result(**kw), seconds) == line


def test_result_message_routes_every_state():
    answered = _result()
    assert render.result_message(answered, 2.0) == render.answer(answered, 2.0)
    asked = _result(state="clarify", clarification="Which fund?", options=["I", "II"])
    assert render.result_message(asked) == render.clarification(asked)
    # A failure without words gets our own; its kind and trace decide the rest.
    failed = _result(state="failed", answer=None, error_kind="llm", trace_id="t2")
    assert render.result_message(failed) == render.failure(render.INTERNAL, "llm", "t2")
    assert render.result_message(failed)["text"] == render.INTERNAL
    empty = _result(state="failed", answer="Ask me a question.", error_kind="empty",
                    trace_id="t3")
    assert render.result_message(empty) == {
        "text": "Ask me a question.",
        "blocks": [{"type": "markdown", "text": "⚠️ Ask me a question."}, _ctx("ref `t3`")]}


@pytest.mark.parametrize(("kind", "trace_id", "feedback"), [
    ("llm", "t4", True), (None, "t4", True), ("empty", "t4", False),
    ("too_long", "t4", False), ("llm", "", False)])
def test_failure_exactly(kind, trace_id, feedback):
    msg = render.failure("  The warehouse is busy.\n", kind, trace_id)
    blocks = [{"type": "markdown", "text": "⚠️ The warehouse is busy."}]
    if trace_id:
        blocks.append(_ctx(f"ref `{trace_id}`"))
    if feedback:
        blocks.append(_feedback(trace_id))
    assert msg == {"text": "The warehouse is busy.", "blocks": blocks}
    assert render.failure("")["text"] == render.failure(None)["text"] == render.INTERNAL
    # no trace: no reference, no feedback buttons
    assert render.failure("x") == {"text": "x", "blocks": [{"type": "markdown",
                                                            "text": "⚠️ x"}]}


def test_task_names_each_step():
    assert render.task("execute", "in_progress") == {
        "type": "task_update", "id": "execute", "title": "Running the SQL",
        "status": "in_progress"}
    assert render.task("look_up_names", "complete")["title"] == "Look up names"


def test_for_stream_splits_the_markdown_from_the_rest():
    msg = render.answer(_result(trace_id="t1"))
    text, blocks, attachments = render.for_stream(msg)
    assert text == "We invested **$35M** in total."
    assert blocks == msg["blocks"][1:] and attachments == msg["attachments"]
    assert len(msg["blocks"]) == 4  # the message itself is left whole
    # A message that does not start with markdown streams its fallback text.
    assert render.for_stream(render.working()) == (
        ":hourglass_flowing_sand: Working on it…", render.working()["blocks"], [])
    assert render.for_stream({"text": "hi"}) == ("hi", [], [])
    assert render.for_stream({"blocks": [{"type": "markdown", "text": ""}], "text": "t"}) == (
        "t", [], [])
    assert render.for_stream({"blocks": []}) == ("", [], [])


def test_an_unnamed_column_gets_a_dash_header():
    assert render.table_block([""], [(1,)])["rows"][0] == [{"type": "raw_text", "text": "–"}]


def test_table_block_none_without_columns_or_rows():
    assert render.table_block([], [(1,)]) is None
    assert render.table_block(["a"], []) is None


def test_table_block_numeric_and_text_columns():
    rows = [(1, "x", None, None), (None, "", 2.5, None), (decimal.Decimal("3"), "z", True, "t")]
    table = render.table_block(["a", "b", "c", "d"], rows)
    assert table == {
        "type": "table",
        "rows": [[{"type": "raw_text", "text": t} for t in "abcd"],
                 [{"type": "raw_number", "value": 1, "text": "1"},
                  {"type": "raw_text", "text": "x"},
                  {"type": "raw_text", "text": "–"},
                  {"type": "raw_text", "text": "–"}],
                 [{"type": "raw_text", "text": "–"},
                  {"type": "raw_text", "text": "–"},
                  {"type": "raw_number", "value": 2.5, "text": "2.5"},
                  {"type": "raw_text", "text": "–"}],
                 [{"type": "raw_number", "value": 3.0, "text": "3"},
                  {"type": "raw_text", "text": "z"},
                  {"type": "raw_text", "text": "true"},
                  {"type": "raw_text", "text": "t"}]],
        # a column of numbers (and nothing) is right-aligned; bool counts as a number here
        "column_settings": [{"align": "right"}, {"is_wrapped": True}, {"align": "right"},
                            {"is_wrapped": True}]}


def test_table_block_stops_at_slacks_character_budget_but_keeps_one_row():
    # 200-character cells: the header (1 char) plus 50 rows would pass 10,000 characters.
    big = [("y" * 300,)] * 60
    table = render.table_block(["h"], big)
    assert len(table["rows"]) == 1 + render.TABLE_ROWS  # ten rows fit: 10 * 200 + 1
    wide = [tuple("y" * 300 for _ in range(20))] * 10  # 4,000 characters a row
    table = render.table_block([f"c{i}" for i in range(20)], wide)
    assert len(table["rows"]) == 3  # header + two rows: a third would pass the budget
    huge = render.table_block(["h" * 300] * 20, [tuple("y" * 300 for _ in range(20))] * 100)
    assert len(huge["rows"]) == 2  # 20 capped headers take 4,000: one row still fits
    # exactly at the budget is still in
    exact = render.table_block(["h"], [("y" * 200,)] * 9 + [("y" * 199,)])
    assert len(exact["rows"]) == 11
    over = render.table_block(["hh"], [("y" * 200,)] * 49 + [("y" * 199,)] * 2)
    assert len(over["rows"]) == 11


def test_table_budget_boundary():
    cols = [f"{i:02}" for i in range(20)]  # 2 characters each: a header of 40
    row = tuple("y" * 200 for _ in range(20))  # 4,000, the most one row can take
    last = tuple(["y" * 200] * 9 + ["y" * 150] + ["y"] * 10)  # 1,960: exactly 10,000 in all
    assert len(render.table_block(cols, [row, row, last])["rows"]) == 4
    last = tuple(["y" * 200] * 9 + ["y" * 151] + ["y"] * 10)  # one character over
    assert len(render.table_block(cols, [row, row, last])["rows"]) == 3


@pytest.mark.parametrize(("text", "cell"), [
    ("", "–"), ("a", "a"), ("y" * 200, "y" * 200), ("y" * 201, "y" * 199 + "…")])
def test_cells_are_capped_at_two_hundred_characters(text, cell):
    assert render.table_block(["h"], [(text,)])["rows"][1] == [{"type": "raw_text",
                                                                  "text": cell}]


@pytest.mark.parametrize(("value", "cell"), [
    (12345, {"type": "raw_number", "value": 12345, "text": "12,345"}),
    (decimal.Decimal("0.5"), {"type": "raw_number", "value": 0.5, "text": "0.5"}),
    (float("inf"), {"type": "raw_text", "text": "Infinity"}),
    (decimal.Decimal("NaN"), {"type": "raw_text", "text": "–"}),
])
def test_number_cells(value, cell):
    table = render.table_block(["h"], [(value,)])
    assert table["rows"][1] == [cell]
    assert isinstance(table["rows"][1][0].get("value", 0.0), type(cell.get("value", 0.0)))


def test_csv_neutralises_formulas_and_keeps_numbers():
    rows = [("=1+1", "+x", "-x", "@x", "\tx", "\rx", "  =x", "x=1", -5, 2.5, None, "")]
    text = render.rows_csv(["=h", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"], rows)
    assert text == ("'=h,b,c,d,e,f,g,h,i,j,k,l\r\n"
                    "'=1+1,'+x,'-x,'@x,'\tx,\"'\rx\",'  =x,x=1,-5,2.5,,\r\n")
    assert render.csv_cell(-5) == -5 and render.csv_cell("-5") == "'-5"
    assert render.csv_cell(" ok") == " ok" and render.csv_cell("X=1") == "X=1"


def test_clarification_exactly():
    result = TurnResult(thread_id="x", state="clarify", clarification=" Which Adam? ",
                        options=["Adam Brooks", "Adam Levin"])
    fp = [render.option_fingerprint(o) for o in result.options]
    assert render.clarification(result) == {
        "text": "Which Adam?",
        "blocks": [{"type": "markdown", "text": "Which Adam?"},
                   {"type": "actions", "block_id": "clarify", "elements": [
                       {"type": "button", "action_id": "clarify_0",
                        "text": _plain("Adam Brooks"), "value": f"0|{fp[0]}"},
                       {"type": "button", "action_id": "clarify_1",
                        "text": _plain("Adam Levin"), "value": f"1|{fp[1]}"}]},
                   _ctx("Pick one, or reply in this thread (no need to mention me).")]}
    bare = TurnResult(thread_id="x", state="clarify", answer="Which period?")
    assert render.clarification(bare) == {
        "text": "Which period?",
        "blocks": [{"type": "markdown", "text": "Which period?"},
                   _ctx("Reply in this thread (no need to mention me).")]}
    nothing = TurnResult(thread_id="x", state="clarify")
    assert render.clarification(nothing)["text"] == "Could you say more?"


def test_clarification_shows_at_most_ten_buttons():
    result = TurnResult(thread_id="x", state="clarify", clarification="Which?",
                        options=[f"Option {i}" for i in range(12)])
    buttons = render.clarification(result)["blocks"][1]["elements"]
    assert [b["action_id"] for b in buttons] == [f"clarify_{i}" for i in range(10)]


@pytest.mark.parametrize(("length", "label"), [(75, "A" * 75), (76, "A" * 74 + "…")])
def test_button_label_boundary(length, label):
    assert render.clarify_button(0, "A" * length)["text"]["text"] == label


def test_option_fingerprint_is_a_short_sha256():
    import hashlib
    assert render.option_fingerprint("Adam Levin") == (
        hashlib.sha256(b"Adam Levin").hexdigest()[:12])
    assert render.option_fingerprint("é") == hashlib.sha256("é".encode()).hexdigest()[:12]


def test_clarify_choice_splits_at_the_first_bar():
    assert render.clarify_choice("12|ab|cd") == (12, "ab|cd")
    assert render.clarify_choice("4") == (4, "")


def test_choice_made_exactly():
    blocks = [{"type": "markdown", "text": "Which?"}, {"type": "actions", "elements": []},
              _ctx("Pick one"), _sec("kept")]
    assert render.choice_made(blocks, "U1", "C") == [
        {"type": "markdown", "text": "Which?"}, _sec("kept"),
        _ctx(f"{safety.mention('U1')} chose *C*")]


def test_refusals_and_notes_exactly():
    assert render.refusal() == (
        "Sorry, I can only answer questions from people and channels I've been set up for. "
        "Ask whoever runs fundbot to add you.")
    assert render.external_refusal() == (
        "Sorry, I only answer people from the fund's own Slack workspace, not guests from "
        "other organisations in shared channels.")
    assert render.home_refusal() == {"type": "home", "blocks": [_sec(render.refusal())]}


def test_plain_fallback():
    assert render.plain(_result(answer="x" * 4000)) == {
        "text": "x" * 3000, "blocks": [], "attachments": []}
    assert render.plain(_result(answer="", clarification="Which?"))["text"] == "Which?"
    assert render.plain(_result(answer=None))["text"] == render.INTERNAL


def test_with_note_appends_a_context_line():
    msg = render.help_message()
    noted = render.with_note(msg, render.FILES_NOTE)
    assert noted == {"text": msg["text"], "blocks": [*msg["blocks"], _ctx(render.FILES_NOTE)]}
    assert msg["blocks"] == [_sec(msg["text"])]  # the original is left as it was
    assert render.with_note({"text": "t"}, "n") == {"text": "t", "blocks": [_ctx("n")]}


def test_help_message_exactly():
    text = ("Ask me about the fund's portfolio in plain words, e.g. "
            "_how much did we put into Databricks, and what is it worth now?_ "
            "I'll answer in a thread and show the SQL I ran.")
    assert render.help_message() == {"text": text, "blocks": [_sec(text)]}


def test_feedback_block_exactly():
    assert render.feedback_block("t9") == _feedback("t9")


@pytest.mark.parametrize("value", ["up", "up|", "|t1", "sideways|t1", "UP|t1", ""])
def test_parse_feedback_refuses(value):
    with pytest.raises(ValueError, match="not a feedback value"):
        render.parse_feedback(value)


def test_parse_feedback_round_trip():
    assert render.parse_feedback("down|t1|x") == ("down", "t1|x")


@pytest.mark.parametrize(("vote", "text"), [
    ("up", "Thanks, noted."), ("down", "Thanks, noted. What was wrong?")])
def test_feedback_thanks_exactly(vote, text):
    assert render.feedback_thanks(vote, "t1") == {
        "text": text,
        "blocks": [_sec(text), {"type": "actions", "elements": [{
            "type": "button", "action_id": "feedback_comment",
            "text": _plain("Add a comment"), "value": f"{vote}|t1"}]}]}
    button = render.feedback_thanks(vote, "t1")["blocks"][1]["elements"][0]
    assert render.parse_feedback(button["value"]) == (vote, "t1")


@pytest.mark.parametrize(("vote", "label"), [
    ("down", "What was wrong?"), ("up", "Anything to add?")])
def test_feedback_modal_exactly(vote, label):
    assert render.feedback_modal(vote, "t7") == {
        "type": "modal", "callback_id": "feedback_modal",
        "private_metadata": json.dumps({"vote": vote, "trace_id": "t7"}),
        "title": _plain("Feedback"), "submit": _plain("Send"), "close": _plain("Skip"),
        "blocks": [{"type": "input", "block_id": "comment", "label": _plain(label),
                    "element": {"type": "plain_text_input", "action_id": "text",
                                "multiline": True, "max_length": 2000}}]}


# ------------------------------------------------------------------ verified queries


def _query(**kw):
    from states.ports import Slot, VerifiedQuery

    base = {"id": 42, "question": "How much did we put into Acme?",
            "sql": "SELECT 1 FROM investments WHERE company = 'Acme'",
            "slots": [Slot(kind="company", value="Acme", swappable=True),
                      Slot(kind="partner", value="Adam", swappable=False),
                      Slot(kind="fund", value="Fund II", swappable=True)]}
    base.update(kw)
    return VerifiedQuery(**base)


def _review_buttons(query_id: int) -> dict:
    return {"type": "actions", "elements": [
        {"type": "button", "action_id": "verified_verify", "text": _plain("Verify"),
         "value": str(query_id), "style": "primary"},
        {"type": "button", "action_id": "verified_retire", "text": _plain("Retire"),
         "value": str(query_id)}]}


def test_review_request_exactly():
    text = ("Proposed verified query #42 (thumbs-up from "
            f"{safety.mention('U7')}): How much did we put into Acme?")
    assert render.review_request(_query(), proposed_by="U7") == {
        "text": text,
        "blocks": [_sec(text),
                   _sec("*SQL*\n```SELECT 1 FROM investments WHERE company = 'Acme'```"),
                   _ctx("Swappable names (the same question about another one is answered "
                        "with this SQL): company Acme, fund Fund II"),
                   _review_buttons(42)]}
    long_sql = render.review_request(_query(sql="S" * 5000))["blocks"][1]
    assert long_sql == _sec("*SQL*\n```" + "S" * 2979 + "…```")  # cut inside its fence
    plain = render.review_request(_query(id=3, slots=[]))
    assert plain["text"] == "Proposed verified query #3: How much did we put into Acme?"
    assert [b["type"] for b in plain["blocks"]] == ["section", "section", "actions"]
    assert plain["blocks"][2] == _review_buttons(3)


def test_review_buttons_round_trip_and_bad_buttons_are_refused():
    buttons = render.review_request(_query(id=7))["blocks"][-1]["elements"]
    assert [render.parse_review(b["action_id"], b["value"]) for b in buttons] == [
        ("verify", 7), ("retire", 7)]
    for action_id, value in [("verified_delete", "7"), ("verify", "7"), ("retire", "7"),
                             ("verified_verify", ""), ("verified_verify", "-7"),
                             ("verified_verify", "7 "), ("verified_retire", "x7"),
                             ("xverified_verify", "7")]:
        with pytest.raises(ValueError, match="not a review button"):
            render.parse_review(action_id, value)


@pytest.mark.parametrize(("status", "text"), [
    ("verified", "✅ Verified query #42 verified by {who}: How much did we put into Acme?"),
    ("retired", "Verified query #42 retired by {who}: How much did we put into Acme?")])
def test_review_done_exactly(status, text):
    text = text.format(who=safety.mention("U8"))
    assert render.review_done(_query(status=status), "U8") == {
        "text": text, "blocks": [_sec(text)]}


def test_review_dispute_exactly():
    who = safety.mention("U9")
    text = f"⚠️ {who} says an answer was wrong: it missed Fund II"
    flagged = render.review_dispute("How much in Acme?", "it missed Fund II", "U9", "t5", 12)
    assert flagged == {"text": text, "blocks": [_sec(text), _sec(
        "*Question:* How much in Acme?\nTrace: `fundbot trace t5`\n"
        "It came from verified query #12, which is now flagged: review it with "
        "`fundbot verified show 12`.")]}
    unflagged = render.review_dispute("Q?", "wrong", "U9", "t6", None)
    assert unflagged["blocks"][1] == _sec("*Question:* Q?\nTrace: `fundbot trace t6`")


def test_review_failed_exactly():
    text = "⚠️ Not done: query 4 does not run any more"
    assert render.review_failed("query 4 does not run any more") == {
        "text": text, "blocks": [_sec(text)]}


# ---------------------------------------------------------------------- limits


def test_text_limits_of_sections_markdown_context_and_fallback():
    long = "w" * 20_000
    msg = render.failure(long, "llm", "t1")
    assert len(msg["blocks"][0]["text"]) == render.MARKDOWN_CHARS
    assert msg["text"] == "w" * 299 + "…"
    assert render.failure("w" * 300)["text"] == "w" * 300
    assert render.review_failed(long)["blocks"][0]["text"]["text"] == (
        "⚠️ Not done: " + "w" * (3000 - len("⚠️ Not done: ")))
    assert render.with_note({}, long)["blocks"][0]["elements"][0]["text"] == "w" * 3000


def test_sql_is_cut_inside_its_fence():
    sql = "S" * 5000
    code = render.answer(_result(sql=sql))["blocks"][2]["text"]["text"]
    assert code == "*SQL*\n```" + "S" * 2979 + "…```"
    fits = render.answer(_result(sql=" " + "S" * 2980 + " "))["blocks"][2]["text"]["text"]
    assert fits == "*SQL*\n```" + "S" * 2980 + "```"
    assert render.answer(_result(sql="SELECT '```'"))["blocks"][2]["text"]["text"] == (
        "*SQL*\n```SELECT '''''```")  # no fence inside


# ---------------------------------------------------------------------- App Home


def test_examples_follow_the_warehouse_tables():
    assert render.examples(["Investments", "exit_events", "funds", "fund_notes"]) == [
        "How much did we invest in each of the last three years?",
        "How much has each fund invested so far?",
        "What is in exit events, in a few numbers?",
        "What is in fund notes, in a few numbers?"]
    assert render.examples(["investments", "funds", "a", "b", "c"], limit=2) == [
        "How much did we invest in each of the last three years?",
        "How much has each fund invested so far?"]
    assert render.examples(["a", "b", "c"], limit=2) == [
        "What is in a, in a few numbers?", "What is in b, in a few numbers?"]
    assert render.examples(["exits"]) == ["Which exits returned the most?"]
    assert render.examples(list("abcdef")) == [  # four by default
        f"What is in {t}, in a few numbers?" for t in "abcd"]
    assert render.examples([]) == []


def test_home_view_exactly():
    tables = {"exits": "", "investments": "One row per cheque " + "x" * 200}
    recent = [("How much in <!channel>?", "https://fund.slack.com/archives/C1/p1"),
              ("q" * 200, "")]
    view = render.home_view(tables, "2024-12-31", recent)
    assert view == {"type": "home", "blocks": [
        {"type": "header", "text": _plain("fundbot")},
        _sec("I answer questions about the fund's portfolio in plain words: I write SQL over "
             "the fund's data, run it read-only, and answer in a thread with the SQL I ran. "
             "Mention me in a channel or message me here."),
        _ctx("Data as of 2024-12-31"),
        {"type": "divider"},
        _sec("*What I know about*\n• *exits*\n• *investments*: One row per cheque "
             + "x" * 130 + "…"),
        _sec("*Try asking*\n• How much did we invest in each of the last three years?\n"
             "• Which exits returned the most?"),
        _sec("*Your recent questions*\n• "
             + safety.link("https://fund.slack.com/archives/C1/p1", "How much in <!channel>?")
             + "\n• " + "q" * 150)]}
    bare = render.home_view({}, "", [])
    assert bare["blocks"][2] == _ctx("Data date unknown") and len(bare["blocks"]) == 6
    long_link = render.home_view({}, "", [("p" * 200, "https://f/1")])["blocks"][-1]
    assert long_link == _sec("*Your recent questions*\n• "
                             + safety.link("https://f/1", "p" * 150))
    short = render.home_view({"t": "d" * 150}, "", [])
    assert short["blocks"][4] == _sec("*What I know about*\n• *t*: " + "d" * 150)
