"""Scoring one prediction against one reference: SQL recall, value recall, ROUGE, execution.

Table and column recall use the guard's sqlglot analysis (`states.guard.analyze`), so the
metric sees aliases, CTEs, subqueries, `SELECT *` and UNION exactly as the guard does.
Recall, not precision: a prediction that touches extra tables or columns is not penalised
here (execution accuracy catches wrong results).
"""

from __future__ import annotations

import calendar
import itertools
import math
import re
import threading
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import sqlglot
from sqlglot import exp

from states.guard import DIALECT, analyze
from states.ports import Catalog, QueryError

# Data cells are compared tightly: a prediction may ROUND(x, 2) or sum in another order.
CELL_REL_TOL = 1e-4
CELL_ABS_TOL = 0.005
# Numbers in prose match when the value rounds to what is written ("$12.3M" for 12,34x,xxx),
# with this much relative slack on top for writers who truncate instead of rounding.
TEXT_REL_TOL = 1e-3

Value = str | int | float  # an important value as stored in the cases (dates as ISO strings)

# ------------------------------------------------------------------ SQL recall


@dataclass
class SqlRecall:
    table_recall: float | None
    column_recall: float | None
    missing_tables: list[str]
    missing_columns: list[str]


def _recall(found: set, wanted: set) -> float:
    return 1.0 if not wanted else len(found & wanted) / len(wanted)


def sql_recall(predicted: str | None, reference: str | None, catalog: Catalog) -> SqlRecall:
    """Table and column recall of `predicted` against `reference` (None when no reference).

    An empty or unparsable prediction recalls nothing. Column recall is None (undefined)
    when the reference names no column (``SELECT count(*) FROM t``): a free 1.0 would
    reward counting the wrong table.
    """
    if not reference:
        return SqlRecall(None, None, [], [])
    ref = analyze(reference, catalog)  # a reference that does not parse is a case bug: raise
    want_cols = {f"{t}.{c}" for t, c in ref.columns}
    pred = None
    if predicted and predicted.strip():
        try:
            pred = analyze(predicted, catalog, catalog.dialect)  # written for the engine
        except QueryError:
            pred = None
    if pred is None:
        return SqlRecall(0.0, 0.0 if want_cols else None, sorted(ref.tables), sorted(want_cols))
    got_cols = {f"{t}.{c}" for t, c in pred.columns}
    return SqlRecall(
        table_recall=_recall(pred.tables, ref.tables),
        column_recall=_recall(got_cols, want_cols) if want_cols else None,
        missing_tables=sorted(ref.tables - pred.tables),
        missing_columns=sorted(want_cols - got_cols),
    )


def is_ordered(sql: str) -> bool:
    """Whether the outermost query has ORDER BY (then row order is part of the answer)."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.SqlglotError:
        return False
    while isinstance(tree, exp.Subquery):
        tree = tree.this
    return bool(tree is not None and tree.args.get("order"))


# ------------------------------------------------------------------- values


def _number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float, Decimal)):
        f = float(v)
        return f if math.isfinite(f) else None
    return None


def _iso(v: Any) -> str | None:
    if isinstance(v, datetime):
        return v.date().isoformat() if v.time() == datetime.min.time() else v.isoformat()
    if isinstance(v, date):
        return v.isoformat()
    return None


def to_value(v: Any) -> Value | None:
    """A result cell as a JSON value for the cases file: numbers, strings, ISO dates."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, Decimal):
        return int(v) if v == v.to_integral_value() else float(v)
    if isinstance(v, (int, float)):
        return v if math.isfinite(v) else None
    iso = _iso(v)
    if iso is not None:
        return iso
    s = str(v).strip()
    return s or None


def _sort_key(v: Any) -> tuple:
    n = _number(v)
    if n is not None:
        return (1, n, "")
    return (0, 0.0, "") if v is None else (2, 0.0, _iso(v) or str(v))


