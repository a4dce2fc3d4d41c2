"""Block Kit for everything the bot posts. Pure functions: a TurnResult in, message kwargs out.

A message is a dict of `chat.postMessage` / `chat.update` keyword arguments: `text` (the
notification and screen-reader fallback), `blocks`, and `attachments` (Slack renders a table
block only from a message's attachments, one table per message).

Builders here put text in as it came (from users, the model, the data): escaping happens in
one place, `bot.slack.safety.seal`, which every outgoing Web API call passes through. A live
mention or link of our own is written with `safety.mention` / `safety.link`.
"""

from __future__ import annotations

import csv
import decimal
import hashlib
import io
import json
import math
from typing import Any

from bot.slack.safety import link, mention
from states.ports import TurnResult, VerifiedQuery
from states.prompts import fmt_value
from states.verify import MARKS

TABLE_ROWS = 10  # rows shown inline; more go to a CSV file in the thread
TABLE_COLUMNS = 20  # Slack's table block limit
SECTION_CHARS = 3000  # Slack's section text limit
MARKDOWN_CHARS = 12000  # Slack's markdown block limit
BUTTON_CHARS = 75
MAX_BUTTONS = 10
FALLBACK_CHARS = 300
CELL_CHARS = 200  # one table cell; longer values are cut (the CSV has them whole)
TABLE_CHARS = 10_000  # Slack's limit across all cells of a message's tables

CLARIFY_ACTION = "clarify"  # action ids are clarify_0, clarify_1, ... (unique per block)
FEEDBACK_ACTION = "feedback"
COMMENT_ACTION = "feedback_comment"
FEEDBACK_MODAL = "feedback_modal"
REVIEW_ACTION = "verified"  # action ids verified_verify, verified_retire; value: the query id

Message = dict[str, Any]

# The core's failure messages already say what to try next; these cover failures of our own.
OVERLOADED = ("I'm answering a lot of questions right now and can't take this one. "
              "Please ask again in a few minutes.")
INTERNAL = ("Something went wrong on my side while answering. Please ask again; if it keeps "
            "happening, tell whoever runs fundbot.")
WARNING = "\u26a0\ufe0f"
VERIFIED = "\u2705"  # Unicode, not a :shortcode:, renders the same in every block type
NOT_A_REVIEWER = ("Only the reviewers named in FUNDBOT_REVIEWERS can verify or retire "
                  "queries.")
STALE_CHOICE = "That question has already been answered. Mention me to ask a new one."


def working(ahead: int = 0) -> Message:
    """The placeholder the answer will replace."""
    if ahead:
        text = ":hourglass_flowing_sand: Queued behind an earlier question in this thread…"
    else:
        text = ":hourglass_flowing_sand: Working on it…"
    return {"text": text, "blocks": [_context(text)]}


def result_message(result: TurnResult, seconds: float | None = None) -> Message:
    """The message for any turn outcome."""
    if result.state == "answered":
        return answer(result, seconds)
    if result.state == "clarify":
        return clarification(result)
    return failure(result.answer or "", result.error_kind, result.trace_id)


def answer(result: TurnResult, seconds: float | None = None) -> Message:
    """The answer, a context line, the SQL, up to TABLE_ROWS rows, and feedback buttons."""
    text = (result.answer or "").strip() or "Done, but I have no words for it."
    blocks: list[dict] = [_markdown(text)]
    blocks.append(_context(context_line(result, seconds)))
    if result.sql:
        blocks.append(_section("*SQL*\n" + _code(result.sql, SECTION_CHARS - 20)))
    extra = len(result.rows) > TABLE_ROWS or result.truncated
    if extra:
        note = f"Showing {min(TABLE_ROWS, len(result.rows))} of {len(result.rows):,} rows"
        note += " (the query hit the row cap)" if result.truncated else ""
        blocks.append(_context(note + "; all of them are in the CSV below."))
    if len(result.columns) > TABLE_COLUMNS:
        blocks.append(_context(f"Showing the first {TABLE_COLUMNS} of "
                               f"{len(result.columns)} columns."))
    if result.trace_id:
        blocks.append(feedback_block(result.trace_id))
    message: Message = {"text": _fallback(text), "blocks": blocks}
    table = table_block(result.columns, result.rows)
    if table:
        message["attachments"] = [{"blocks": [table]}]
    return message


