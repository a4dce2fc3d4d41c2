"""Charts for answers: chosen from the result's shape by fixed rules, drawn with matplotlib (Agg).

The choice is deterministic and needs no LLM call: a time column with one to four numeric
series is a line; one category column (at most 20 distinct labels) with one numeric column is a
horizontal bar chart sorted by value; the same with a share of a total is a bar chart labelled in
percent (never a pie); one or two rows, or any other shape, gets no chart. The model may suggest
a kind (`hint`): it can switch a chart off or pick between kinds the rules allow, never more.

Drawing uses matplotlib's object API (no pyplot state, safe in worker threads), the Okabe-Ito
palette (distinguishable with every common colour-vision deficiency) on an opaque light card
(legible in Slack's dark mode too), money axes as $1.2M / $3B, dates as dates, the question as
title and the data's as-of date as caption. Only the capped rows are drawn, under a time limit;
any failure yields no chart and never blocks the answer.
"""

from __future__ import annotations

import io
import logging
import math
import re
import textwrap
import threading
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

log = logging.getLogger(__name__)

KINDS = ("line", "bar", "share")
MAX_BARS = 20
MAX_SERIES = 4
MAX_POINTS = 1000  # a line drawn from more points than this is noise at preview size
DEFAULT_TIMEOUT_S = 5.0

# Okabe & Ito (2008), "Color Universal Design": safe for protan, deutan and tritan vision.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00")
_CHAR_PX = 9.5  # average width of an 8-point character at 150 dpi
_INK, _MUTED, _GRID, _CARD = "#1F2328", "#57606A", "#D0D7DE", "#FFFFFF"

_MONEY = re.compile(
    r"usd|amount|invest|value|proceeds|capital|cost|nav|worth|gain|price|"
    r"revenue|check|cash|dollar|fund_size|committed|distribut|paid",
    re.I,
)
_NOT_MONEY = re.compile(
    r"pct|percent|share|ratio|multiple|moic|tvpi|dpi|irr|count|number|num_|"
    r"^n_|year|rank|days|months",
    re.I,
)
_SHARE = re.compile(r"share|pct|percent|portion|fraction|proportion|weight", re.I)
_YEAR = re.compile(r"year|vintage", re.I)
_PERIOD = re.compile(r"^\d{4}(-Q[1-4]|-H[12]|-\d{2}(-\d{2})?)$")
_ID = re.compile(r"(^|_)id$", re.I)


@dataclass(frozen=True)
class ChartSpec:
    """What to draw: the kind, the x (time or category) column and the numeric series."""

    kind: str  # line | bar | share
    x: str
    series: tuple[str, ...]
    money: bool = False
    group: str | None = None  # a category column whose values become the line's series


@dataclass
class Chart:
    """A drawn chart: PNG bytes and the alt text that describes it to a screen reader."""

    spec: ChartSpec
    png: bytes
    alt: str
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- choice


def _is_number(v: Any) -> bool:
    return (
        isinstance(v, (int, float, Decimal))
        and not isinstance(v, bool)
        and (not isinstance(v, float) or math.isfinite(v))
    )


def _kind_of(name: str, values: list[Any]) -> str:
    """time, number, category or other, from a column's non-null values and its name."""
    if not values:
        return "other"
    if all(isinstance(v, (date, datetime)) for v in values):
        return "time"
    if all(isinstance(v, str) and _PERIOD.match(v) for v in values):
        return "time"
    if all(_is_number(v) for v in values):
        if _YEAR.search(name) and all(float(v).is_integer() and 1900 <= v <= 2100 for v in values):
            return "time"
        return "other" if _ID.search(name) else "number"
    if all(isinstance(v, str) for v in values):
        return "category"
    return "other"