def canonical_rows(rows: Sequence[Sequence[Any]]) -> list[tuple]:
    """Rows in a fixed order, for results whose SQL leaves the order to the database."""
    return sorted((tuple(r) for r in rows), key=lambda r: tuple(_sort_key(v) for v in r))


def derive_values(columns: Sequence[str], rows: Sequence[Sequence[Any]],
                  value_columns: Sequence[str] | None = None, max_rows: int = 10,
                  ordered: bool = True) -> list[Value]:
    """The important values of a reference result: its cells, minus keys and NULLs.

    `value_columns` narrows it to some columns (case-insensitive); only the first
    `max_rows` rows count, so a long listing asks for its head, not every row. An
    unordered result is put in canonical order first, so its head does not drift.
    """
    if not ordered:
        rows = canonical_rows(rows)
    keep = {c.lower() for c in value_columns} if value_columns else None
    idx = [i for i, c in enumerate(columns)
           if (keep is None or c.lower() in keep)
           and not (keep is None and (c.lower() == "id" or c.lower().endswith("_id")))]
    out: list[Value] = []
    seen: set = set()
    for row in rows[:max_rows]:
        for i in idx:
            v = to_value(row[i])
            if v is None:
                continue
            key = v.casefold() if isinstance(v, str) else float(v)
            if key not in seen:
                seen.add(key)
                out.append(v)
    return out


def _close(a: float, b: float, rel: float = CELL_REL_TOL, abs_: float = CELL_ABS_TOL) -> bool:
    return math.isclose(a, b, rel_tol=rel, abs_tol=abs_)


_LEGAL = re.compile(
    r"[,\s]+(inc|incorporated|llc|l\.l\.c|ltd|limited|corp|corporation|co|gmbh|ag|sa|sas|"
    r"se|plc|bv|nv|ab|oy|as|pty|kk|srl|spa)\.?$", re.IGNORECASE)


def _fold(text: str) -> str:
    """Lower-case words separated by single spaces; punctuation dropped."""
    return " ".join(re.findall(r"[\w]+", text.casefold()))


def _core_name(s: str) -> str:
    """A name without its legal suffix: 'Databricks, Inc.' -> 'databricks'."""
    prev = None
    while prev != s:
        prev, s = s, _LEGAL.sub("", s).strip()
    return _fold(s)


_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def _date_spellings(iso: str) -> list[str]:
    m = _ISO_DATE.match(iso)
    if not m:
        return []
    y, mo, d = int(m[1]), int(m[2]), int(m[3])
    if not 1 <= mo <= 12:
        return []
    full, abbr = calendar.month_name[mo], calendar.month_abbr[mo]
    return [_fold(s) for s in (f"{full} {d}, {y}", f"{abbr} {d}, {y}", f"{d} {full} {y}",
                                f"{d} {abbr} {y}")]


