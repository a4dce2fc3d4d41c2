"""The one value matcher: figures and names read out of prose, matched against data.

Verify (is every figure in an answer backed by the result?) and the evaluation's answer
value recall (does the answer state the important values?) both read prose through this
module, so they agree on what "$236.5M", "3.62x", "September 17th, 2013" or "Fund I" mean.

- `read(text, names)` finds the figures (numbers, money, percentages, multiples, dates,
  months, quarters) and the mentions of known names, and splits the text into clauses.
  Name spans are read first, so digits inside a name never count as figures, and the parts
  of a date ("2026-09-30") are one date, never the numbers 2026, 9 and 30.
- `figure_matches(figure, cell)` says whether a written figure is a usual rounding or
  format of a data value: "$236.5M", "236,500,000" and "$0.24B" all match 236,512,000;
  "12.5 %" matches 12.5 and 0.125; a bare year matches a date in that year.
- `states(value, text)` says whether prose states a value; `recall(...)` scores a list of
  important values against an answer, leaving out values the question itself gave and
  crediting a figure only in a clause about its own row (so "Fintech 7" does not credit
  Fintech's 12 when 7 is Healthcare's count).
"""

from __future__ import annotations

import bisect
import functools
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from dateutil import parser as dateparser

from schemas.dictionaries import strip_legal, tokenize


@functools.lru_cache(maxsize=256)
def _tokens(text: str) -> tuple[tuple[str, int, int], ...]:
    """The dictionaries' words of a text, kept for the texts read again (answer, question)."""
    return tuple(tokenize(text))

# ----------------------------------------------------------------------- figures

MONEY, NUMBER, PERCENT, MULTIPLE = "money", "number", "percent", "multiple"
DATE, MONTH, QUARTER = "date", "month", "quarter"


@dataclass(frozen=True)
class Figure:
    """One figure written in prose.

    Numbers carry `value` (percentages as written: 12.5 for "12.5 %") and `resolution`,
    the unit of the last digit written (0.1e6 for "$12.3M"). Dates, months and quarters
    carry the first and last day they cover in `first` and `last`.
    """

    text: str
    start: int
    end: int
    kind: str  # money, number, percent, multiple, date, month, quarter
    value: float | None = None
    resolution: float = 1.0
    first: date | None = None
    last: date | None = None
    counts: bool = False  # followed by what it counts ("2025 exits"): not a year
    hedge: str = ""  # "about" ("roughly $240M"), "over" ("more than $200M"), "under"

    @functools.cached_property
    def ranges(self) -> tuple[tuple[float, float], ...]:
        """The values this number may stand for, as closed intervals (see number_matches)."""
        if self.value is None:
            return ()
        pairs = [(self.value, self.resolution)]
        if self.kind == PERCENT:
            pairs.append((self.value / 100, self.resolution / 100))
        out = []
        for value, res in pairs:
            half = res / 2 * (1 + 1e-9) + 1e-12
            out.append((value - half, value + half))
            size = abs(value)
            if self.hedge == "about":
                out.append((value - size * HEDGE_SLACK, value + size * HEDGE_SLACK))
            elif self.hedge == "over":
                out.append((value, value + size * BOUND_SLACK))
            elif self.hedge == "under":
                out.append((value - size * BOUND_SLACK, value))
        return tuple(out)

    @property
    def is_year(self) -> bool:
        """A bare four-digit number that reads as a year (1900-2100), not as a count."""
        return (self.kind == NUMBER and self.resolution == 1.0 and self.value is not None
                and self.value.is_integer() and 1900 <= self.value <= 2100
                and not self.counts and re.fullmatch(r"\d{4}", self.text) is not None)


