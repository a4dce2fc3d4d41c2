"""verify: every figure and name in the answer checked against the data, without an LLM call.

A figure is supported by a cell of the result in any usual format and rounding, the row
count, the data's as-of date or today, a year or date the question (or the SQL it ran) named,
or simple arithmetic over the result a reader would expect: a column's sum or average, a
difference, ratio or percentage change between two values of one row or one column, a share
of a column's total. A figure in a clause that names a row (a fund, a sector) must come from
that row, so two funds' figures cannot be swapped. A fund, company or person named must
appear in the result, the question, the SQL, the resolved facts or the thread. The answer
goes back to interpret once with what failed; then `replace` posts the rows themselves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from states.context import TurnContext
from states.ports import Warehouse
from states.values import (
    DATE,
    MONEY,
    MONTH,
    MULTIPLE,
    NUMBER,
    PERCENT,
    QUARTER,
    Figure,
    Reading,
    as_date,
    figure_matches,
    find_names,
    name_forms,
    number,
    number_matches,
    read,
    row_labels,
    states,
)

REINTERPRET_ROUNDS = 1  # at most one more LLM call per turn when an answer fails
# The small mark Slack and the terminal show for TurnResult.verification.
MARKS = {"verified": "✓ figures checked against the data",
         "revised": "✓ figures checked against the data (second draft)",
         "replaced": "summary withheld: its figures did not match the data"}
MAX_OPERAND_ROWS = 20  # differences and ratios are between values of the first rows
MAX_DERIVED = 20  # figures per answer searched for arithmetic; an answer needing more fails
SUPPORTED, UNSUPPORTED = "supported", "unsupported"


@dataclass
class Check:
    """One figure or name of an answer, its verdict and where its support came from."""

    figure: str
    kind: str
    verdict: str
    support: str


@dataclass
class Evidence:
    """What an answer may rest on."""

    question: str
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]]
    truncated: bool = False
    as_of: date | None = None
    today: date | None = None
    sql: str = ""
    facts: Sequence[str] = ()  # resolved names and answers to clarifications
    thread: Sequence[str] = ()  # earlier questions and answers of the thread
    shown: int = 50  # rows the model was shown (Limits.llm_rows): cells beyond are unseen
    _q: Reading | None = field(default=None, repr=False)
    _rows: list[set[str]] | None = field(default=None, repr=False)
    _nums: list[list[float | None]] | None = field(default=None, repr=False)
    _dates: list[tuple[int, int, date]] | None = field(default=None, repr=False)
    _cells: dict[tuple[str, ...], str] | None = field(default=None, repr=False)

    def question_reading(self) -> Reading:
        if self._q is None:
            self._q = read(self.question)
        return self._q

    def numbers(self) -> list[list[float | None]]:
        """Each cell of the shown rows as a number when it is one (or text that reads as
        one), else None."""
        if self._nums is None:
            self._nums = [[_as_number(c) for c in r] for r in self.rows[:self.shown]]
        return self._nums

    def dates(self) -> list[tuple[int, int, date]]:
        """(row, column, date) of the date cells in the rows the model was shown."""
        if self._dates is None:
            self._dates = [(i, j, d) for i, r in enumerate(self.rows[:self.shown])
                           for j, c in enumerate(r) if (d := as_date(c)) is not None]
        return self._dates

    def row_names(self) -> list[set[str]]:
        """Each shown row's text cells that name it (computed once)."""
        if self._rows is None:
            self._rows = [row_labels(r) for r in self.rows[:self.shown]]
        return self._rows

    def cell_of_name(self, name: str) -> str | None:
        """Where a name is a text cell of the result, as "cell <column> (row <n>)"."""
        if self._cells is None:
            self._cells = {}
            for i, r in enumerate(self.rows[:self.shown]):
                for j, cell in enumerate(r):
                    if isinstance(cell, str):
                        for form in name_forms(cell):
                            self._cells.setdefault(form, f"cell {self.columns[j]} (row {i + 1})")
        return next((self._cells[f] for f in name_forms(name) if f in self._cells), None)


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
    thread = [t for turn in ctx.conv.history for t in (turn.question, turn.answer or "")]
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
    ctx = _Arith(ev)
    for fig in reading.figures:
        support = _figure_support(fig, reading, ev, ctx)
        out.append(Check(fig.text, fig.kind, SUPPORTED if support else UNSUPPORTED,
                         support or _why_not(fig)))
    return out


