"""Two runs side by side: metrics with paired differences, intervals and p-values, cost and
time, per tag, and the cases that moved; as text, JSON or a self-contained HTML page.

Each metric is compared over the cases both runs scored, case by case (`eval.stats.paired`):
the difference B - A, its 95 % paired-bootstrap interval and a p-value (McNemar's exact test
for pass/fail metrics). When p >= 0.05 the runs are "not distinguishable" on that metric.
"""

from __future__ import annotations

import html
from typing import Any

from eval import stats
from eval.report import LABELS, ci_text, pct
from eval.runner import CLASSIFICATION, QUALITY, per_case

COST = (("llm_calls", "LLM calls"), ("prompt_tokens", "Prompt tokens"),
        ("completion_tokens", "Completion tokens"), ("seconds_mean", "Seconds per case (mean)"),
        ("seconds_p95", "Seconds per case (p95)"))
TAG_METRICS = ("pass_rate", "execution_accuracy", "answer_accuracy")
# metrics compared case by case, in the order the text and the page show them
PAIRED = ("pass_rate", "execution_accuracy", "answer_accuracy", "table_recall",
          "column_recall", "value_recall", "answer_value_recall", "rougeL")


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
    ca = {c["id"]: c for c in a["cases"]}
    cb = {c["id"]: c for c in b["cases"]}
    common = [i for i in ca if i in cb]
    metrics = []
    for k in ("pass_rate", *QUALITY, *CLASSIFICATION):
        m: dict[str, Any] = {"metric": k, "a": sa.get(k), "b": sb.get(k),
                             "delta": None if sa.get(k) is None or sb.get(k) is None
                             else sb.get(k) - sa.get(k),
                             "ci95_a": sa.get("ci95", {}).get(k),
                             "ci95_b": sb.get("ci95", {}).get(k)}
        if k in PAIRED:
            m.update(_paired(k, [ca[i] for i in common], [cb[i] for i in common]))
        metrics.append(m)
    cost = [{"metric": k, "a": sa.get(k), "b": sb.get(k)} for k, _ in COST]
    tags = {}
    for tag in sorted(set(a.get("by_tag", {})) | set(b.get("by_tag", {}))):
        ta, tb = a.get("by_tag", {}).get(tag, {}), b.get("by_tag", {}).get(tag, {})
        tags[tag] = {k: (ta.get(k), tb.get(k)) for k in TAG_METRICS}
    return {
        "a": a["meta"].get("model"), "b": b["meta"].get("model"),
        "metrics": metrics, "cost": cost, "tags": tags,
        "fixed": [i for i in common if cb[i]["passed"] and not ca[i]["passed"]],
        "broken": [i for i in common if ca[i]["passed"] and not cb[i]["passed"]],
        "only_a": [i for i in ca if i not in cb], "only_b": [i for i in cb if i not in ca],
        "common_cases": len(common),
    }


def _paired(metric: str, a: list[dict[str, Any]], b: list[dict[str, Any]]) -> dict[str, Any]:
    """Difference, interval and p-value of one metric over the cases both runs have."""
    pairs = [(x, y) for ca, cb in zip(a, b, strict=True)
             if (x := _one(ca, metric)) is not None and (y := _one(cb, metric)) is not None]
    res = stats.paired([x for x, _ in pairs], [y for _, y in pairs])
    res["distinguishable"] = stats.distinguishable(res)
    return res


def _one(case: dict[str, Any], metric: str) -> float | None:
    vals = per_case([case], metric)
    return vals[0] if vals else None


