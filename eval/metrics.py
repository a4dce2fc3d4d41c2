"""Scoring one prediction against one reference: SQL recall, value recall, ROUGE, execution.

Table and column recall use the guard's sqlglot analysis (`states.guard.analyze`), so the
metric sees aliases, CTEs, subqueries, `SELECT *` and UNION exactly as the guard does.
Precision is reported beside recall, so `SELECT *` over every table cannot pass for reading
the right things. A filter on a resolved key (`company_id = 273`) counts as reading the table
the key belongs to (and the name column the reference filtered on).

Numbers in results are compared as money is: after rounding to the coarser of the two
precisions (a cent when both carry cents), never with a relative tolerance that could hide a
whole row of a large total. NULL is its own value.
"""

from __future__ import annotations

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

from states import values as V
from states.guard import DIALECT, analyze
from states.ports import Catalog, QueryError
from states.values import number as _number

# Decimal places of a float beyond this are noise of the float itself (sums in another order).
MAX_PLACES = 9

Value = str | int | float  # an important value as stored in the cases (dates as ISO strings)

# ------------------------------------------------------------------ SQL recall


@dataclass
class SqlRecall:
    table_recall: float | None
    column_recall: float | None
    missing_tables: list[str]
    missing_columns: list[str]
    table_precision: float | None = None
    column_precision: float | None = None


def _recall(found: set, wanted: set) -> float:
    return 1.0 if not wanted else len(found & wanted) / len(wanted)


def _precision(found: set, wanted: set) -> float | None:
    return None if not found else len(found & wanted) / len(found)


_REFERENCES = re.compile(r"references\s+(\w+)\.(\w+)", re.IGNORECASE)


def _foreign_keys(catalog: Catalog) -> dict[str, tuple[str, str]]:
    """Column name -> (table, key) it references, from the catalogue's column docs."""
    out: dict[str, tuple[str, str]] = {}
    for tdoc in catalog.tables.values():
        for cname, cdoc in tdoc.columns.items():
            m = _REFERENCES.search(cdoc.description or "")
            if m and m[1].lower() in catalog.tables:
                out.setdefault(cname.lower(), (m[1].lower(), m[2].lower()))
    return out


def _literal_filters(sql: str, dialect: str = DIALECT) -> list[tuple[str, bool]]:
    """(column name, compared with a number) for every `col = literal` / `col IN (...)`."""
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return []
    out = []
    for node in tree.find_all(exp.EQ, exp.In):
        if isinstance(node, exp.In):
            col, lits = node.this, node.expressions
        else:
            col, other = node.this, node.expression
            if isinstance(other, exp.Column) and isinstance(col, exp.Literal):
                col, other = other, col
            lits = [other]
        if isinstance(col, exp.Column) and lits and all(isinstance(x, exp.Literal)
                                                        for x in lits):
            out.append((col.name.lower(), all(not x.is_string for x in lits)))
    return out


def _resolved_reads(predicted: str, reference: str, catalog: Catalog
                    ) -> tuple[set[str], set[str]]:
    """Tables and columns a prediction reads through a resolved key: `company_id = 273`
    reads companies (its key, and the name column the reference filtered on)."""
    fks = _foreign_keys(catalog)
    named = {c for c, numeric in _literal_filters(reference) if not numeric}
    tables: set[str] = set()
    cols: set[str] = set()
    for c, numeric in _literal_filters(predicted, catalog.dialect):  # written for the engine
        if numeric and c in fks:
            table, key = fks[c]
            tables.add(table)
            cols.add(f"{table}.{key}")
            cols |= {f"{table}.{n}" for n in named if n in catalog.tables[table].columns}
    return tables, cols


