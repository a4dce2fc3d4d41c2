"""The gold replay model and the reference-answer templates it shares with make_cases.

`GoldLLM` implements the LLM port for one case: the runner makes one per case and sets
`turn` (and `expected_answer`, the reference answer from the exact reference result) before
each message. It answers exactly what a perfect model would: the reference SQL as a
`sql_query` tool call, "OUT OF SCOPE: ..." for refusals, the reference clarifying question,
and for interpret calls the reference answer (without one, the answer template filled from
the result table it is shown). Scoring it must give 1.0 on every metric; anything less is a
bug in the cases or the wiring.

Reference answers are rendered from the exact values of the reference result, never from
the rounded table: 3.6254 is "3.63x", not 3.625 rounded again to "3.62x".

Templates: `{col}` or `{col:fmt}` is the first row's value of a result column;
`[[ ... ]]` repeats its content for every row, joined by "; " (in a canonical order when the
SQL has no ORDER BY); `{n_rows}` is the row count.
Formats: money ($12.3M), int (1,234), num (1,234.56), pct (12.5%), x (2.35x).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eval.cases import Case, TurnSpec
from eval.metrics import canonical_rows, is_ordered
from states.debug import KEEP
from states.dialects import transpile
from states.ports import LLMReply, ToolCall, Usage
from states.prompts import OUT_OF_SCOPE

# ------------------------------------------------------------------ templates

_NUM_CELL = re.compile(r"^-?\d{1,3}(?:,\d{3})*(?:\.\d+)?$|^-?\d+(?:\.\d+)?$")


def parse_cell(text: str) -> Any:
    """A cell of the Markdown result table back as a value: numbers, NULL, text."""
    s = text.strip()
    if s == "NULL":
        return None
    if _NUM_CELL.match(s):
        plain = s.replace(",", "")
        return float(plain) if "." in plain else int(plain)
    return s


def parse_result_table(text: str) -> tuple[list[str], list[tuple]] | None:
    """(columns, rows) of the "Result (N rows):" table in an interpret prompt, else None."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Result ("):
            table = lines[i + 1:]
            if not table or not table[0].startswith("|"):
                return None
            columns = [c.strip() for c in table[0].strip()[1:-1].split(" | ")]
            rows = []
            for row in table[2:]:
                if not row.startswith("| "):
                    break
                cells = row.strip()[2:-2].split(" | ")
                rows.append(tuple(parse_cell(c) for c in cells))
            return columns, rows
    return None


def money(v: float) -> str:
    sign, a = ("-" if v < 0 else ""), abs(v)
    if a >= 1e9:
        return f"{sign}${a / 1e9:.2f}B"
    if a >= 1e6:
        return f"{sign}${a / 1e6:.1f}M"
    if a >= 1e3:
        return f"{sign}${a / 1e3:.0f}K"
    return f"{sign}${a:,.0f}"