# The machine's states as Slack shows them while a streamed answer is being worked out.
STEP_TITLES = {
    "understand": "Understanding the question",
    "clarify": "Asking back",
    "execute": "Running the SQL",
    "debug": "Repairing the SQL",
    "interpret": "Writing the answer",
    "verify": "Checking the figures against the data",
}
LOADING = ["Reading the question…", "Looking at the tables…", "Asking the warehouse…"]


def task(state: str, status: str) -> dict:
    """A task_update chunk for one step of the machine (status: in_progress, complete, error)."""
    title = STEP_TITLES.get(state, state.replace("_", " ").capitalize())
    return {"type": "task_update", "id": state, "title": title, "status": status}


def for_stream(message: Message) -> tuple[str, list[dict], list[dict]]:
    """(markdown text to stream, blocks to finish the stream with, attachments to add after)
    for a message whose first block is its markdown text, as every result message is."""
    blocks = list(message.get("blocks") or [])
    text = blocks.pop(0)["text"] if blocks and blocks[0].get("type") == "markdown" else ""
    return text or message.get("text", ""), blocks, list(message.get("attachments") or [])


def context_line(result: TurnResult, seconds: float | None) -> str:
    parts = []
    if result.as_of:
        parts.append(f"Data as of {result.as_of}")
    if result.verification in MARKS:
        parts.append(MARKS[result.verification])
    if result.sql:  # an answer without a query (out of scope) has no rows to count
        n = len(result.rows)
        rows = f"{n:,} row{'s' if n != 1 else ''}"
        parts.append(rows + ("+" if result.truncated else ""))
    if seconds is not None:
        parts.append(f"{seconds:.1f} s")
    if result.verified_query:
        parts.append(f"{VERIFIED} Verified query #{result.verified_query}")
    return " · ".join(parts)


def table_block(columns: list[str], rows: list[tuple]) -> dict | None:
    """A Slack table block of the first TABLE_ROWS rows (header first), or None."""
    if not columns or not rows:
        return None
    cols = columns[:TABLE_COLUMNS]
    shown = [row[: len(cols)] for row in rows[:TABLE_ROWS]]
    numeric = [
        all(isinstance(r[i], (int, float, decimal.Decimal)) or r[i] is None for r in shown)
        for i in range(len(cols))
    ]
    header = [_cell(c) for c in cols]
    rows, budget = [header], TABLE_CHARS - sum(len(c["text"]) for c in header)
    for row in shown:
        cells = [_number_cell(v) if num else _cell(format_value(v))
                 for v, num in zip(row, numeric, strict=False)]
        budget -= sum(len(c["text"]) for c in cells)
        if budget < 0 and len(rows) > 1:
            break  # the CSV in the thread has every row
        rows.append(cells)
    settings = [{"align": "right"} if num else {"is_wrapped": True} for num in numeric]
    return {"type": "table", "rows": rows, "column_settings": settings}


def format_value(value: Any) -> str:
    """A cell as a partner would read it (the core's formatter; a dash for nothing)."""
    text = fmt_value(value, null="–")
    return text if text.strip() else "–"


