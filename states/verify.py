"""verify: every figure and name in the answer checked against the data, without an LLM call.

A figure is supported by a cell of the result in any usual format and rounding, the row
count, the data's as-of date or today, a year or date the question (or the SQL it ran) named,
or simple arithmetic over the result a reader would expect: a column's sum or average, a
difference, ratio or percentage change between two values of one row or one column, a share
of a column's total. A figure in a clause that names a row (a fund, a sector) must come from
that row, so two funds' figures cannot be swapped. A fund, company or person named must
appear in the result, the question, the SQL, the resolved facts or the thread. The answer
goes back to interpret once with what failed; then `replace` posts the rows themselves.
The rules of support are in `states/support.py`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from states.context import TurnContext
from states.ports import Warehouse
from states.support import Arithmetic, Evidence, figure_support, sql_strings
from states.values import (
    Figure,
    as_date,
    find_names,
    name_forms,
    read,
    states,
)

REINTERPRET_ROUNDS = 1  # at most one more LLM call per turn when an answer fails
# The small mark Slack and the terminal show for TurnResult.verification.
MARKS = {"verified": "✓ figures checked against the data",
         "revised": "✓ figures checked against the data (second draft)",
         "replaced": "summary withheld: its figures did not match the data"}
SUPPORTED, UNSUPPORTED = "supported", "unsupported"


@dataclass
class Check:
    """One figure or name of an answer, its verdict and where its support came from."""

    figure: str
    kind: str
    verdict: str
    support: str


# ------------------------------------------------------------------------ the step

def run(ctx: TurnContext) -> str:
    """Check the answer; 'ok' posts it, 'reject' sends it back (once) or replaces it."""
    assert ctx.result is not None and ctx.answer is not None
    ev = evidence_of(ctx)
    named = named_in(ctx.deps.warehouse, ctx.answer, set().union(*ev.row_names()))
    checks = check(ctx.answer, ev, named)
    bad = [c for c in checks if c.verdict == UNSUPPORTED]
    ctx.verify_rounds += 1
    ctx.trace.verify.append({"round": ctx.verify_rounds, "answer": ctx.answer,
                             "checks": [vars(c).copy() for c in checks],
                             "verdict": "rejected" if bad else "verified"})
    if not bad:
        ctx.verification = "verified" if ctx.verify_rounds == 1 else "revised"
        return "ok"
    ctx.rejected = bad
    return "reject"


def evidence_of(ctx: TurnContext) -> Evidence:
    result = ctx.result
    assert result is not None
    as_of = ctx.deps.warehouse.catalog.as_of
    facts = [e.value for e in ctx.entities] + [e.mention for e in ctx.entities] + ctx.facts
    if ctx.conv.pending:
        facts += ctx.conv.pending.facts
    recent = [t for t in ctx.conv.history if t.state == "answered"]
    recent = recent[-ctx.deps.limits.history_turns:] if ctx.deps.limits.history_turns else []
    thread = [t for turn in recent for t in (turn.question, turn.answer or "")]
    return Evidence(question=ctx.question, columns=list(result.columns), rows=result.rows,
                    truncated=result.truncated, as_of=as_date(as_of) if as_of else None,
                    today=ctx.today, sql=ctx.sql or "", facts=facts, thread=thread,
                    shown=ctx.deps.limits.llm_rows)


_FUND_LIKE = re.compile(r"\b(?:[A-Z][a-z]+ )?Fund (?:[IVX]+|\d+)\b")


def named_in(warehouse: Warehouse, text: str, known: Iterable[str] = ()
             ) -> list[tuple[str, list[str]]]:
    """(words, the names they may mean) for each fund, company or person the text names:
    the warehouse's own dictionaries, plus anything written like a fund ("Fund VII").
    Mentions of `known` names (the result's own) are supported already: they are left out."""
    for m in reversed(find_names(text, known)):
        text = text[:m.start] + " " * (m.end - m.start) + text[m.end:]
    entities, ambiguities = warehouse.resolve(text)
    out = [(e.mention, [e.value]) for e in entities]
    out += [(a.mention, [c.value for c in a.candidates]) for a in ambiguities]
    seen = {w.casefold() for w, _ in out} | {v.casefold() for _, vs in out for v in vs}
    for m in _FUND_LIKE.finditer(text):
        words = m.group()
        first = words.split()[0].casefold()
        if first not in ("fund",) and first in _LEADING:
            words = words.split(" ", 1)[1]
        if words.casefold() not in seen and not any(words.casefold() in s for s in seen):
            out.append((words, [words]))
    return out


_LEADING = {"the", "our", "in", "this", "that", "each", "every", "and", "by", "for", "of"}


# ------------------------------------------------------------------------ checking

def check(answer: str, ev: Evidence, named: Sequence[tuple[str, Sequence[str]]] = ()
          ) -> list[Check]:
    """Every figure and name of `answer` with its verdict and support."""
    labels = sorted(set().union(*ev.row_names(), *(vs for _, vs in named)))
    reading = read(answer, labels)
    out = [_check_name(words, values, ev) for words, values in named]
    checked = {v for _, vs in named for v in vs}
    for m in reading.names:  # the result's own names, found without the dictionaries
        cell = None if m.name in checked else ev.cell_of_name(m.name)
        if cell:
            out.append(Check(answer[m.start:m.end], "name", SUPPORTED, cell))
    arith = Arithmetic(ev)
    for fig in reading.figures:
        support = figure_support(fig, reading, ev, arith)
        out.append(Check(fig.text, fig.kind, SUPPORTED if support else UNSUPPORTED,
                         support or _why_not(fig)))
    return out


def _why_not(fig: Figure) -> str:
    if fig.first is not None:
        return "no such date in the result, the question or the data's date"
    return "no cell, count or simple arithmetic over the result gives it"


def _same_name(a: str, b: str) -> bool:
    return bool(set(name_forms(a)) & set(name_forms(b)))


def _check_name(words: str, values: Sequence[str], ev: Evidence) -> Check:
    def where(v: str) -> str | None:
        cell = ev.cell_of_name(v)
        if cell:
            return cell
        if states(v, ev.question):
            return "question"
        for lit in sql_strings(ev.sql):
            if _same_name(v, lit):
                return "sql"
        if any(_same_name(v, f) or states(v, f) for f in ev.facts):
            return "resolved facts"
        if any(states(v, t) for t in ev.thread):
            return "thread"
        return None

    for v in values:
        found = where(v)
        if found:
            return Check(words, "name", SUPPORTED, found)
    return Check(words, "name", UNSUPPORTED,
                 "named nowhere in the result, the question or the resolved facts")


# ------------------------------------------------------------------------ feedback

def feedback(bad: Sequence[Check]) -> str:
    """What interpret is told when its answer failed: exactly which figures and why."""
    lines = [f"- {c.figure}: {c.support}" for c in bad]
    return ("These figures or names in your previous answer do not match the result:\n"
            + "\n".join(lines)
            + "\nWrite the answer again using only values from the result table (or simple "
              "arithmetic over them), each with the row it belongs to.")