def _why_not(fig: Figure) -> str:
    if fig.first is not None:
        return "no such date in the result, the question or the data's date"
    return "no cell, count or simple arithmetic over the result gives it"


def _as_number(cell: Any) -> float | None:
    n = number(cell)
    if n is None and isinstance(cell, str) and as_date(cell) is None:
        try:
            n = float(cell.replace(",", "").strip())
        except ValueError:
            return None
    return n


def _same_name(a: str, b: str) -> bool:
    return bool(set(name_forms(a)) & set(name_forms(b)))


def _check_name(words: str, values: Sequence[str], ev: Evidence) -> Check:
    def where(v: str) -> str | None:
        cell = ev.cell_of_name(v)
        if cell:
            return cell
        if states(v, ev.question):
            return "question"
        for lit in _sql_strings(ev.sql):
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


_SQL_STRING = re.compile(r"'((?:[^']|'')*)'")
_SQL_DATE = re.compile(r"(<=|<|>=|>|=)?\s*(?:DATE\s*|TIMESTAMP\s*)?'(\d{4}-\d{2}-\d{2})[^']*'",
                       re.IGNORECASE)
_LAST_YEAR = re.compile(r"\b(?:last|previous|prior)\s+year|\ba\s+year\s+ago\b", re.I)
_LAST_QUARTER = re.compile(r"\b(?:last|previous|prior)\s+quarter", re.I)
_SQL_YEAR = re.compile(r"(?<![\w.'])(19\d\d|20\d\d|2100)(?![\w.'])")


def _sql_strings(sql: str) -> list[str]:
    return [m[1].replace("''", "'") for m in _SQL_STRING.finditer(sql or "")]


def _sql_dates(sql: str) -> list[date]:
    """Dates the SQL filters on; "< '2025-01-01'" means up to 2024-12-31."""
    out = []
    for m in _SQL_DATE.finditer(sql or ""):
        try:
            d = date.fromisoformat(m[2])
        except ValueError:
            continue
        out.append(d - timedelta(days=1) if m[1] == "<" else d)
    return out


def _reference_dates(ev: Evidence) -> list[tuple[date, str]]:
    out = []
    if ev.as_of:
        out.append((ev.as_of, "as-of date"))
    if ev.today:
        out.append((ev.today, "today"))
    return out