def choose(columns: list[str], rows: list[tuple], hint: str | None = None) -> ChartSpec | None:
    """The chart these rows deserve, or None; the model's hint only narrows the choice."""
    if len(rows) <= 2 or not columns or (hint or "").lower() == "none":
        return None
    kinds = {}
    for i, name in enumerate(columns):
        kinds[name] = _kind_of(name, [r[i] for r in rows if r[i] is not None])
    times = [c for c in columns if kinds[c] == "time"]
    numbers = [c for c in columns if kinds[c] == "number"]
    cats = [c for c in columns if kinds[c] == "category"]
    allowed: list[ChartSpec] = []
    if (
        len(times) == 1
        and numbers
        and not (set(kinds.values()) - {"time", "number", "category", "other"})
    ):
        x = times[0]
        xi = columns.index(x)
        if len(numbers) <= MAX_SERIES and not cats:
            points = len({r[xi] for r in rows})
            if points >= 3 and points == len(rows):
                allowed.append(
                    ChartSpec("line", x, tuple(numbers), _all_money(columns, rows, numbers))
                )
        elif len(numbers) == 1 and len(cats) == 1:
            gi = columns.index(cats[0])
            groups = {r[gi] for r in rows}
            points = len({r[xi] for r in rows})
            pairs = len({(r[xi], r[gi]) for r in rows})
            if len(groups) <= MAX_SERIES and points >= 3 and pairs == len(rows):
                allowed.append(
                    ChartSpec(
                        "line", x, tuple(numbers), _all_money(columns, rows, numbers), group=cats[0]
                    )
                )
    labels = cats if len(cats) == 1 else [c for c in times if not numbers[1:]]
    if len(numbers) == 1 and len(labels) == 1 and not (cats and times):
        x = labels[0]
        xi, vi = columns.index(x), columns.index(numbers[0])
        distinct = {r[xi] for r in rows}
        values = [r[vi] for r in rows]
        if len(distinct) == len(rows) <= MAX_BARS and all(v is not None for v in values):
            kind = "share" if _is_share(numbers[0], values) else "bar"
            allowed.append(ChartSpec(kind, x, (numbers[0],), _all_money(columns, rows, numbers)))
    if not allowed:
        return None
    if hint:
        wanted = [
            s
            for s in allowed
            if s.kind == hint.lower() or (hint.lower() == "bar" and s.kind == "share")
        ]
        if wanted:
            return wanted[0]
    return allowed[0]


def _all_money(columns: list[str], rows: list[tuple], names: list[str]) -> bool:
    """Money columns by name, unless every value is a small whole number (a count of deals)."""
    for n in names:
        i = columns.index(n)
        values = [r[i] for r in rows if r[i] is not None]
        small_counts = all(isinstance(v, int) and abs(v) < 10_000 for v in values)
        if not _MONEY.search(n) or _NOT_MONEY.search(n) or small_counts:
            return False
    return True


def _is_share(name: str, values: list[Any]) -> bool:
    nums = [float(v) for v in values]
    if any(v < 0 for v in nums):
        return False
    total = sum(nums)
    if _SHARE.search(name):
        return max(nums) <= 100
    # unnamed fractions that add up to a whole are shares too
    return (
        all(v <= 1 for v in nums)
        and abs(total - 1) <= 0.011
        and any(isinstance(v, (float, Decimal)) for v in values)
    )


# ----------------------------------------------------------------------- formatting


def money_short(v: float) -> str:
    """$1.2M, $3B, $400K: the compact money a chart axis has room for."""
    sign, a = ("-" if v < 0 else ""), abs(v)
    for scale, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= scale:
            n = a / scale
            text = f"{n:.1f}".removesuffix(".0")
            return f"{sign}${text}{unit}"
    return f"{sign}${a:,.0f}"


def number_short(v: float) -> str:
    a = abs(v)
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if a >= scale * 10:
            return f"{v / scale:.0f}{unit}"
    return f"{v:,.0f}" if float(v).is_integer() or a >= 100 else f"{v:.3g}"


def label(column: str) -> str:
    """fair_value_usd -> Fair value (USD): a header a partner can read."""
    words = column.replace("_", " ").strip()
    unit = ""
    m = re.search(r"\b(usd|pct|percent)$", words, re.I)
    if m:
        unit = {"usd": " (USD)", "pct": " (%)", "percent": " (%)"}[m.group(1).lower()]
        words = words[: m.start()].strip()
    return (words[:1].upper() + words[1:] + unit) or column


def _as_float(v: Any) -> float:
    return float(v) if v is not None else float("nan")