_MONTH = (r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
          r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_ORD = r"(?:st|nd|rd|th)?"
_DATES = [  # (pattern, kind); the longest forms first, each span taken once
    (re.compile(rf"\b{_MONTH}\s+\d{{1,2}}{_ORD},?\s+\d{{4}}\b", re.I), DATE),
    (re.compile(rf"\b\d{{1,2}}{_ORD}\s+(?:of\s+)?{_MONTH},?\s+\d{{4}}\b", re.I), DATE),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?\b"), DATE),
    (re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b"), DATE),  # US order: month/day/year
    (re.compile(rf"\b{_MONTH},?\s+\d{{4}}\b", re.I), MONTH),
    (re.compile(r"\bQ([1-4])\s*(?:of\s+)?(\d{4})\b|\b(\d{4})\s*Q([1-4])\b", re.I), QUARTER),
]

_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "mn": 1e6, "mln": 1e6, "mil": 1e6,
          "million": 1e6, "b": 1e9, "bn": 1e9, "bln": 1e9, "billion": 1e9, "t": 1e12,
          "tn": 1e12, "trillion": 1e12}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-−–](?=[$€£]?\d))?(?P<cur>[$€£]|usd\s?)?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<suf>%|percent\b|per\s?cent\b|x\b|×|"
    r"(?:thousand|million|billion|trillion|mln|mil|mm|mn|bln|bn|tn|k|m|b|t)\b))?"
    r"(?P<ord>st\b|nd\b|rd\b|th\b)?",
    re.IGNORECASE,
)
_CURRENCY_AFTER = re.compile(r"\s?(?:usd|dollars?)\b", re.I)


def _date_figure(m: re.Match, kind: str) -> Figure | None:
    s = m.group()
    try:
        if kind == QUARTER:
            q, y = (int(m[1]), int(m[2])) if m[1] else (int(m[4]), int(m[3]))
            first = date(y, 3 * q - 2, 1)
            last = _month_end(date(y, 3 * q, 1))
        else:
            d = dateparser.parse(s, default=datetime(2000, 1, 1)).date()
            first, last = (d, d) if kind == DATE else (d.replace(day=1), _month_end(d))
    except (ValueError, OverflowError):
        return None
    return Figure(s, m.start(), m.end(), kind, first=first, last=last)


def _month_end(d: date) -> date:
    nxt = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
    return nxt - timedelta(days=1)


def _number_figure(m: re.Match, text: str) -> Figure | None:
    if m["ord"]:  # "3rd", "the 2nd fund": a rank, not a figure
        return None
    digits = m["num"].replace(",", "")
    suf = re.sub(r"\s", "", (m["suf"] or "").lower())
    scale = _SCALE.get(suf, 1.0)
    decimals = len(digits.split(".")[1]) if "." in digits else 0
    if "." not in digits and scale == 1.0 and not suf and len(digits) > 4:
        # "236,500,000": trailing zeros of a large whole number are a rounding, not digits
        zeros = len(digits) - len(digits.rstrip("0"))
        resolution = 10.0 ** min(zeros, len(digits) - 2)
    else:
        resolution = scale * 10.0 ** -decimals
    value = float(digits) * scale
    if m["neg"]:
        value = -value
    if suf in ("%", "percent"):
        kind = PERCENT
    elif suf in ("x", "×"):
        kind = MULTIPLE
    elif m["cur"] or _CURRENCY_AFTER.match(text, m.end()):
        kind = MONEY
    elif scale != 1.0:
        kind = MONEY  # "1.2 mln", "850K": scaled amounts are money in this domain
    else:
        kind = NUMBER
    nxt = _NEXT_WORD.match(text, m.end())
    counts = bool(nxt and nxt[1].islower() and nxt[1] not in _AFTER_A_YEAR)
    before = text[max(0, m.start() - 24):m.start()]
    hedge = next((h for h, pattern in _HEDGES if pattern.search(before)), "")
    return Figure(m.group().strip(), m.start(), m.end(), kind, value, resolution,
                  counts=counts, hedge=hedge)


_HEDGES = [(h, re.compile(rf"(?:{words})\s*$", re.IGNORECASE)) for h, words in (
    ("about", r"\babout|\baround|\broughly|\bapproximately|\bapprox\.?|\bnearly|\balmost"
              r"|\bclose to|\bsome|~|≈"),
    ("over", r"\bover|\bmore than|\babove|\bat least|\bexceeding|\bin excess of"),
    ("under", r"\bunder|\bless than|\bbelow|\bat most"))]
HEDGE_SLACK = 0.05  # "about $240M" may stand for anything within 5 %
BOUND_SLACK = 0.25  # "over $200M" for up to $250M; beyond that it says too little


_NEXT_WORD = re.compile(r" ([^\W\d_]+)")
# Words that may follow a year ("in 2025 we", "2024 was"); any other lower-case word after a
# number says what it counts ("2025 exits", "2026 each").
_AFTER_A_YEAR = frozenset("""
we our us i you it its they their there the a an this that these those and or but so then
was were is are has have had be been will would did do does for from of in on at by to
through until till vs versus compared when while with as after before since alone only
onwards onward ytd q1 q2 q3 q4 h1 h2 vintage figures numbers values data
""".split())