def _quarter(d: date) -> tuple[date, date]:
    first = date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)
    nxt = date(first.year + (first.month + 2) // 12, (first.month + 2) % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _date_support(fig: Figure, ev: Evidence) -> str | None:
    """A date, month or quarter (or a year) that the data, the question or the SQL names."""
    for i, j, d in ev.dates():
        if figure_matches(fig, d):
            return f"cell {ev.columns[j]} (row {i + 1})"
    years = fig.is_year
    year = int(fig.value or 0) if years else 0
    last_year = _LAST_YEAR.search(ev.question) is not None
    last_quarter = _LAST_QUARTER.search(ev.question) is not None
    for d, name in _reference_dates(ev):
        if years and year == d.year:
            return name
        if years and last_year and year == d.year - 1:
            return f"the year before the {name}"
        if fig.first is not None and fig.first <= d <= fig.last:
            return name
        if fig.kind == QUARTER and last_quarter:  # the quarter before the reference date's
            prev = _quarter(_quarter(d)[0] - timedelta(days=1))
            if (fig.first, fig.last) == prev:
                return f"the quarter before the {name}"
    for q in ev.question_reading().figures:
        if _same_date(fig, q):
            return "question"
    for d in _sql_dates(ev.sql):
        if figure_matches(fig, d):
            return "sql"
    if years and int(fig.value or 0) in {int(y) for y in _SQL_YEAR.findall(ev.sql or "")}:
        return "sql"
    return None


def _same_date(fig: Figure, q: Figure) -> bool:
    if fig.first is not None and q.first is not None:
        return fig.first <= q.last and q.first <= fig.last
    if fig.is_year and q.first is not None:
        return q.first.year == int(fig.value or 0)
    if fig.first is not None and q.is_year:
        return fig.first.year == int(q.value or 0)
    return fig.is_year and q.is_year and fig.value == q.value


def _figure_support(fig: Figure, reading: Reading, ev: Evidence, arith: _Arith) -> str | None:
    if fig.kind in (DATE, MONTH, QUARTER):
        return _date_support(fig, ev)
    direct = reading.after_name(fig)  # "Fintech 12", "(Fund I, $3.0M)": that row's figure
    direct = direct if direct in arith.labels else None
    clause = _rows_named(reading.names_near(fig) | ({direct} if direct else set()), ev)
    rows = clause or list(range(min(len(ev.rows), ev.shown)))
    column = arith.column_next_to(fig, reading.text)  # "invested $5M", "$9M committed"
    numbers = ev.numbers()
    for i in rows:
        for j, v in enumerate(numbers[i]):
            if v is not None and (column is None or j == column) and number_matches(fig, v):
                return f"cell {ev.columns[j]} (row {i + 1})"
    if fig.is_year and not direct:  # "IPO 2025" is a count, not a year
        found = _date_support(fig, ev)
        if found:
            return found
    if (fig.kind == NUMBER and not ev.truncated and fig.value is not None and not direct
            and number_matches(fig, float(len(ev.rows)))):
        return "row count"
    for q in ev.question_reading().figures:
        if q.value is not None and fig.value is not None and number_matches(fig, q.value):
            return "question"
    if fig.kind == NUMBER and fig.value in _small_numbers(ev):
        return "question or sql limit"  # "the 5 largest" for "the five largest", LIMIT 5
    return arith.support(fig, rows, clause, _rows_named(reading.names_in_sentence(fig), ev),
                         direct is not None)


_NUMBER_WORDS = {w: float(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
_SQL_LIMIT = re.compile(r"\blimit\s+(\d+)", re.IGNORECASE)


def _small_numbers(ev: Evidence) -> set[float]:
    """Counts the question spells out ("five") and the SQL's LIMIT."""
    words = {_NUMBER_WORDS[w] for w in re.findall(r"[a-z]+", ev.question.lower())
             if w in _NUMBER_WORDS}
    return words | {float(n) for n in _SQL_LIMIT.findall(ev.sql or "")}


def _rows_named(names: set[str], ev: Evidence) -> list[int]:
    return [i for i, r in enumerate(ev.row_names()) if r & names] if names else []


class _Arith:
    """Simple arithmetic over the result, computed only for figures that need it."""

    def __init__(self, ev: Evidence) -> None:
        self.ev = ev
        self._cols: list[tuple[int, list[tuple[int, float]]]] | None = None
        self._totals: dict[int, float] | None = None
        self.searched = 0  # figures searched for arithmetic so far
        self.labels = set().union(*ev.row_names())
        self._words: dict[str, set[int]] | None = None

    def column_next_to(self, fig: Figure, text: str) -> int | None:
        """The numeric column a word right next to the figure names, if exactly one."""
        if self._words is None:
            self._words = {}
            for j, _ in self.columns():
                for w in self.ev.columns[j].lower().split("_"):
                    if len(w) >= 4 and w not in _GENERIC:
                        self._words.setdefault(w[:6], set()).add(j)
        if not self._words:
            return None
        found: set[int] = set()
        before = _WORD_BEFORE.search(text, max(0, fig.start - 40), fig.start)
        for m in (before, _WORD_AFTER.match(text, fig.end)):
            if m:
                found |= self._words.get(m[1].lower()[:6], set())
        return found.pop() if len(found) == 1 else None

    def columns(self) -> list[tuple[int, list[tuple[int, float]]]]:
        """Numeric columns (not keys): (index, [(row, value)]) over the shown rows."""
        if self._cols is None:
            cols = []
            for j, name in enumerate(self.ev.columns):
                if is_key(name):
                    continue
                nums = self.ev.numbers()[:MAX_OPERAND_ROWS]
                vals = [(i, r[j]) for i, r in enumerate(nums) if r[j] is not None]
                if vals:
                    cols.append((j, vals))
            self._cols = cols
        return self._cols

    def totals(self) -> dict[int, float]:
        """Column totals over every row, for numeric columns without gaps (not truncated)."""
        if self._totals is None:
            self._totals = {}
            if not self.ev.truncated and len(self.ev.rows) > 1:
                for j, name in enumerate(self.ev.columns):
                    col = [number(r[j]) for r in self.ev.rows]
                    if not is_key(name) and all(v is not None for v in col):
                        self._totals[j] = sum(col)  # type: ignore[arg-type]
        return self._totals

    def support(self, fig: Figure, rows: list[int], clause: list[int], sentence: list[int],
                direct: bool) -> str | None:
        """Arithmetic that gives the figure. A row's share of a total needs the row named in
        the figure's clause; two rows need one named there and the other in the sentence,
        and a figure written right after a row's name ("Fintech 12") is that row's alone."""
        if fig.value is None or self.searched >= MAX_DERIVED:
            return None
        self.searched += 1
        ev, cols = self.ev, self.columns()
        want = set(rows)
        free = not self.labels or len(ev.rows) < 2
        in_clause, in_sentence = set(clause), set(sentence)
        name = ev.columns
        totals = self.totals()
        if fig.kind in (MONEY, NUMBER) and not direct:
            for j, total in totals.items():
                if number_matches(fig, total):
                    return f"sum of {name[j]}"
                if number_matches(fig, total / len(ev.rows)):
                    return f"average of {name[j]}"
        cells = [(i, j, v) for j, vals in cols for i, v in vals]
        for a_i, a_j, a in cells:
            if a_i not in want:
                continue
            if (fig.kind == PERCENT and totals.get(a_j) and (free or a_i in in_clause)):
                if number_matches(fig, a / totals[a_j]):
                    return f"share of {name[a_j]} total (row {a_i + 1})"
            for b_i, b_j, b in cells:
                if (b_i, b_j) == (a_i, a_j) or (b_i != a_i and b_j != a_j):
                    continue
                if b_i != a_i and not free and (direct or a_i not in in_clause
                                                or b_i not in in_sentence):
                    continue
                what = _combine(fig, a, b)
                if what:
                    where = (f"row {a_i + 1}" if a_i == b_i
                             else f"rows {a_i + 1} and {b_i + 1}")
                    return f"{what} of {name[a_j]} and {name[b_j]} ({where})"
        return None


def is_key(column: str) -> bool:
    """A key column (id, company_id): never a figure a reader is told."""
    low = column.lower()
    return low == "id" or low.endswith("_id")


_GENERIC = frozenset("usd value values amount total count number avg average year date".split())
_LINK = r"(?:(?:of|at|is|was|were|are|to|by|its|their|our)\s+)?"
_WORD_BEFORE = re.compile(rf"([A-Za-z]+)\s+{_LINK}$")
_WORD_AFTER = re.compile(rf"\s+{_LINK}([A-Za-z]+)")


def _combine(fig: Figure, a: float, b: float) -> str | None:
    """The operation on two values that gives the figure, for its kind of figure."""
    if fig.kind in (MONEY, NUMBER):
        if number_matches(fig, abs(a - b)) or number_matches(fig, a - b):
            return "difference"
    elif b:
        if fig.kind == MULTIPLE and number_matches(fig, a / b):
            return "ratio"
        if fig.kind == PERCENT:
            if number_matches(fig, a / b):
                return "ratio"
            change = (a - b) / b
            if number_matches(fig, change) or number_matches(fig, abs(change)):
                return "percentage change"
    return None


# ------------------------------------------------------------------------ feedback

def feedback(bad: Sequence[Check]) -> str:
    """What interpret is told when its answer failed: exactly which figures and why."""
    lines = [f"- {c.figure}: {c.support}" for c in bad]
    return ("These figures or names in your previous answer do not match the result:\n"
            + "\n".join(lines)
            + "\nWrite the answer again using only values from the result table (or simple "
              "arithmetic over them), each with the row it belongs to.")