def verdict(m: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    """One sentence on whether two runs differ on a metric."""
    label = LABELS[m["metric"]].lower()
    if m.get("difference") is None:
        return f"{label}: no cases to compare"
    d, ci, p = m["difference"], m["ci95"], m["p_value"]
    figures = (f"difference {100 * d:+.1f} pts, 95% CI [{100 * ci[0]:+.1f}, "
               f"{100 * ci[1]:+.1f}] pts, p = {p:.3g}, {m['n']} cases")
    if not m["distinguishable"]:
        return f"{label}: {name_a} and {name_b} are not distinguishable ({figures})"
    better = name_b if d > 0 else name_a
    return f"{label}: {better} is better ({figures})"


def text(a: dict[str, Any], b: dict[str, Any], name_a: str = "A", name_b: str = "B") -> str:
    d = compare(a, b)
    head_a = f"{name_a}: {d['a']}"
    head_b = f"{name_b}: {d['b']}"
    w = 32
    lines = [f"{'':{w}} {head_a[:20]:>20} {head_b[:20]:>20}  delta",
             f"{'cases':{w}} {a['summary']['cases']:>20} {b['summary']['cases']:>20}"]
    for m in d["metrics"]:
        paired = ""
        if m.get("ci95"):
            lo, hi = m["ci95"]
            paired = f"  95% CI [{100 * lo:+.1f}, {100 * hi:+.1f}] p={m['p_value']:.3g}"
        lines.append(f"{LABELS[m['metric']]:{w}} {pct(m['a']):>20} {pct(m['b']):>20}  "
                     f"{_delta_pts(m['a'], m['b'])}{paired}")
    lines.append("")
    for m in d["metrics"]:
        if m["metric"] in ("pass_rate", "execution_accuracy", "answer_accuracy"):
            lines.append(verdict(m, name_a, name_b))
    lines.append("")
    labels = dict(COST)
    for m in d["cost"]:
        lines.append(f"{labels[m['metric']]:{w}} {_num(m['a']):>20} {_num(m['b']):>20}  "
                     f"{_delta_num(m['a'], m['b'])}")
    if d["tags"]:
        lines += ["", f"{'by tag (pass / exec / answer)':{w}} {name_a:>20} {name_b:>20}"]
        for tag, vals in d["tags"].items():
            ea = " / ".join(pct(v[0]).rstrip("%") for v in vals.values())
            eb = " / ".join(pct(v[1]).rstrip("%") for v in vals.values())
            ex = vals["pass_rate"]
            lines.append(f"{tag[:w]:{w}} {ea:>20} {eb:>20}  {_delta_pts(ex[0], ex[1])}")
    lines.append("")
    lines.append(f"now passing in {name_b} ({len(d['fixed'])}): {', '.join(d['fixed']) or '-'}")
    lines.append(f"now failing in {name_b} ({len(d['broken'])}): {', '.join(d['broken']) or '-'}")
    if d["only_a"] or d["only_b"]:
        lines.append(f"cases only in {name_a}: {len(d['only_a'])}; only in {name_b}: "
                     f"{len(d['only_b'])}")
    return "\n".join(lines) + "\n"


def html_page(a: dict[str, Any], b: dict[str, Any], name_a: str = "A", name_b: str = "B"
              ) -> str:
    """A self-contained side-by-side page: metrics with intervals and paired tests, per
    tag, and the cases that flipped, with both answers and SQL."""
    from eval.report import _CSS

    e = html.escape
    d = compare(a, b)
    head_a, head_b = f"{name_a} ({d['a']})", f"{name_b} ({d['b']})"
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>fundbot eval: {e(head_a)} vs {e(head_b)}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>{e(head_a)} vs {e(head_b)}</h1>",
           f"<p>{d['common_cases']} cases in both runs. Differences are {e(name_b)} minus "
           f"{e(name_a)}, over the same cases, with a 95% paired-bootstrap interval and a "
           "p-value (McNemar's exact test for pass/fail); p &ge; 0.05 means the runs are "
           "not distinguishable on that metric.</p><ul>"]
    for m in d["metrics"]:
        if m["metric"] in ("pass_rate", "execution_accuracy", "answer_accuracy"):
            cls = "ok" if m.get("distinguishable") else ""
            out.append(f"<li class='{cls}'>{e(verdict(m, name_a, name_b))}</li>")
    out.append("</ul><h2>Metrics</h2><table><tr><th>metric</th>"
               f"<th>{e(head_a)}</th><th>{e(head_b)}</th><th>difference</th>"
               "<th>95% CI of the difference</th><th>p-value</th></tr>")
    for m in d["metrics"]:
        diff = m.get("difference", m["delta"])
        ci, p = m.get("ci95"), m.get("p_value")
        out.append(
            f"<tr><td>{e(LABELS[m['metric']])}</td>"
            f"<td>{pct(m['a'])} <small>{ci_text(m.get('ci95_a'))}</small></td>"
            f"<td>{pct(m['b'])} <small>{ci_text(m.get('ci95_b'))}</small></td>"
            f"<td>{'' if diff is None else f'{100 * diff:+.1f} pts'}</td>"
            f"<td>{'' if not ci else f'[{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] pts'}</td>"
            f"<td>{'' if p is None else f'{p:.3g}'}</td></tr>")
    out.append("</table><h2>Cost and time</h2><table><tr><th></th>"
               f"<th>{e(head_a)}</th><th>{e(head_b)}</th><th>change</th></tr>")
    labels = dict(COST)
    for m in d["cost"]:
        out.append(f"<tr><td>{e(labels[m['metric']])}</td><td>{_num(m['a'])}</td>"
                   f"<td>{_num(m['b'])}</td><td>{e(_delta_num(m['a'], m['b']))}</td></tr>")
    out.append("</table><h2>By tag</h2><table><tr><th>tag</th>"
               + "".join(f"<th>{e(LABELS[k])}: {e(name_a)} / {e(name_b)}</th>"
                         for k in TAG_METRICS) + "</tr>")
    for tag, vals in d["tags"].items():
        out.append(f"<tr><td>{e(tag)}</td>" + "".join(
            f"<td>{pct(v[0])} / {pct(v[1])}</td>" for v in vals.values()) + "</tr>")
    out.append("</table>")
    ca = {c["id"]: c for c in a["cases"]}
    cb = {c["id"]: c for c in b["cases"]}
    for title, ids in ((f"Now passing in {name_b}", d["fixed"]),
                       (f"Now failing in {name_b}", d["broken"])):
        out.append(f"<h2>{e(title)} ({len(ids)})</h2>")
        if not ids:
            out.append("<p>None.</p>")
        for i in ids:
            out.append(f"<details><summary>{e(i)}</summary><table><tr><th></th>"
                       f"<th>{e(head_a)}</th><th>{e(head_b)}</th></tr>")
            for key in ("answer", "sql"):
                out.append(f"<tr><td>{key}</td><td><pre>{e(str(ca[i].get(key) or ''))}</pre>"
                           f"</td><td><pre>{e(str(cb[i].get(key) or ''))}</pre></td></tr>")
            out.append(f"<tr><td>reference</td><td colspan='2'><pre>"
                       f"{e(str(ca[i].get('reference_answer') or ''))}</pre></td></tr>"
                       "</table></details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