class _Spans:
    """Character spans already read, as a mask: O(1) to ask whether a span is free."""

    def __init__(self, n: int, spans: Iterable[tuple[int, int]] = ()) -> None:
        self.mask = bytearray(n + 1)
        for s, e in spans:
            self.add(s, e)

    def add(self, s: int, e: int) -> None:
        self.mask[s:e] = b"\x01" * (e - s)

    def free(self, s: int, e: int) -> bool:
        return not any(self.mask[s:e])

    def __contains__(self, pos: int) -> bool:
        return bool(self.mask[pos])


def figures(text: str, skip: Sequence[tuple[int, int]] = ()) -> list[Figure]:
    """Every figure in `text`, in order, outside the `skip` spans (names already read)."""
    taken = _Spans(len(text), skip)
    out: list[Figure] = []
    free = taken.free

    for pattern, kind in _DATES:
        for m in pattern.finditer(text):
            if free(m.start(), m.end()):
                fig = _date_figure(m, kind)
                if fig:
                    out.append(fig)
                    taken.add(m.start(), m.end())
    for m in _NUMBER.finditer(text):
        if free(m.start(), m.end()):
            fig = _number_figure(m, text)
            if fig:
                out.append(fig)
    return sorted(out, key=lambda f: f.start)


# ------------------------------------------------------------------ matching cells

def number(v: Any) -> float | None:
    """A cell as a float when it is a number (not a bool), else None."""
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def as_date(v: Any) -> date | None:
    """A cell as a date: DATE/TIMESTAMP values and ISO strings."""
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    if isinstance(v, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}(?:[T ].*)?", v.strip()):
        try:
            return date.fromisoformat(v.strip()[:10])
        except ValueError:
            return None
    return None


def _shown(f: float) -> float:
    """The value as the result table shows it (4 significant digits under 1,000)."""
    return f if abs(f) >= 1000 else float(f"{f:.4g}")


def number_matches(fig: Figure, v: float) -> bool:
    """Whether a written number is `v` in a usual rounding: within half its last digit.

    Also against `v` as the result table shows it, since that is what the writer read
    (3.6254 is shown as 3.625 and may be written "3.62x"). A percentage matches both the
    value as written (12.5) and as a fraction (0.125).
    """
    ranges = fig.ranges
    shown = _shown(v)
    return any(lo <= v <= hi or lo <= shown <= hi for lo, hi in ranges)


def date_matches(fig: Figure, d: date) -> bool:
    """A date figure equal to `d`; a month or quarter figure that contains it."""
    return fig.first is not None and fig.last is not None and fig.first <= d <= fig.last


def figure_matches(fig: Figure, cell: Any) -> bool:
    """Whether a figure states a cell: a number in any usual format and rounding, a date
    in any usual spelling, a year or month that contains a date cell."""
    if cell is None:
        return False
    d = as_date(cell)
    if d is not None:
        if fig.first is not None:
            return date_matches(fig, d)
        return fig.is_year and int(fig.value or 0) == d.year
    if fig.first is not None:
        return False
    n = number(cell)
    if n is None and isinstance(cell, str):
        try:
            n = float(cell.replace(",", "").strip())
        except ValueError:
            return False
    return n is not None and number_matches(fig, n)


# -------------------------------------------------------------------------- names

@functools.cache
def _plural() -> Any:
    """inflect's engine, imported on first use: the import costs about 2 s of CPU (typeguard
    instruments the module), which a command that never checks a name should not pay."""
    import inflect

    return inflect.engine()


@functools.lru_cache(maxsize=4096)
def name_forms(name: str) -> tuple[tuple[str, ...], ...]:
    """The word sequences that spell a name: as written, without its legal suffix
    ("Acme B.V." -> "acme", "Kite Pte. Ltd." -> "kite"), and with its last word in the
    plural ("acquisition" -> "acquisitions")."""
    ws = [w for w, _, _ in tokenize(name)]
    if not ws:
        return ()
    forms = {tuple(ws), tuple(strip_legal(ws))}
    for f in list(forms):
        last = f[-1]
        if last.isalpha():
            forms.add(f[:-1] + (last + "s",))
            plural = _plural().plural_noun(last)
            if plural:
                forms.add(f[:-1] + (str(plural).lower(),))
    return tuple(sorted(forms, key=len, reverse=True))


