"""Scripted replay models whose right and wrong answers are known: they check the harness.

Each is the gold replay model (eval/gold.py) with one known fault, selected with
`fundbot eval --model replay:<name>`:

- `wrong-numbers`: the reference SQL, but the first figure of every answer misstated
  ("$336.5M" for $236.5M). Its results all match; only answer accuracy can catch it.
- `hard-coded`: instead of querying the tables, it types the sample's reference result in
  as literals (`SELECT * FROM (VALUES ...)`). Right on the sample warehouse, wrong on any
  seeded variant: `--variants` catches it.
- `wrong-20pct`: gold on four cases in five; on a fixed fifth of the cases (by id) it
  misstates figures like `wrong-numbers`. The model to compare gold against.
- `minimal`: a right but minimal answer: the reference query cut down to its important
  columns (just the sector, just the names of a top-N list). It must pass every case.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from decimal import Decimal
from typing import Any

from eval.gold import GoldLLM
from states.ports import LLMReply, ToolCall

_DIGITS = re.compile(r"\d")


def misstate(text: str) -> str:
    """The text with the first digit of its first figure changed (2 -> 3, 9 -> 1): one
    amount, count, percentage or multiple now wrong (years and dates are left alone)."""
    from states import values as V

    for fig in V.figures(text or ""):
        if fig.kind in (V.MONEY, V.NUMBER, V.PERCENT, V.MULTIPLE) and not fig.is_year:
            m = _DIGITS.search(text, fig.start, fig.end)
            if m:
                d = int(m.group())
                return text[:m.start()] + str(d % 9 + 1) + text[m.end():]
    return text


class WrongNumbers(GoldLLM):
    model = "replay:wrong-numbers"

    def wrong(self) -> bool:
        return True

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        reply = super().complete(messages, tools, tool_choice)
        if tools is None and reply.content and self.wrong():
            return self._text(messages, misstate(reply.content))
        return reply


class WrongShare(WrongNumbers):
    """Wrong numbers on a fixed fifth of the cases."""

    model = "replay:wrong-20pct"
    share = 5  # one case in `share`

    def wrong(self) -> bool:
        h = int(hashlib.sha256(self.case.id.encode()).hexdigest(), 16)
        return h % self.share == 0


def _literal(v: Any) -> str:
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "TRUE" if v else "FALSE"
    if isinstance(v, (int, float, Decimal)):
        return repr(float(v)) if isinstance(v, float) else str(v)
    if isinstance(v, date):
        return f"DATE '{v.isoformat()}'"
    return "'" + str(v).replace("'", "''") + "'"


def literal_sql(columns: list[str], rows: list[tuple]) -> str:
    """A query that returns `rows` without reading any table."""
    cols = ", ".join('"' + c.replace('"', '""') + '"' for c in columns)
    if not rows:
        return f"SELECT * FROM (VALUES ({', '.join('NULL' for _ in columns)})) AS t({cols}) " \
               "WHERE FALSE"
    values = ", ".join("(" + ", ".join(_literal(v) for v in r) + ")" for r in rows)
    return f"SELECT * FROM (VALUES {values}) AS t({cols})"


class HardCoded(GoldLLM):
    model = "replay:hard-coded"

    def __init__(self, case: Any) -> None:
        super().__init__(case)
        self.expected: Any = None  # the runner sets this: the turn's reference results

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        reply = super().complete(messages, tools, tool_choice)
        ref = self.expected.refs[0] if self.expected and self.expected.refs else None
        if reply.tool_calls and ref is not None and not ref.error:
            args = json.dumps({"sql": literal_sql(ref.columns, ref.rows)})
            return LLMReply(content=None, tool_calls=[ToolCall("hard-1", "sql_query", args)],
                            usage=reply.usage, model=self.model, finish_reason="tool_calls")
        return reply


class Minimal(HardCoded):
    """Selects only the reference's important columns (labels and keys left out)."""

    model = "replay:minimal"

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        reply = GoldLLM.complete(self, messages, tools, tool_choice)
        ref = self.expected.refs[0] if self.expected and self.expected.refs else None
        if reply.tool_calls and ref is not None and not ref.error:
            from eval.metrics import important_columns

            spec = self._spec()
            keep = important_columns(ref.columns, spec.value_columns)
            cols = ", ".join('t."' + ref.columns[i].replace('"', '""') + '"' for i in keep)
            args = json.dumps({"sql": f"SELECT {cols} FROM ({spec.sql}) AS t"})
            return LLMReply(content=None, tool_calls=[ToolCall("min-1", "sql_query", args)],
                            usage=reply.usage, model=self.model, finish_reason="tool_calls")
        return reply


REPLAYS = {"wrong-numbers": WrongNumbers, "hard-coded": HardCoded, "wrong-20pct": WrongShare,
           "minimal": Minimal}
