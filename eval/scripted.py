"""Scripted replay models whose right and wrong answers are known: they check the harness.

Each is the gold replay model (eval/gold.py) with one known fault or style, selected with
`fundbot eval --model replay:<name>`:

- `wrong-numbers`: reads the right tables but computes every amount 10 % too high
  (`ROUND(x * 1.1, 2)` over the reference query) and describes its own result faithfully.
  Verify cannot object (the prose matches the rows); execution and answer accuracy must.
- `wrong-20pct`: gold on four cases in five; on a fixed fifth of the cases (by id) it is
  `wrong-numbers`. The model to compare gold against.
- `hard-coded`: instead of querying the tables, it types the sample's reference result in
  as literals (`SELECT * FROM (VALUES ...)`). Right on the sample warehouse, wrong on any
  seeded variant: `--variants` catches it.
- `minimal`: a right but minimal answer: the reference query cut down to its important
  columns (just the sector, just the names of a top-N list), answered by listing them. It
  must pass every case.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

from eval.gold import GoldLLM, parse_result_table, plain_answer
from eval.metrics import important_columns, is_key
from states.dialects import transpile
from states.ports import LLMReply, ToolCall

WRONG_FACTOR = 1.1


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class _Rewriting(GoldLLM):
    """Gold, with the understand call's SQL rewritten from the turn's reference result."""

    def __init__(self, case: Any, dialect: str = "duckdb") -> None:
        super().__init__(case, dialect)
        self.expected: Any = None  # the runner sets this: the turn's reference results

    def rewrite(self) -> bool:
        return True

    def sql(self, columns: list[str], rows: list[tuple]) -> str:
        raise NotImplementedError

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        ref = self.expected.refs[0] if self.expected and self.expected.refs else None
        if not self.rewrite() or ref is None or ref.error:
            return super().complete(messages, tools, tool_choice)
        if tools is None:  # describe the result it was shown, not the reference
            table = parse_result_table(str(messages[-1].get("content") or ""))
            self.expected_answer = None
            if table is not None:
                return self._text(messages, self.describe(*table))
        reply = super().complete(messages, tools, tool_choice)
        if reply.tool_calls:
            # written in DuckDB SQL, as the references are; sent in the engine's dialect
            sql = transpile(self.sql(list(ref.columns), list(ref.rows)), self.dialect)
            args = json.dumps({"sql": sql})
            return LLMReply(content=None, tool_calls=[ToolCall("replay-1", "sql_query", args)],
                            usage=reply.usage, model=self.model, finish_reason="tool_calls")
        return reply

    def describe(self, columns: list[str], rows: list[tuple]) -> str:
        spec = self._spec()
        try:
            from eval.gold import reference_answer

            return reference_answer(spec, columns, rows)
        except KeyError:  # a template naming columns this result does not have
            return plain_answer(spec, columns, rows)


class WrongNumbers(_Rewriting):
    model = "replay:wrong-numbers"

    def sql(self, columns: list[str], rows: list[tuple]) -> str:
        def number(v: Any) -> bool:
            return isinstance(v, (int, float, Decimal)) and not isinstance(v, bool)

        numeric = {i for i, c in enumerate(columns) if not is_key(c)
                   and any(number(r[i]) for r in rows)
                   and all(number(r[i]) for r in rows if r[i] is not None)}
        cols = ", ".join(f"ROUND(t.{_quote(c)} * {WRONG_FACTOR}, 2) AS {_quote(c)}"
                         if i in numeric else f"t.{_quote(c)}" for i, c in enumerate(columns))
        return f"SELECT {cols} FROM ({self._spec().sql}) AS t"


class WrongShare(WrongNumbers):
    """`wrong-numbers` on a fixed fifth of the cases, gold on the rest."""

    model = "replay:wrong-20pct"
    share = 5  # one case in `share`

    def rewrite(self) -> bool:
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
    cols = ", ".join(_quote(c) for c in columns)
    if not rows:
        nulls = ", ".join("NULL" for _ in columns)
        return f"SELECT * FROM (VALUES ({nulls})) AS t({cols}) WHERE FALSE"
    values = ", ".join("(" + ", ".join(_literal(v) for v in r) + ")" for r in rows)
    return f"SELECT * FROM (VALUES {values}) AS t({cols})"


class HardCoded(_Rewriting):
    model = "replay:hard-coded"

    def sql(self, columns: list[str], rows: list[tuple]) -> str:
        return literal_sql(columns, rows)


class Minimal(_Rewriting):
    """Selects only the reference's important columns (labels and keys left out)."""

    model = "replay:minimal"

    def sql(self, columns: list[str], rows: list[tuple]) -> str:
        spec = self._spec()
        keep = important_columns(columns, spec.value_columns)
        cols = ", ".join(f"t.{_quote(columns[i])}" for i in keep)
        return f"SELECT {cols} FROM ({spec.sql}) AS t"

    def describe(self, columns: list[str], rows: list[tuple]) -> str:
        return plain_answer(self._spec(), columns, rows)


REPLAYS = {"wrong-numbers": WrongNumbers, "wrong-20pct": WrongShare, "hard-coded": HardCoded,
           "minimal": Minimal}