# A capitalised word right before or after a name makes it part of a longer name ("Growth
# Fund I" is not "Fund I"), unless it is a function word that starts a sentence ("Our").
_FUNCTION_WORDS = frozenset("""
a an the our we us it its in on at by for from of to since and or but as after before during
this that these those their they there here then so both each every all total until with
over under about across per last next first when while what which who how is are was were
""".split())


@dataclass(frozen=True)
class Mention:
    """A known name found in prose, with its span."""

    name: str
    start: int
    end: int


def _capitalised_neighbour(text: str, tokens: Sequence[tuple[str, int, int]], i: int,
                           j: int) -> bool:
    """Whether tokens[i:j] is glued by a single space to a capitalised word."""
    for k, gap in ((i - 1, (tokens[i - 1][2], tokens[i][1]) if i > 0 else None),
                   (j, (tokens[j - 1][2], tokens[j][1]) if j < len(tokens) else None)):
        if gap is None or text[gap[0]:gap[1]] != " ":
            continue
        if k == j and text[tokens[j - 1][1]:tokens[j - 1][2]][-2:] in ("'s", "’s"):
            continue  # a possessive ends the name: "Fund II's MOIC"
        word, s, _ = tokens[k]
        if text[s].isupper() and word not in _FUNCTION_WORDS and not word.isdigit():
            return True
    return False


def find_names(text: str, names: Iterable[str], tokens: Sequence | None = None
               ) -> list[Mention]:
    """Where each known name is mentioned: whole words, case- and accent-insensitive, with
    or without its legal suffix, plural allowed; longer names first, each word used once;
    a mention glued to another capitalised word is part of a longer name and not counted."""
    tokens = _tokens(text) if tokens is None else tokens
    words = [w for w, _, _ in tokens]
    at: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        at.setdefault(w, []).append(i)
    candidates = []
    for name in {n for n in names if n and n.strip()}:
        for form in name_forms(name):
            n = len(form)
            for i in at.get(form[0], ()):
                if tuple(words[i:i + n]) == form:
                    candidates.append((n, i, name))
    used = [False] * len(words)
    out = []
    for n, i, name in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if any(used[i:i + n]):
            continue
        for k in range(i, i + n):
            used[k] = True
        if _capitalised_neighbour(text, tokens, i, i + n):
            continue
        end = tokens[i + n - 1][2]
        if name.endswith(".") and text[end:end + 1] == "." and n == len(tokenize(name)):
            end += 1  # "Databricks, Inc." keeps its dot: it ends no sentence
        out.append(Mention(name, tokens[i][1], end))
    return sorted(out, key=lambda m: m.start)


# ------------------------------------------------------------------------ clauses

# Clause breaks: sentence ends, semicolons, commas and "and"/"while"/"whereas" between
# clauses, bullets and line breaks. A figure belongs with the names in its own clause.
_BREAK = re.compile(r"[.!?](?=\s|$)|;|,(?=\s)|\n|\s(?:and|while|whereas|but|vs\.?|versus)\s"
                    r"|\s[-–—•]\s")
_GLUE = re.compile(r"\s*[:(,]?\s*")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")


@dataclass
class Reading:
    """What `read` found in one text."""

    text: str
    figures: list[Figure]
    names: list[Mention]
    breaks: list[int] = field(default_factory=list)  # clause boundaries, sorted
    sentence_ends: list[int] = field(default_factory=list)
    _by_clause: dict[int, set[str]] | None = field(default=None, repr=False)

    def clause(self, pos: int) -> int:
        """The index of the clause holding character `pos`."""
        return bisect.bisect_right(self.breaks, pos)

    def names_near(self, fig: Figure) -> set[str]:
        """The known names mentioned in the figure's clause."""
        if self._by_clause is None:
            self._by_clause = {}
            for m in self.names:
                self._by_clause.setdefault(self.clause(m.start), set()).add(m.name)
        return self._by_clause.get(self.clause(fig.start), set())

    def names_in_sentence(self, fig: Figure) -> set[str]:
        """The known names mentioned in the figure's sentence."""
        s = bisect.bisect_right(self.sentence_ends, fig.start)
        return {m.name for m in self.names
                if bisect.bisect_right(self.sentence_ends, m.start) == s}

    def after_name(self, fig: Figure) -> str | None:
        """The name written right before the figure ("Fintech 12", "Fund I: 3"), if any."""
        k = bisect.bisect_right([m.end for m in self.names], fig.start) - 1
        if k >= 0 and _GLUE.fullmatch(self.text, self.names[k].end, fig.start):
            return self.names[k].name
        return None