def _fmt(v: float, spec: ChartSpec, percent: bool = False, tick: bool = False) -> str:
    if percent:
        return f"{v:.0f}%" if tick else f"{v:.1f}%"
    return money_short(v) if spec.money else number_short(v)


# ------------------------------------------------------------------------- drawing


def _x_value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v
    if isinstance(v, date):
        return datetime(v.year, v.month, v.day)
    return v


def draw(
    spec: ChartSpec, columns: list[str], rows: list[tuple], *, title: str = "", as_of: str = ""
) -> Chart:
    """Draw the chart as PNG; raises on failure (callers use `chart_for`, which never does)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import dates as mdates
    from matplotlib import ticker
    from matplotlib.figure import Figure

    rows = rows[:MAX_POINTS]
    fig = Figure(figsize=(6.4, 3.6), dpi=150, facecolor=_CARD)
    ax = fig.add_subplot()
    ax.set_facecolor(_CARD)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color(_GRID)
    ax.tick_params(colors=_MUTED, labelsize=8)
    xi = columns.index(spec.x)
    notes: list[str] = []
    percent = spec.kind == "share"
    if spec.kind == "line":
        is_time = all(isinstance(r[xi], (date, datetime)) for r in rows)
        series = _line_series(spec, columns, rows)
        for n, (name, points) in enumerate(series.items()):
            points.sort(key=lambda p: p[0])
            xs = [_x_value(p[0]) for p in points]
            ys = [_as_float(p[1]) for p in points]
            ax.plot(
                xs,
                ys,
                color=PALETTE[n % len(PALETTE)],
                linewidth=2,
                marker="o" if len(xs) <= 30 else None,
                markersize=3,
                label=name,
            )
            notes.append(_describe_line(name, xs, ys, spec))
        if is_time:
            locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
            ax.xaxis.set_major_locator(locator)
            ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        elif all(_is_number(r[xi]) for r in rows):
            ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, nbins=8))
        ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: _fmt(v, spec)))
        ax.grid(axis="y", color=_GRID, linewidth=0.6)
        if len(series) > 1:
            ax.legend(frameon=False, fontsize=8, labelcolor=_INK)
        ax.set_ylabel(
            label(spec.series[0]) if len(spec.series) == 1 and not spec.group else "",
            color=_MUTED,
            fontsize=8,
        )
        ax.set_xlabel(label(spec.x), color=_MUTED, fontsize=8)
    else:
        vi = columns.index(spec.series[0])
        pairs = [(str(r[xi]), _as_float(r[vi])) for r in rows]
        if percent and all(v <= 1 for _, v in pairs) and not _SHARE.search(spec.series[0]):
            pairs = [(k, v * 100) for k, v in pairs]
        elif percent and all(v <= 1 for _, v in pairs) and sum(v for _, v in pairs) <= 1.011:
            pairs = [(k, v * 100) for k, v in pairs]
        pairs.sort(key=lambda p: p[1])
        names = [textwrap.shorten(k, 28, placeholder="…") for k, _ in pairs]
        values = [v for _, v in pairs]
        bars = ax.barh(range(len(values)), values, color=PALETTE[0], height=0.65)
        ax.set_yticks(range(len(values)), names, fontsize=8 if len(values) <= 12 else 6, color=_INK)
        ax.xaxis.set_major_formatter(
            ticker.FuncFormatter(lambda v, _: _fmt(v, spec, percent, tick=True)))
        ax.grid(axis="x", color=_GRID, linewidth=0.6)
        ax.set_axisbelow(True)
        ax.bar_label(
            bars,
            labels=[_fmt(v, spec, percent) for v in values],
            padding=3,
            fontsize=7 if len(values) <= 12 else 5,
            color=_INK,
        )
        ax.margins(x=0.15)
        ax.set_xlabel(label(spec.series[0]), color=_MUTED, fontsize=8)
        top = pairs[-1]
        low = pairs[0]
        notes.append(
            f"{len(pairs)} bars; largest {top[0]} at {_fmt(top[1], spec, percent)}, "
            f"smallest {low[0]} at {_fmt(low[1], spec, percent)}"
        )
    if title:
        fig.suptitle(
            textwrap.shorten(" ".join(title.split()), 90, placeholder="…"),
            x=0.02,
            ha="left",
            fontsize=10,
            color=_INK,
            fontweight="bold",
        )
    if as_of:
        fig.text(
            0.99, 0.01, f"Data as of {as_of}", ha="right", va="bottom", fontsize=7, color=_MUTED
        )
    # Margins from the longest label instead of tight_layout, which draws the figure an extra
    # time to measure it (a third of the cost of a chart).
    ticks = [t.get_text() for t in ax.get_yticklabels()] if spec.kind != "line" else []
    widest = max([len(t) for t in ticks] + [7])
    left = min(0.45, (widest * _CHAR_PX + (40 if spec.kind == "line" else 18)) / fig.bbox.width)
    fig.subplots_adjust(left=left, right=0.97 if spec.kind == "line" else 0.93,
                        top=0.88 if title else 0.95, bottom=0.16)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor=_CARD)
    width, height = (int(round(d * fig.dpi)) for d in fig.get_size_inches())
    return Chart(spec, buf.getvalue(), _alt(spec, notes, as_of), width, height, notes)


def _line_series(spec: ChartSpec, columns: list[str], rows: list[tuple]) -> dict[str, list]:
    xi = columns.index(spec.x)
    if spec.group:
        gi, vi = columns.index(spec.group), columns.index(spec.series[0])
        out: dict[str, list] = {}
        for r in rows:
            out.setdefault(str(r[gi]), []).append((r[xi], r[vi]))
        return out
    return {label(name): [(r[xi], r[columns.index(name)]) for r in rows] for name in spec.series}


def _describe_line(name: str, xs: list, ys: list[float], spec: ChartSpec) -> str:
    def when(x: Any) -> str:
        return x.date().isoformat() if isinstance(x, datetime) else str(x)

    finite = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
    if not finite:
        return f"{name}: no values"
    lo = min(finite, key=lambda p: p[1])
    hi = max(finite, key=lambda p: p[1])
    return (
        f"{name} from {when(xs[0])} to {when(xs[-1])} ({len(xs)} points), "
        f"lowest {_fmt(lo[1], spec)} ({when(lo[0])}), highest {_fmt(hi[1], spec)} "
        f"({when(hi[0])}), last {_fmt(finite[-1][1], spec)}"
    )


def _alt(spec: ChartSpec, notes: list[str], as_of: str) -> str:
    what = {
        "line": "Line chart",
        "bar": "Horizontal bar chart",
        "share": "Bar chart of shares in percent",
    }[spec.kind]
    series = ", ".join(label(s) for s in spec.series)
    text = f"{what} of {series} by {label(spec.x)}"
    if spec.group:
        text += f", one line per {label(spec.group)}"
    text += ". " + "; ".join(notes) + "."
    if as_of:
        text += f" Data as of {as_of}."
    return text[:1000]


# -------------------------------------------------------------------------- entry


def chart_for_result(result: Any, timeout_s: float = DEFAULT_TIMEOUT_S) -> Chart | None:
    """The chart for an answered turn (a TurnResult), titled with its question; else None."""
    if result.state != "answered" or not result.sql or not result.rows:
        return None
    return chart_for(result.columns, result.rows, title=result.question, as_of=result.as_of,
                     hint=result.chart_hint, timeout_s=timeout_s)


def chart_for(
    columns: list[str],
    rows: list[tuple],
    *,
    title: str = "",
    as_of: str = "",
    hint: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Chart | None:
    """The chart for a result, or None: never raises, never runs past `timeout_s`."""
    try:
        spec = choose(columns, rows, hint)
    except Exception:  # noqa: BLE001 - a chart is a nicety; the answer must not depend on it
        log.warning("chart choice failed", exc_info=True)
        return None
    if spec is None:
        return None
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["chart"] = draw(spec, columns, rows, title=title, as_of=as_of)
        except Exception as exc:  # noqa: BLE001
            box["error"] = exc

    worker = threading.Thread(target=work, name="fundbot-chart", daemon=True)
    worker.start()
    worker.join(timeout_s)
    if worker.is_alive():
        log.warning("chart drawing ran past %.1f s; answering without it", timeout_s)
        return None
    if "error" in box:
        log.warning("chart drawing failed: %s", box["error"])
        return None
    return box.get("chart")