def rows_csv(columns: list[str], rows: list[tuple]) -> str:
    """The whole result as CSV: numbers as they came, text safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, quoting=csv.QUOTE_MINIMAL)
    writer.writerow([csv_cell(c) for c in columns])
    for row in rows:
        writer.writerow(["" if v is None else csv_cell(v) for v in row])
    return out.getvalue()


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # OWASP "CSV Injection"


def csv_cell(value: Any) -> Any:
    """OWASP's CSV-injection defence: text a spreadsheet would run as a formula gets a leading
    single quote (numbers stay numbers; a negative number is not text)."""
    if isinstance(value, str) and value.lstrip(" ").startswith(_FORMULA_START):
        return "'" + value
    return value


def clarification(result: TurnResult) -> Message:
    """The question back, each candidate as a button; typing a reply works too."""
    prompt = (result.clarification or result.answer or "Could you say more?").strip()
    blocks: list[dict] = [_markdown(prompt)]
    options = result.options[:MAX_BUTTONS]
    if options:
        blocks.append({
            "type": "actions",
            "block_id": "clarify",
            "elements": [clarify_button(i, option) for i, option in enumerate(options)],
        })
        hint = "Pick one, or reply in this thread (no need to mention me)."
    else:
        hint = "Reply in this thread (no need to mention me)."
    blocks.append(_context(hint))
    return {"text": _fallback(prompt), "blocks": blocks}


def clarify_button(index: int, option: str) -> dict:
    """A button for one option. The option itself stays in the thread's saved state: the value
    holds only its index and a fingerprint (options can be longer than a value's 2,000 chars)."""
    label = option if len(option) <= BUTTON_CHARS else option[: BUTTON_CHARS - 1] + "…"
    return {
        "type": "button",
        "action_id": f"{CLARIFY_ACTION}_{index}",
        "text": {"type": "plain_text", "text": label},
        "value": f"{index}|{option_fingerprint(option)}",
    }


def option_fingerprint(option: str) -> str:
    return hashlib.sha256(option.encode()).hexdigest()[:12]


def clarify_choice(value: str) -> tuple[int, str]:
    """(index, fingerprint) from a clarification button's value."""
    index, _, fingerprint = value.partition("|")
    return int(index), fingerprint


def choice_made(blocks: list[dict], user: str, option: str) -> list[dict]:
    """The clarification message after a click: buttons replaced by who chose what."""
    kept = [b for b in blocks if b.get("type") not in ("actions", "context")]
    return [*kept, _context(f"{mention(user)} chose *{option}*")]


def failure(message: str, kind: str | None = None, trace_id: str = "") -> Message:
    """A short, human error; the message itself says what to try next."""
    text = (message or "").strip() or INTERNAL
    blocks: list[dict] = [_markdown(f"{WARNING} {text}")]
    if trace_id:
        blocks.append(_context(f"ref `{trace_id}`"))
        if kind not in ("empty", "too_long"):  # worth telling us when a real question failed
            blocks.append(feedback_block(trace_id))
    return {"text": _fallback(text), "blocks": blocks}


def refusal() -> str:
    return ("Sorry, I can only answer questions from people and channels I've been set up "
            "for. Ask whoever runs fundbot to add you.")


def external_refusal() -> str:
    return ("Sorry, I only answer people from the fund's own Slack workspace, not guests from "
            "other organisations in shared channels.")


WAITING_FOR_ASKER = ("I'm waiting for an answer to my question in this thread from the person "
                     "who asked. Pick one of the buttons, or ask me in a new thread.")
FILES_NOTE = "I don't read attached files; I answered the text of your message."


def plain(result: TurnResult) -> Message:
    """The plain-text fallback when Slack refuses the rich message: the earlier blocks and
    attachments (a placeholder's, say) are cleared, not kept."""
    text = (result.answer or result.clarification or INTERNAL)[:SECTION_CHARS]
    return {"text": text, "blocks": [], "attachments": []}


def with_note(message: Message, note: str) -> Message:
    """The message with a short context note at the end of its blocks."""
    return {**message, "blocks": [*message.get("blocks", []), _context(note)]}


def help_message() -> Message:
    text = ("Ask me about the fund's portfolio in plain words, e.g. "
            "_how much did we put into Databricks, and what is it worth now?_ "
            "I'll answer in a thread and show the SQL I ran.")
    return {"text": text, "blocks": [_section(text)]}


SUGGESTED_PROMPTS = [
    {"title": "Biggest positions",
     "message": "What are our ten largest positions by current value?"},
    {"title": "Capital deployed",
     "message": "How much did we invest in each of the last three years?"},
    {"title": "One company",
     "message": "How much did we put into Databricks, and what is it worth now?"},
]


def feedback_block(trace_id: str) -> dict:
    return {
        "type": "context_actions",
        "elements": [{
            "type": "feedback_buttons",
            "action_id": FEEDBACK_ACTION,
            "positive_button": {"text": {"type": "plain_text", "text": "Good answer"},
                                "accessibility_label": "Mark this answer as good",
                                "value": f"up|{trace_id}"},
            "negative_button": {"text": {"type": "plain_text", "text": "Wrong answer"},
                                "accessibility_label": "Mark this answer as wrong",
                                "value": f"down|{trace_id}"},
        }],
    }


def parse_feedback(value: str) -> tuple[str, str]:
    """("up" | "down", trace_id) from a feedback button's value."""
    vote, _, trace_id = value.partition("|")
    if vote not in ("up", "down") or not trace_id:
        raise ValueError(f"not a feedback value: {value!r}")
    return vote, trace_id


def feedback_thanks(vote: str, trace_id: str) -> Message:
    """The ephemeral reply to a vote, offering a comment."""
    text = "Thanks, noted." if vote == "up" else "Thanks, noted. What was wrong?"
    return {
        "text": text,
        "blocks": [
            _section(text),
            {"type": "actions", "elements": [{
                "type": "button",
                "action_id": COMMENT_ACTION,
                "text": {"type": "plain_text", "text": "Add a comment"},
                "value": f"{vote}|{trace_id}",
            }]},
        ],
    }


def feedback_modal(vote: str, trace_id: str) -> dict:
    """A modal asking for an optional comment on a vote."""
    label = "What was wrong?" if vote == "down" else "Anything to add?"
    return {
        "type": "modal",
        "callback_id": FEEDBACK_MODAL,
        "private_metadata": json.dumps({"vote": vote, "trace_id": trace_id}),
        "title": {"type": "plain_text", "text": "Feedback"},
        "submit": {"type": "plain_text", "text": "Send"},
        "close": {"type": "plain_text", "text": "Skip"},
        "blocks": [{
            "type": "input",
            "block_id": "comment",
            "label": {"type": "plain_text", "text": label},
            "element": {"type": "plain_text_input", "action_id": "text", "multiline": True,
                        "max_length": 2000},
        }],
    }


# ------------------------------------------------------------- verified queries


def review_request(query: VerifiedQuery, proposed_by: str = "") -> Message:
    """A proposed verified query with Verify / Retire buttons, for a reviewer."""
    who = f" (thumbs-up from {mention(proposed_by)})" if proposed_by else ""
    text = f"Proposed verified query #{query.id}{who}: {query.question}"
    swappable = ", ".join(f"{s.kind} {s.value}" for s in query.slots if s.swappable)
    blocks = [_section(text), _section("*SQL*\n" + _code(query.sql, SECTION_CHARS - 20))]
    if swappable:
        blocks.append(_context(f"Swappable names (the same question about another one is "
                               f"answered with this SQL): {swappable}"))
    blocks.append({"type": "actions", "elements": [
        _review_button("verify", "Verify", query.id, style="primary"),
        _review_button("retire", "Retire", query.id)]})
    return {"text": _fallback(text), "blocks": blocks}


def review_done(query: VerifiedQuery, user: str) -> Message:
    verb = "verified" if query.status == "verified" else "retired"
    text = (f"{VERIFIED if verb == 'verified' else ''} Verified query #{query.id} {verb} by "
            f"{mention(user)}: {query.question}").strip()
    return {"text": _fallback(text), "blocks": [_section(text)]}


def review_dispute(question: str, comment: str, user: str, trace_id: str,
                   verified_query: int | None) -> Message:
    """A thumbs-down with a comment, for the reviewers: what was asked, what was wrong."""
    text = f"{WARNING} {mention(user)} says an answer was wrong: {comment}"
    lines = [f"*Question:* {question}",
             f"Trace: `fundbot trace {trace_id}`"]
    if verified_query:
        lines.append(f"It came from verified query #{verified_query}, which is now flagged: "
                     f"review it with `fundbot verified show {verified_query}`.")
    return {"text": _fallback(text), "blocks": [_section(text), _section("\n".join(lines))]}


def review_failed(reason: str) -> Message:
    text = f"{WARNING} Not done: {reason}"
    return {"text": _fallback(text), "blocks": [_section(text)]}


def parse_review(action_id: str, value: str) -> tuple[str, int]:
    """("verify" | "retire", query id) from a review button."""
    prefix, _, decision = action_id.partition("_")
    if prefix != REVIEW_ACTION or decision not in ("verify", "retire") or not value.isdigit():
        raise ValueError(f"not a review button: {action_id!r} {value!r}")
    return decision, int(value)


def _review_button(decision: str, label: str, query_id: int, style: str = "") -> dict:
    button = {"type": "button", "action_id": f"{REVIEW_ACTION}_{decision}",
              "text": {"type": "plain_text", "text": label}, "value": str(query_id)}
    return {**button, "style": style} if style else button


# --------------------------------------------------------------------- helpers


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_CHARS]}}