def read(text: str, names: Iterable[str] = ()) -> Reading:
    """Figures, mentions of the known `names`, and clause boundaries of `text`."""
    text = text or ""
    tokens = _tokens(text)
    mentions = find_names(text, names, tokens)
    spans = [(m.start, m.end) for m in mentions]
    figs = figures(text, spans)
    blocked = _Spans(len(text), spans + [(f.start, f.end) for f in figs])  # "Inc.", "3.5"

    def free(pattern: re.Pattern) -> list[int]:
        return [m.start() for m in pattern.finditer(text) if m.start() not in blocked]

    return Reading(text, figs, mentions, free(_BREAK), free(_SENTENCE_END))


# ------------------------------------------------------------------------- recall

def is_name(value: Any) -> bool:
    """A text value that is neither a number nor a date: a name or label."""
    return isinstance(value, str) and as_date(value) is None and _plain(value) is None


def _plain(s: str) -> float | None:
    try:
        return float(s.replace(",", "").strip())
    except ValueError:
        return None


def states(value: Any, text: str | Reading, names: Iterable[str] = ()) -> bool:
    """Whether the prose states `value`: a number or date as a matching figure, a name as
    a whole mention (not part of a longer name such as "Growth Fund I" for "Fund I").
    `names` are other known names, read first so a shorter one is not found inside them."""
    reading = text if isinstance(text, Reading) else None
    if is_name(value):
        if reading is None:
            reading = read(str(text), [value, *names])
        elif value not in {m.name for m in reading.names}:
            reading = read(reading.text, [value, *names])
        return any(m.name == value for m in reading.names)
    if reading is None:
        reading = read(str(text), names)
    return any(figure_matches(f, value) for f in reading.figures)


@dataclass
class Recall:
    """Answer value recall: `score` over the values the question did not already give."""

    score: float | None
    found: list[Any]
    missed: list[Any]
    given: list[Any]  # stated in the question itself: not credited, not counted


def recall(values: Sequence[Any], text: str, question: str = "",
           columns: Sequence[str] = (), rows: Sequence[Sequence[Any]] = ()) -> Recall:
    """How many important `values` the answer states.

    A value the question already states is left out (an answer that echoes the question
    earns nothing for it). With the result `rows`, the text values of the result are the
    known names, and a figure counts only in a clause that names no row label or names one
    of the row it comes from.
    """
    labels = sorted({str(c) for r in rows for c in r if is_name(c)}
                    | {str(v) for v in values if is_name(v)})
    answer = read(text or "", labels)
    asked = read(question or "", labels)
    found, missed, given = [], [], []
    for v in values:
        if question and states(v, asked, labels):
            given.append(v)
        elif _stated_in_its_row(v, answer, rows, labels):
            found.append(v)
        else:
            missed.append(v)
    counted = len(found) + len(missed)
    return Recall(len(found) / counted if counted else None, found, missed, given)


def row_labels(row: Sequence[Any]) -> set[str]:
    """The text cells of a row that name it."""
    return {str(c) for c in row if is_name(c)}


def _stated_in_its_row(value: Any, reading: Reading, rows: Sequence[Sequence[Any]],
                       labels: Sequence[str]) -> bool:
    if is_name(value) or not rows:
        return states(value, reading, labels)
    own = [row_labels(r) for r in rows if any(_same(c, value) for c in r)]
    all_labels = set().union(*(row_labels(r) for r in rows))
    for fig in reading.figures:
        if not figure_matches(fig, value):
            continue
        near = reading.names_near(fig) & all_labels
        if not near or not own or any(near & o for o in own):
            return True
    return False


def _same(cell: Any, value: Any) -> bool:
    a, b = number(cell), number(value)
    if a is not None and b is not None:
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    da, db = as_date(cell), as_date(value)
    if da is not None or db is not None:
        return da == db
    return str(cell).strip().casefold() == str(value).strip().casefold()