def sql_recall(predicted: str | None, reference: str | None, catalog: Catalog) -> SqlRecall:
    """Table and column recall (and precision) of `predicted` against `reference` (None when
    no reference).

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
        return SqlRecall(0.0, 0.0 if want_cols else None, sorted(ref.tables), sorted(want_cols),
                         0.0, 0.0 if want_cols else None)
    got_cols = {f"{t}.{c}" for t, c in pred.columns}
    extra_tables, extra_cols = _resolved_reads(predicted or "", reference, catalog)
    got_tables = pred.tables | (extra_tables & ref.tables)
    got_cols |= extra_cols & want_cols
    return SqlRecall(
        table_recall=_recall(got_tables, ref.tables),
        column_recall=_recall(got_cols, want_cols) if want_cols else None,
        missing_tables=sorted(ref.tables - got_tables),
        missing_columns=sorted(want_cols - got_cols),
        table_precision=_precision(got_tables, ref.tables),
        column_precision=_precision(got_cols, want_cols) if want_cols else None,
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
    idx = important_columns(columns, value_columns)
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


def places(v: Any) -> int:
    """Decimal places a number carries: 2 for DECIMAL(18,2) money, what a float's shortest
    repr writes (capped, so float noise does not count as precision), 0 for integers."""
    if isinstance(v, Decimal):
        exp_ = v.as_tuple().exponent
        return min(MAX_PLACES, max(0, -exp_)) if isinstance(exp_, int) else 0
    if isinstance(v, float):
        text = repr(v)
        if "e" in text or "E" in text:
            mant, _, e = text.lower().partition("e")
            frac = mant.split(".")[1] if "." in mant else ""
            return min(MAX_PLACES, max(0, len(frac.rstrip("0")) - int(e)))
        frac = text.split(".")[1] if "." in text else ""
        return min(MAX_PLACES, len(frac.rstrip("0")))
    return 0


def same_number(a: float, b: float, places_a: int = MAX_PLACES,
                places_b: int = MAX_PLACES) -> bool:
    """Equal after rounding to the coarser of the two precisions: ROUND(x, 2) matches x, a
    total missing a $177K company (or $1.1M of $11.75B) does not."""
    p = min(places_a, places_b)
    return abs(a - b) <= 0.5 * 10.0 ** -p * (1 + 1e-9) + 1e-12 * max(abs(a), abs(b))


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
                if c is not None and same_number(c, num, _cell_places(cell),
                                                 places(value)):
                    return True
            else:
                c_text = _iso(cell) or str(cell)
                if c_text.strip().casefold() == want:
                    return True
    return False


def _cell_places(cell: Any) -> int:
    if isinstance(cell, str):
        return len(cell.strip().split(".")[1]) if "." in cell else 0
    return places(cell)


def _plain_number(s: str) -> float | None:
    try:
        return float(s.replace(",", "").strip())
    except ValueError:
        return None


# ------------------------------------------------------------------ values in prose


def text_has(value: Value, text: str) -> bool:
    """Whether prose states `value`, read by the one value matcher (`states.values`): a
    number in any usual format and rounding, a date in any usual spelling, a name as a whole
    mention with or without its legal suffix."""
    return bool(text) and V.states(value, text)


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
    reading = V.read(text, [str(v) for v in values if V.is_name(v)]) if text else None
    missed = []
    for v in values:
        hit = bool(rows) and cell_has(v, columns or [], rows)
        hit = hit or (reading is not None and V.states(v, reading))
        if not hit:
            missed.append(v)
    return 1 - len(missed) / len(values), missed


# ------------------------------------------------------------ answer correctness

_CHECKED_KINDS = (V.MONEY, V.NUMBER, V.PERCENT, V.MULTIPLE, V.DATE)
_LIST_MARKER = re.compile(r"[ \t]*(?:[-*•][ \t]*)?#?\d{1,2}[.)][ \t]")


@dataclass
class AnswerCheck:
    """Whether the prose a partner reads is right: it states the important values and no
    figure in it goes unbacked by the reference result."""

    value_recall: float | None  # over the values the question did not already give
    missed: list[Value]
    unbacked: list[str]  # figures no cell, row count, difference or ratio of the data gives

    @property
    def ok(self) -> bool:
        return (self.value_recall is None or self.value_recall >= 1.0) and not self.unbacked


def _list_marker(text: str, start: int) -> bool:
    """Whether the figure at `start` numbers a list item ("1. ", "2) ", "- #3 ")."""
    while start < len(text) and text[start].isspace():
        start += 1
    line = text.rfind("\n", 0, start) + 1
    m = _LIST_MARKER.match(text, line)
    return bool(m) and line <= start < m.end()


def _derived(nums: list[float]) -> list[float]:
    """Figures an analyst may state from a few numbers: differences, ratios (as fractions
    and percentage changes) and the column total."""
    out = []
    small = nums[:12]
    for a, b in itertools.permutations(small, 2):
        out.append(a - b)
        if b:
            out += [a / b, a / b - 1]
    if len(nums) > 1:
        out.append(sum(nums))
    return out


def sql_literals(sql: str) -> list[Any]:
    """Numbers and ISO dates a query spells out (its filters): figures an answer may repeat."""
    try:
        tree = sqlglot.parse_one(sql, read=DIALECT)
    except sqlglot.errors.SqlglotError:
        return []
    out: list[Any] = []
    for lit in tree.find_all(exp.Literal):
        if lit.is_string:
            if V.as_date(lit.this) is not None:
                out.append(lit.this)
        else:
            n = _plain_number(lit.this)
            if n is not None:
                out.append(n)
    return out


def check_answer(answer: str | None, question: str, values: Sequence[Value],
                 columns: Sequence[str], rows: Sequence[Sequence[Any]],
                 known: Sequence[Any] = ()) -> AnswerCheck:
    """Score an answer against the reference result with the one value matcher
    (`states.values`). `known` are further facts it may state (the data date, today)."""
    text = answer or ""
    rec = V.recall(list(values), text, question, columns, rows)
    cells = [c for r in rows for c in r if c is not None]
    nums = [n for n in (V.number(c) for c in cells) if n is not None]
    backing = [*cells, *known, len(rows), *_derived(nums)]
    asked = V.read(question or "").figures
    labels = sorted({str(c) for c in cells if V.is_name(c)})
    row_labels = [V.row_labels(r) for r in rows]
    reading = V.read(text, labels)
    unbacked = []
    for fig in reading.figures:
        if fig.kind not in _CHECKED_KINDS or fig.is_year:
            continue  # years, months and quarters name periods, not figures of the data
        if _list_marker(text, fig.start):
            continue  # "1. Databricks": the number of a list item, not a figure
        near = reading.names_near(fig)
        own = [r for r, lab in zip(rows, row_labels, strict=True) if near & lab]
        if own:  # "AI/ML 38": the figure must be AI/ML's, not another sector's
            if any(V.figure_matches(fig, c) for r in own for c in r):
                continue
        elif any(V.figure_matches(fig, c) for c in backing):
            continue
        if any(f.text == fig.text or (f.value is not None and f.value == fig.value)
               for f in asked):
            continue  # the question's own figure, repeated
        unbacked.append(fig.text)
    return AnswerCheck(rec.score, list(rec.missed), unbacked)


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


@dataclass(frozen=True)
class Num:
    """A number of a result, with the decimal places it was written to."""

    value: float
    places: int


def _norm(v: Any) -> Any:
    n = _number(v)
    if n is not None:
        return Num(n, places(v))
    if v is None:
        return None
    iso = _iso(v)
    if iso is not None:
        return iso
    if isinstance(v, bool):
        return Num(float(v), 0)
    return str(v).strip()


def _cell_eq(a: Any, b: Any) -> bool:
    if isinstance(a, Num) and isinstance(b, Num):
        return same_number(a.value, b.value, a.places, b.places)
    if a is None or b is None:
        return a is b  # NULL is its own value: never the string 'None', never 0
    return a == b


def _row_eq(a: Sequence[Any], b: Sequence[Any]) -> bool:
    return all(_cell_eq(x, y) for x, y in zip(a, b, strict=False))


def _key(row: Sequence[Any]) -> tuple:
    return tuple((0, round(c.value, 6), "") if isinstance(c, Num)
                 else (2, 0.0, "") if c is None else (1, 0.0, str(c)) for c in row)


def _bag_equal(pred: list[tuple], ref: list[tuple]) -> bool:
    """Rows equal as multisets, numbers compared as money."""
    if len(pred) != len(ref):
        return False
    pool: dict[tuple, list[tuple]] = defaultdict(list)
    for r in pred:
        pool[_key(r)].append(r)
    left_ref = []
    for r in ref:
        bucket = pool.get(_key(r))
        if bucket and _row_eq(bucket[-1], r):
            bucket.pop()
        else:
            left_ref.append(r)
    left_pred = [r for bucket in pool.values() for r in bucket]
    for r in left_ref:  # the few rows exact keys missed: match within precision
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


def is_key(column: str) -> bool:
    c = column.lower()
    return c == "id" or c.endswith("_id")


def important_columns(columns: Sequence[str], value_columns: Sequence[str] | None = None
                      ) -> list[int]:
    """Indexes of the columns that hold the answer: `value_columns` when given, else every
    column but keys (all of them when every column is a key)."""
    if value_columns:
        keep = {c.lower() for c in value_columns}
        idx = [i for i, c in enumerate(columns) if c.lower() in keep]
        if idx:
            return idx
    idx = [i for i, c in enumerate(columns) if not is_key(c)]
    return idx or list(range(len(columns)))


def execution_match(pred_columns: Sequence[str], pred_rows: Sequence[Sequence[Any]],
                    ref_columns: Sequence[str], ref_rows: Sequence[Sequence[Any]],
                    ordered: bool = False, allow_extra_columns: bool = True,
                    value_columns: Sequence[str] | None = None) -> bool:
    """Whether the predicted result holds the reference's answer.

    The reference's important columns (`important_columns`) must each be found among the
    predicted columns, matched by content, not name or position; key and label columns
    may be missing. Rows are compared as bags, or in order when `ordered` (the reference has
    ORDER BY). Extra predicted columns are allowed, but not a rival answer: when the answer
    is one numeric column, another numeric column that equals no reference column means
    the prediction offers two candidates (72 rows and 22 companies) and does not match.
    """
    imp = important_columns(ref_columns, value_columns)
    m, n = len(imp), len(pred_columns)
    if n < m or (not allow_extra_columns and n != len(ref_columns)):
        return False
    ref_all = [tuple(_norm(v) for v in r) for r in ref_rows]
    pred = [tuple(_norm(v) for v in r) for r in pred_rows]
    if len(ref_all) != len(pred):
        return False
    if m == 0:
        return True
    ref = [tuple(r[j] for j in imp) for r in ref_all]
    ref_cols = [[(r[j],) for r in ref] for j in range(m)]
    pred_cols = [[(r[k],) for r in pred] for k in range(n)]
    candidates = []
    for j in range(m):
        same = [k for k in range(n) if _bag_equal(pred_cols[k], ref_cols[j])]
        if not same:
            return False
        # try same-named columns first: they are the likely mapping
        same.sort(key=lambda k: pred_columns[k].lower() != ref_columns[imp[j]].lower())
        candidates.append(same)
    if m == 1 and _numeric(ref_cols[0]) and _rival(pred_columns, pred_cols, ref_all):
        return False
    compare = _list_equal if ordered else _bag_equal
    for mapping in itertools.islice(
            (p for p in itertools.product(*candidates) if len(set(p)) == m),
            MAX_COLUMN_MAPPINGS):
        projected = [tuple(r[k] for k in mapping) for r in pred]
        if compare(projected, ref):
            return True
    return False


def _numeric(column: list[tuple]) -> bool:
    cells = [c[0] for c in column if c[0] is not None]
    return bool(cells) and all(isinstance(c, Num) for c in cells)


def _rival(pred_columns: Sequence[str], pred_cols: list[list[tuple]],
           ref_all: list[tuple]) -> bool:
    """A numeric predicted column (not a key) equal to no reference column: a second
    candidate answer beside the right one."""
    width = len(ref_all[0]) if ref_all else 0
    ref_cols = [[(r[j],) for r in ref_all] for j in range(width)]
    for k, col in enumerate(pred_cols):
        if is_key(pred_columns[k]) or not _numeric(col):
            continue
        if not any(_bag_equal(col, rc) for rc in ref_cols):
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
