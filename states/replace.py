"""replace: the written summary failed verification twice; post the result's own values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from states.context import TurnContext
from states.prompts import fmt_value
from states.support import is_key

MAX_ROWS = 10  # rows spelled out in the sentence; the table beneath shows the rest


def run(ctx: TurnContext) -> str:
    assert ctx.result is not None
    # the rejected figures stay in the trace: repeating a wrong number here would post it
    ctx.answer = withheld_answer(ctx.result.columns, ctx.result.rows)
    ctx.verification = "replaced"
    return "done"


def key_columns(columns: Sequence[str]) -> list[int]:
    """The columns worth reading out: all but keys, unless keys are all there is."""
    keep = [j for j, c in enumerate(columns) if not is_key(c)]
    return keep or list(range(len(columns)))


def withheld_answer(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An answer built from the rows, formatted as the terminal and Slack show them."""
    head = ("I withheld the written summary because some of its figures did not match the "
            "data. ")
    if not rows:
        return head + "The query returned no rows."
    cols = key_columns(columns)
    lines = ["; ".join(f"{columns[j]}: {fmt_value(r[j])}" for j in cols)
             for r in rows[:MAX_ROWS]]
    more = len(rows) - MAX_ROWS
    tail = f" (and {more} more rows in the table)" if more > 0 else ""
    body = "\n".join(f"• {line}" for line in lines) if len(lines) > 1 else lines[0]
    return head + "The values from the result are:" + ("\n" if len(lines) > 1 else " ") \
        + body + tail