def _markdown(text: str) -> dict:
    # The markdown block takes standard Markdown, which is what the model writes.
    return {"type": "markdown", "text": text[:MARKDOWN_CHARS]}


def _context(text: str) -> dict:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:SECTION_CHARS]}]}


def _cell(text: str) -> dict:
    text = text or "–"
    if len(text) > CELL_CHARS:
        text = text[: CELL_CHARS - 1] + "…"
    return {"type": "raw_text", "text": text}


def _number_cell(value: Any) -> dict:
    """A raw_number cell (Slack sorts such a column numerically); text shows it formatted."""
    if value is None or isinstance(value, bool):
        return _cell(format_value(value))
    number = float(value) if isinstance(value, decimal.Decimal) else value
    if isinstance(number, float) and not math.isfinite(number):
        return _cell(format_value(value))
    return {"type": "raw_number", "value": number, "text": _cell(format_value(value))["text"]}


def _code(sql: str, limit: int) -> str:
    body = sql.strip().replace("```", "'''")
    if len(body) > limit:
        body = body[: limit - 1] + "…"
    return f"```{body}```"


def _short(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fallback(text: str) -> str:
    return text if len(text) <= FALLBACK_CHARS else text[: FALLBACK_CHARS - 1] + "…"


# -------------------------------------------------------------------- App Home

# Example questions and the tables each needs: shown only when the warehouse has them.
EXAMPLES = [
    ({"companies", "valuations", "investments"},
     "What are our ten largest positions by current value?"),
    ({"investments"}, "How much did we invest in each of the last three years?"),
    ({"investments", "general_partners"}, "Which partner led the most investments last year?"),
    ({"exits"}, "Which exits returned the most?"),
    ({"funds", "investments"}, "How much has each fund invested so far?"),
]


def examples(tables: list[str], limit: int = 4) -> list[str]:
    """Questions that work on this warehouse: known ones whose tables exist, then one per
    other table, named as the catalogue names it."""
    have = {t.lower() for t in tables}
    found = [q for needs, q in EXAMPLES if needs <= have]
    for table in tables:
        if len(found) >= limit:
            break
        if not any(table.lower() in needs for needs, _ in EXAMPLES):
            found.append(f"What is in {table.replace('_', ' ')}, in a few numbers?")
    return found[:limit]


def home_view(tables: dict[str, str], as_of: str, recent: list[tuple[str, str]]) -> dict:
    """The Home tab: what fundbot answers (tables and what they hold), example questions, the
    data's date, and the user's recent questions as (question, link to its thread)."""
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": "fundbot"}},
        _section("I answer questions about the fund's portfolio in plain words: I write SQL "
                 "over the fund's data, run it read-only, and answer in a thread with the SQL "
                 "I ran. Mention me in a channel or message me here."),
        _context(f"Data as of {as_of}" if as_of else "Data date unknown"),
        {"type": "divider"},
        _section("*What I know about*\n" + "\n".join(
            f"• *{name}*" + (f": {_short(desc, 150)}" if desc else "")
            for name, desc in tables.items())),
        _section("*Try asking*\n" + "\n".join(f"• {q}" for q in examples(list(tables)))),
    ]
    if recent:  # our own links: `link` keeps them live through the seal
        blocks.append(_section("*Your recent questions*\n" + "\n".join(
            f"• {link(url, question[:150])}" if url else f"• {question[:150]}"
            for question, url in recent)))
    return {"type": "home", "blocks": blocks}


def home_refusal() -> dict:
    return {"type": "home", "blocks": [_section(refusal())]}
