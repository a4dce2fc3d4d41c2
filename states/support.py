"""What supports a figure: the evidence a turn gives, and the rules verify applies to it.

A cell in any usual format and rounding (of the rows the model was shown), the row count,
the as-of date or today, a date or year the question or the SQL named, counts the question
spells out or the SQL limits, a figure an earlier answer of the thread gave, and simple
arithmetic: a column's sum or average; a difference, ratio or percentage change of two
values of one row, or of two rows both named in the sentence; a row's share of a total.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

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
    name_forms,
    number,
    number_matches,
    read,
    row_labels,
)

MAX_OPERAND_ROWS = 20  # differences and ratios are between values of the first rows
MAX_DERIVED = 20  # figures per answer searched for arithmetic; an answer needing more fails


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
    _thread: list[Figure] | None = field(default=None, repr=False)
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

    def thread_figures(self) -> list[Figure]:
        """The figures of the thread's recent questions and answers (read once, if asked)."""
        if self._thread is None:
            self._thread = [f for t in self.thread for f in read(t).figures]
        return self._thread

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


def _as_number(cell: Any) -> float | None:
    n = number(cell)
    if n is None and isinstance(cell, str) and as_date(cell) is None:
        try:
            n = float(cell.replace(",", "").strip())
        except ValueError:
            return None
    return n


_SQL_STRING = re.compile(r"'((?:[^']|'')*)'")
_SQL_DATE = re.compile(r"(<=|<|>=|>|=)?\s*(?:DATE\s*|TIMESTAMP\s*)?'(\d{4}-\d{2}-\d{2})[^']*'",
                       re.IGNORECASE)
_LAST_YEAR = re.compile(r"\b(?:last|previous|prior)\s+year|\ba\s+year\s+ago\b", re.I)
_LAST_QUARTER = re.compile(r"\b(?:last|previous|prior)\s+quarter", re.I)
_SQL_YEAR = re.compile(r"(?<![\w.'])(19\d\d|20\d\d|2100)(?![\w.'])")


def sql_strings(sql: str) -> list[str]:
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


def figure_support(fig: Figure, reading: Reading, ev: Evidence, arith: Arithmetic) -> str | None:
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
    found = arith.support(fig, rows, clause, _rows_named(reading.names_in_sentence(fig), ev),
                          direct is not None)
    if found is None and not direct and any(  # a figure an earlier answer of the thread gave
            f.value is not None and number_matches(fig, f.value) and f.kind == fig.kind
            for f in ev.thread_figures()):
        return "thread"
    return found


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


class Arithmetic:
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
