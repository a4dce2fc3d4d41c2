"""Two runs side by side: metrics, cost and time with deltas, per tag, and the cases that moved."""

from __future__ import annotations

from typing import Any

from eval.report import LABELS, pct
from eval.runner import CLASSIFICATION, QUALITY

COST = (("llm_calls", "LLM calls"), ("prompt_tokens", "Prompt tokens"),
        ("completion_tokens", "Completion tokens"), ("seconds_mean", "Seconds per case (mean)"),
        ("seconds_p95", "Seconds per case (p95)"))
TAG_METRICS = ("execution_accuracy", "value_recall", "column_recall")


def _delta_pts(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    d = 100 * (b - a)
    return "=" if abs(d) < 0.05 else f"{d:+.1f} pts"


def _delta_num(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return ""
    if a == 0:
        return f"{b - a:+,.2f}" if b else "="
    return "=" if a == b else f"{b - a:+,.2f} ({100 * (b - a) / a:+.0f}%)"


def _num(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """The differences between two reports, as data (what `text()` prints)."""
    sa, sb = a["summary"], b["summary"]
    metrics = [{"metric": k, "a": sa.get(k), "b": sb.get(k),
                "delta": None if sa.get(k) is None or sb.get(k) is None
                else sb.get(k) - sa.get(k)}
               for k in (*QUALITY, *CLASSIFICATION, "pass_rate")]
    cost = [{"metric": k, "a": sa.get(k), "b": sb.get(k)} for k, _ in COST]
    tags = {}
    for tag in sorted(set(a.get("by_tag", {})) | set(b.get("by_tag", {}))):
        ta, tb = a.get("by_tag", {}).get(tag, {}), b.get("by_tag", {}).get(tag, {})
        tags[tag] = {k: (ta.get(k), tb.get(k)) for k in TAG_METRICS}
    ca = {c["id"]: c for c in a["cases"]}
    cb = {c["id"]: c for c in b["cases"]}
    common = [i for i in ca if i in cb]
    return {
        "a": a["meta"].get("model"), "b": b["meta"].get("model"),
        "metrics": metrics, "cost": cost, "tags": tags,
        "fixed": [i for i in common if cb[i]["passed"] and not ca[i]["passed"]],
        "broken": [i for i in common if ca[i]["passed"] and not cb[i]["passed"]],
        "only_a": [i for i in ca if i not in cb], "only_b": [i for i in cb if i not in ca],
    }


def text(a: dict[str, Any], b: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    d = compare(a, b)
    head_a = f"{name_a}: {d['a']}"
    head_b = f"{name_b}: {d['b']}"
    w = 32
    lines = [f"{'':{w}} {head_a[:20]:>20} {head_b[:20]:>20}  delta",
             f"{'cases':{w}} {a['summary']['cases']:>20} {b['summary']['cases']:>20}"]
    for m in d["metrics"]:
        lines.append(f"{LABELS[m['metric']]:{w}} {pct(m['a']):>20} {pct(m['b']):>20}  "
                     f"{_delta_pts(m['a'], m['b'])}")
    lines.append("")
    labels = dict(COST)
    for m in d["cost"]:
        lines.append(f"{labels[m['metric']]:{w}} {_num(m['a']):>20} {_num(m['b']):>20}  "
                     f"{_delta_num(m['a'], m['b'])}")
    if d["tags"]:
        lines += ["", f"{'by tag (exec / value / column)':{w}} {name_a:>20} {name_b:>20}"]
        for tag, vals in d["tags"].items():
            ea = " / ".join(pct(v[0]).rstrip("%") for v in vals.values())
            eb = " / ".join(pct(v[1]).rstrip("%") for v in vals.values())
            ex = vals["execution_accuracy"]
            lines.append(f"{tag[:w]:{w}} {ea:>20} {eb:>20}  {_delta_pts(ex[0], ex[1])}")
    lines.append("")
    lines.append(f"now passing in {name_b} ({len(d['fixed'])}): {', '.join(d['fixed']) or '-'}")
    lines.append(f"now failing in {name_b} ({len(d['broken'])}): {', '.join(d['broken']) or '-'}")
    if d["only_a"] or d["only_b"]:
        lines.append(f"cases only in {name_a}: {len(d['only_a'])}; only in {name_b}: "
                     f"{len(d['only_b'])}")
    return "\n".join(lines) + "\n"