def cell_has(value: Value, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> bool:
    """Whether some cell of the result equals `value` (strings case-insensitively)."""
    num = _number(value)
    want = None if num is not None else str(value).strip().casefold()
    for row in rows:
        for cell in row:
            if cell is None:
                continue
            if num is not None:
                c = _number(cell)
                if c is None and isinstance(cell, str):
                    c = _plain_number(cell)
                if c is not None and _close(c, num):
                    return True
            else:
                c_text = _iso(cell) or str(cell)
                if c_text.strip().casefold() == want:
                    return True
    return False


def _plain_number(s: str) -> float | None:
    try:
        return float(s.replace(",", "").strip())
    except ValueError:
        return None


# -------------------------------------------------------------- numbers in prose


@dataclass(frozen=True)
class TextNumber:
    value: float
    resolution: float  # the unit of the last digit written: 0.1e6 for "$12.3M"
    percent: bool = False


_SCALE = {"k": 1e3, "thousand": 1e3, "m": 1e6, "mm": 1e6, "mn": 1e6, "million": 1e6,
          "b": 1e9, "bn": 1e9, "billion": 1e9, "t": 1e12, "tn": 1e12, "trillion": 1e12}
_NUMBER = re.compile(
    r"(?<![\w.])(?P<neg>[-−–](?=[$€£]?\d))?(?P<cur>[$€£])?\s?"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:\s?(?P<suf>%|percent\b|per cent\b|x\b|"
    r"(?:thousand|million|billion|trillion|mm|mn|bn|tn|k|m|b|t)\b))?",
    re.IGNORECASE,
)


def parse_numbers(text: str) -> list[TextNumber]:
    """Every number written in `text`, with its scale: "$1.2M", "1,200,000", "12.5%", "850K"."""
    out = []
    for m in _NUMBER.finditer(text or ""):
        digits = m["num"].replace(",", "")
        decimals = len(digits.split(".")[1]) if "." in digits else 0
        suf = (m["suf"] or "").lower()
        scale = _SCALE.get(suf, 1.0)
        value = float(digits) * scale
        if m["neg"]:  # "(5M)" is not negated: in prose, brackets are asides, not accounting
            value = -value
        out.append(TextNumber(value, scale * 10.0 ** -decimals,
                              percent=suf in ("%", "percent", "per cent")))
    return out


def _text_number_matches(n: TextNumber, v: float, rel: float = TEXT_REL_TOL) -> bool:
    candidates = [n.value, n.value / 100.0] if n.percent else [n.value]
    res = [n.resolution, n.resolution / 100.0] if n.percent else [n.resolution]
    return any(abs(c - v) <= max(r / 2 * (1 + 1e-9), abs(v) * rel)
               for c, r in zip(candidates, res, strict=True))


def text_has(value: Value, text: str, numbers: list[TextNumber] | None = None) -> bool:
    """Whether prose mentions `value`: a number in any usual format, a string or date
    case-insensitively (names also without their legal suffix)."""
    if not text:
        return False
    num = _number(value)
    if num is not None:
        numbers = parse_numbers(text) if numbers is None else numbers
        return any(_text_number_matches(n, num) for n in numbers)
    s = str(value).strip()
    folded = f" {_fold(text)} "
    options = {_fold(s), _core_name(s), *_date_spellings(s)}
    return any(o and f" {o} " in folded for o in options)


# ---------------------------------------------------------------- value recall


def value_recall(values: Sequence[Value], columns: Sequence[str] | None = None,
                 rows: Sequence[Sequence[Any]] | None = None,
                 text: str | None = None) -> tuple[float | None, list[Value]]:
    """(share of `values` found, the ones missed) in the result rows and/or the text.

    With both rows and text given, a value counts when found in either. None when the
    case has no important values.
    """
    if not values:
        return None, []
    numbers = parse_numbers(text) if text else []
    missed = []
    for v in values:
        hit = bool(rows) and cell_has(v, columns or [], rows)
        hit = hit or (bool(text) and text_has(v, text or "", numbers))
        if not hit:
            missed.append(v)
    return 1 - len(missed) / len(values), missed


# ----------------------------------------------------------------------- ROUGE

_scorer = None
_scorer_lock = threading.Lock()


def _rouge_scorer():
    global _scorer
    with _scorer_lock:
        if _scorer is None:
            # rouge-score needs nothing downloaded for these three (only rougeLsum uses punkt)
            from rouge_score import rouge_scorer

            _scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
        return _scorer


def rouge(predicted: str | None, reference: str | None) -> dict[str, float] | None:
    """ROUGE-1/2/L F1 of the answer against the reference; None without a reference."""
    if not reference:
        return None
    if not predicted or not predicted.strip():
        return {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    scores = _rouge_scorer().score(reference, predicted)
    return {k: scores[k].fmeasure for k in ("rouge1", "rouge2", "rougeL")}


# ---------------------------------------------------------- execution accuracy


def _norm(v: Any) -> Any:
    n = _number(v)
    if n is not None:
        return n
    if v is None:
        return None
    iso = _iso(v)
    if iso is not None:
        return iso
    if isinstance(v, bool):
        return float(v)
    return str(v).strip()


def _cell_eq(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return _close(a, b)
    return a == b


def _row_eq(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return all(_cell_eq(x, y) for x, y in zip(a, b, strict=False))


def _key(row: Sequence[Any]) -> tuple:
    return tuple((0, round(c, 6)) if isinstance(c, float) else (1, str(c)) for c in row)


def _bag_equal(pred: list[tuple], ref: list[tuple]) -> bool:
    """Rows equal as multisets, numbers within tolerance."""
    if len(pred) != len(ref):
        return False
    pool: dict[tuple, list[tuple]] = defaultdict(list)
    for r in pred:
        pool[_key(r)].append(r)
    left_ref = []
    for r in ref:
        bucket = pool.get(_key(r))
        if bucket:
            bucket.pop()
        else:
            left_ref.append(r)
    left_pred = [r for bucket in pool.values() for r in bucket]
    for r in left_ref:  # the few rows exact keys missed: match within tolerance
        for i, p in enumerate(left_pred):
            if _row_eq(p, r):
                del left_pred[i]
                break
        else:
            return False
    return True


def _list_equal(pred: list[tuple], ref: list[tuple]) -> bool:
    return len(pred) == len(ref) and all(_row_eq(p, r) for p, r in zip(pred, ref, strict=True))


MAX_COLUMN_MAPPINGS = 2000


def execution_match(pred_columns: Sequence[str], pred_rows: Sequence[Sequence[Any]],
                    ref_columns: Sequence[str], ref_rows: Sequence[Sequence[Any]],
                    ordered: bool = False, allow_extra_columns: bool = True) -> bool:
    """Whether the predicted result holds the reference result.

    Columns are matched by content, not name or position; rows are compared as bags, or
    in order when `ordered` (the reference has ORDER BY). Extra predicted columns are
    ignored unless `allow_extra_columns` is False.
    """
    m, n = len(ref_columns), len(pred_columns)
    if n < m or (not allow_extra_columns and n != m):
        return False
    ref = [tuple(_norm(v) for v in r) for r in ref_rows]
    pred = [tuple(_norm(v) for v in r) for r in pred_rows]
    if len(ref) != len(pred):
        return False
    if m == 0:
        return True
    ref_cols = [[(r[j],) for r in ref] for j in range(m)]
    pred_cols = [[(r[k],) for r in pred] for k in range(n)]
    candidates = []
    for j in range(m):
        same = [k for k in range(n) if _bag_equal(pred_cols[k], ref_cols[j])]
        if not same:
            return False
        # try same-named columns first: they are the likely mapping
        same.sort(key=lambda k: pred_columns[k].lower() != ref_columns[j].lower())
        candidates.append(same)
    compare = _list_equal if ordered else _bag_equal
    for mapping in itertools.islice(
            (p for p in itertools.product(*candidates) if len(set(p)) == m),
            MAX_COLUMN_MAPPINGS):
        projected = [tuple(r[k] for k in mapping) for r in pred]
        if compare(projected, ref):
            return True
    return False


# -------------------------------------------------------------- classification


def precision_recall(pairs: Iterable[tuple[bool, bool]]) -> tuple[float | None, float | None]:
    """(precision, recall) from (predicted, expected) flags; None where undefined."""
    tp = fp = fn = 0
    for predicted, expected in pairs:
        tp += predicted and expected
        fp += predicted and not expected
        fn += expected and not predicted
    precision = tp / (tp + fp) if tp + fp else None
    recall = tp / (tp + fn) if tp + fn else None
    return precision, recall


def mean(xs: Iterable[float | None]) -> float | None:
    vals = [x for x in xs if x is not None]
    return sum(vals) / len(vals) if vals else None