def fmt(value: Any, spec: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        v = float(value)
        if spec == "money":
            return money(v)
        if spec == "int":
            return f"{round(v):,}"
        if spec == "pct":
            return f"{v:.1f}%"
        if spec == "x":
            return f"{v:.2f}x"
        if spec == "num" or not float(v).is_integer():
            return f"{v:,.2f}"
        return f"{int(v):,}" if abs(v) >= 10000 else str(int(v))
    return str(value)


_FIELD = re.compile(r"\{(\w+)(?::(\w+))?\}")
_LOOP = re.compile(r"\[\[(.+?)\]\]", re.DOTALL)


def render(template: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Fill a reference-answer template from a result; KeyError names an unknown column."""
    index = {c.lower(): i for i, c in enumerate(columns)}

    def fill(text: str, row: Sequence[Any] | None) -> str:
        def sub(m: re.Match) -> str:
            name, spec = m[1].lower(), m[2] or ""
            if name == "n_rows":
                return str(len(rows))
            if name not in index:
                raise KeyError(f"template field {{{m[1]}}} is not a result column "
                               f"({', '.join(columns)})")
            return fmt(row[index[name]] if row is not None else None, spec)
        return _FIELD.sub(sub, text)

    looped = _LOOP.sub(lambda m: "; ".join(fill(m[1], r) for r in rows), template)
    return fill(looped, rows[0] if rows else None)


def reference_answer(turn: TurnSpec, columns: Sequence[str], rows: Sequence[Sequence[Any]]
                     ) -> str:
    """The reference answer of an answer turn, rendered once from the exact values."""
    if not turn.answer_template:
        return turn.answer or plain_answer(turn, columns, rows)
    exact = [tuple(_exact(v) for v in r) for r in rows]
    if not is_ordered(turn.sql or ""):  # the database may list them in any order
        exact = canonical_rows(exact)
    return render(turn.answer_template, columns, exact)


def _exact(v: Any) -> Any:
    """A cell as the template formats it: numbers as floats, dates as ISO text."""
    if v is None or isinstance(v, (str, int, float)):
        return v
    if hasattr(v, "isoformat"):
        return v.isoformat()
    try:
        return float(v)
    except (TypeError, ValueError):
        return str(v)


_MONEY_COL = re.compile(r"(usd|amount|invested|value|proceeds|capital|committed)", re.I)


def plain_answer(turn: TurnSpec, columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 max_rows: int = 50) -> str:
    """A reference answer for a case without a template: its important values, row by row
    (money columns as money; a long result's first `max_rows` rows)."""
    from eval.metrics import important_columns

    if not rows:
        return "No rows match."
    idx = important_columns(columns, turn.value_columns)
    exact = [tuple(_exact(v) for v in r) for r in rows]
    if not is_ordered(turn.sql or ""):
        exact = canonical_rows(exact)

    def cell(i: int, v: Any) -> str:
        spec = "money" if _MONEY_COL.search(columns[i]) and isinstance(v, (int, float)) else ""
        return fmt(v, spec)

    lines = [", ".join(cell(i, r[i]) for i in idx) for r in exact[:max_rows]]
    return "; ".join(lines) + "."


# ------------------------------------------------------------------- the model


class GoldLLM:
    """Replays one case's references through the LLM port; records what it was asked."""

    model = "gold"

    def __init__(self, case: Case, dialect: str = "duckdb") -> None:
        self.dialect = dialect  # the warehouse's: the reference SQL is transpiled to it
        self.case = case
        self.turn = 0  # the runner sets this before each message of the case
        self.expected_answer: str | None = None  # and this: the reference answer
        self.history: list[dict[str, Any]] = []

    def _spec(self) -> TurnSpec:
        return self.case.turns[min(self.turn, len(self.case.turns) - 1)]

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        self.history.append({"messages": messages, "tools": tools})
        spec = self._spec()
        last = str(messages[-1].get("content") or "") if messages else ""
        if tools is None and self.expected_answer:  # interpret: the reference answer
            return self._text(messages, self.expected_answer)
        if tools is None:  # interpret: the templated answer from the table it was shown
            table = parse_result_table(last)
            columns, rows = table if table else ([], [])
            return self._text(messages, reference_answer(spec, columns, rows))
        if last.startswith("That query ran but returned no rows"):
            return self._text(messages, KEEP)  # the reference's empty result is the answer
        if spec.expect == "refuse":
            return self._text(messages, f"{OUT_OF_SCOPE} {spec.answer}")
        if spec.expect == "clarify":
            return self._text(messages, spec.clarification or "Which one do you mean: "
                              + " or ".join(spec.options) + "?")
        # understand (or debug of a failing reference: the same SQL again, so it shows)
        args = json.dumps({"sql": transpile(spec.sql, self.dialect)})
        return LLMReply(content=None, tool_calls=[ToolCall("gold-1", "sql_query", args)],
                        usage=_usage(messages, args), model=self.model,
                        finish_reason="tool_calls")

    def _text(self, messages: list[dict[str, Any]], content: str) -> LLMReply:
        return LLMReply(content=content, usage=_usage(messages, content), model=self.model,
                        finish_reason="stop")


def _usage(messages: list[dict[str, Any]], reply: str) -> Usage:
    """Token counts estimated at four characters a token, so reports show prompt sizes."""
    chars = sum(len(str(m.get("content") or "")) for m in messages)
    return Usage(prompt_tokens=chars // 4 + 1, completion_tokens=len(reply) // 4 + 1)


@dataclass
class Reference:
    case_id: str
    answer: str
    evidence: Any  # states.verify.Evidence


def reference_answers(cases: list, wh: Any) -> Iterator[Reference]:
    """Each answer turn's reference answer, written from its own result, with the evidence
    verify would have: the question, rows, SQL, the options chosen and the thread so far."""
    from eval.cases import DEFAULT_TODAY
    from states.values import as_date
    from states.verify import Evidence

    as_of = as_date(wh.catalog.as_of)
    for case in cases:
        thread: list[str] = []
        facts: list[str] = []
        for spec in case.turns:
            facts += spec.options
            if spec.expect != "answer":
                thread.append(spec.question)
                continue
            res = wh.execute(spec.sql)
            answer = reference_answer(spec, res.columns, res.rows)
            yield Reference(case.id, answer, Evidence(
                question=spec.question, columns=res.columns, rows=res.rows,
                truncated=res.truncated, as_of=as_of, today=case.today or DEFAULT_TODAY,
                sql=spec.sql, facts=list(facts), thread=list(thread)))
            thread += [spec.question, answer]
