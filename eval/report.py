"""Reports of a run: report.json (for machines), report.md and a self-contained report.html."""

from __future__ import annotations

import html
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from eval.runner import CLASSIFICATION, QUALITY

LABELS = {
    "table_recall": "Table recall", "column_recall": "Column recall",
    "value_recall": "Value recall (data)", "answer_value_recall": "Value recall (answer text)",
    "execution_accuracy": "Execution accuracy", "rouge1": "ROUGE-1 F1", "rouge2": "ROUGE-2 F1",
    "rougeL": "ROUGE-L F1", "outcome_accuracy": "Outcome accuracy",
    "clarification_precision": "Clarification precision",
    "clarification_recall": "Clarification recall", "refusal_precision": "Refusal precision",
    "refusal_recall": "Refusal recall", "pass_rate": "Cases passed",
    "table_precision": "Table precision", "column_precision": "Column precision",
    "answer_accuracy": "Answer accuracy",
}
REPORT_FILES = ("report.json", "report.md", "report.html")
CHART_METRICS = ("execution_accuracy", "table_recall", "column_recall", "value_recall",
                 "rougeL")
WORST = 10


def pct(v: float | None) -> str:
    return "—" if v is None else f"{100 * v:.1f}%"


def ci_text(ci: list[float] | None) -> str:
    """'[84.1%, 95.0%]' for an interval, '' without one."""
    return "" if not ci else f"[{pct(ci[0])}, {pct(ci[1])}]"


def build(meta: dict[str, Any], summary: dict[str, Any], tags: dict[str, Any],
          cases: list[dict[str, Any]]) -> dict[str, Any]:
    return {"meta": meta, "summary": summary, "by_tag": tags, "cases": cases}


def load(path: str | Path) -> dict[str, Any]:
    """A report.json, given the file or the directory holding it."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def _perfect(c: dict[str, Any]) -> bool:
    scores = [v for k, v in c["metrics"].items() if k in CHART_METRICS and v is not None]
    return c["passed"] and all(v >= 1.0 for v in scores)


def worst(cases: list[dict[str, Any]], n: int = WORST,
          imperfect_only: bool = False) -> list[dict[str, Any]]:
    """The cases most worth a look: failed first, then by execution, values, ROUGE-L."""
    def key(c: dict[str, Any]) -> tuple:
        m = c["metrics"]
        return (c["passed"], c["outcome_ok"], _num(m.get("execution_accuracy")),
                _num(m.get("value_recall")), _num(m.get("column_recall")),
                _num(m.get("rougeL")), c["id"])
    pool = [c for c in cases if not _perfect(c)] if imperfect_only else cases
    return sorted(pool, key=key)[:n]


def _num(v: float | None) -> float:
    return 1.0 if v is None else v


# ------------------------------------------------------------------- Markdown


def markdown(report: dict[str, Any], failures: list[str] | None = None) -> str:
    meta, s, cases = report["meta"], report["summary"], report["cases"]
    out = [f"# fundbot evaluation: {meta.get('model')}", ""]
    out.append(f"{s['cases']} cases from `{meta.get('cases_file')}`, today pinned to "
               f"{meta.get('today')}, data as of {meta.get('as_of') or 'unknown'}, "
               f"concurrency {meta.get('concurrency')}, {meta.get('wall_seconds', 0):.1f}s wall "
               f"time, started {meta.get('started_at')}.")
    out.append("")
    if s.get("stale_cases"):
        out += [(f"**Warning: {s['stale_cases']} case(s) are stale** — their stored important "
                 "values no longer match the data; refresh them with `python -m "
                 "eval.make_cases` after checking the change is intended."), ""]
    if failures:
        out += ["**Thresholds not met:**", *[f"- {f}" for f in failures], ""]
    if report.get("interrupted"):
        out += [f"**Interrupted:** this report covers {s['cases']} of "
                f"{meta.get('cases_selected', '?')} cases.", ""]
    ci = s.get("ci95", {})
    out += ["## Summary", "", "| metric | value | 95% interval |", "|---|---|---|"]
    for key in ("pass_rate", *QUALITY, *CLASSIFICATION):
        out.append(f"| {LABELS[key]} | {pct(s.get(key))} | {ci_text(ci.get(key))} |")
    if s.get("flip_rate") is not None:
        out.append(f"| Flip rate ({meta.get('repeat')} runs a case) | {pct(s['flip_rate'])} "
                   f"| {s['flipped_cases']} case(s) flipped |")
    out.append(f"| LLM calls (per case) | {s['llm_calls']} ({_f(s.get('llm_calls_per_case'))}) |")
    out.append(f"| Tokens (prompt / completion) | {s['prompt_tokens']:,} / "
               f"{s['completion_tokens']:,} |")
    out.append(f"| Seconds per case (mean / p50 / p95) | {_f(s.get('seconds_mean'))} / "
               f"{_f(s.get('seconds_p50'))} / {_f(s.get('seconds_p95'))} |")
    out.append(f"| Failed turns / harness errors | {s['failed_turns']} / {s['errors']} |")
    if s.get("verify_checked"):
        out.append(f"| Verify: first drafts rejected / summaries withheld (right results) | "
                   f"{pct(s['verify_rejected'])} / {pct(s['verify_replaced'])} "
                   f"({pct(s['verify_replacement_right'])}) |")
    out += ["", "## By tag", "",
            "| tag | cases | exec | answer | table | column | value | ROUGE-L | outcome | passed |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for tag, t in report["by_tag"].items():
        out.append(f"| {tag} | {t['cases']} | {pct(t['execution_accuracy'])} | "
                   f"{pct(t.get('answer_accuracy'))} | "
                   f"{pct(t['table_recall'])} | {pct(t['column_recall'])} | "
                   f"{pct(t['value_recall'])} | {pct(t['rougeL'])} | "
                   f"{pct(t['outcome_accuracy'])} | {t['passed']}/{t['cases']} |")
    out += ["", "## Worst cases", ""]
    shown = worst(cases, imperfect_only=True)
    if not shown:
        out += ["Every case passed with full marks.", ""]
    for c in shown:
        m = c["metrics"]
        first = c["turns"][0]["question"] if c["turns"] else ""
        out.append(f"### {c['id']} ({', '.join(c['tags'])}) — "
                   f"{'passed' if c['passed'] else 'FAILED'}")
        out.append("")
        out.append(f"- question: {first}" + (f" (+{len(c['turns']) - 1} turns)"
                                             if len(c["turns"]) > 1 else ""))
        out.append(f"- expected {c['expect']}, got {c['outcome']}; exec "
                   f"{pct(m.get('execution_accuracy'))}, tables {pct(m.get('table_recall'))}, "
                   f"columns {pct(m.get('column_recall'))}, values {pct(m.get('value_recall'))}, "
                   f"ROUGE-L {pct(m.get('rougeL'))}; {c['llm_calls']} LLM calls, "
                   f"{c['seconds']:.2f}s")
        missing = [v for t in c["turns"] for v in t.get("missing_values", [])]
        if missing:
            out.append(f"- values missing from the data: {', '.join(map(str, missing[:8]))}")
        said_missing = [v for t in c["turns"] for v in t.get("answer_missing_values", [])]
        if said_missing:
            out.append("- values the answer does not state: "
                       f"{', '.join(map(str, said_missing[:8]))}")
        unbacked = [v for t in c["turns"] for v in t.get("unbacked_figures", [])]
        if unbacked:
            out.append(f"- figures the data does not back: {', '.join(unbacked[:8])}")
        if c.get("error"):
            out.append(f"- harness error: {c['error'].splitlines()[0]}")
        if c.get("answer"):
            out.append(f"- answer: {_one_line(c['answer'])}")
        if c.get("reference_answer"):
            out.append(f"- reference: {_one_line(c['reference_answer'])}")
        if c.get("sql"):
            out += ["", "```sql", c["sql"], "```"]
        if c.get("reference_sql") and c.get("reference_sql") != c.get("sql"):
            out += ["", "Reference SQL:", "", "```sql", c["reference_sql"], "```"]
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _f(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def _one_line(text: str, n: int = 300) -> str:
    t = " ".join(str(text).split())
    return t if len(t) <= n else t[:n] + "…"


# ----------------------------------------------------------------------- HTML

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;
max-width:1100px;color:#1d1d1f;padding:0 1em}
h1{font-size:1.5em}h2{margin-top:2em;border-bottom:1px solid #ddd}
.cards{display:flex;flex-wrap:wrap;gap:.6em}.card{border:1px solid #ddd;border-radius:8px;
padding:.6em .9em;min-width:9em}.card b{display:block;font-size:1.4em}
.warn{background:#fff4e5;border:1px solid #f0b35a;padding:.6em;border-radius:6px}
table{border-collapse:collapse;width:100%;margin:.5em 0}td,th{border-bottom:1px solid #eee;
padding:.3em .5em;text-align:left;vertical-align:top}th{background:#f6f6f6}
.fail{color:#b3261e;font-weight:600}.ok{color:#1e7a34}pre{background:#f6f8fa;padding:.6em;
overflow:auto;white-space:pre-wrap}details{margin:.2em 0}.charts{display:flex;flex-wrap:wrap;
gap:1.5em}svg text{font:12px system-ui,sans-serif}
.result-row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}
table.result{width:auto;font-size:.85em}img.chart{border:1px solid #eee;border-radius:6px}
"""


def _bar_chart(title: str, rows: list[tuple[str, float | None]]) -> str:
    """A horizontal bar chart (0-100%) as inline SVG."""
    bar_w, label_w, row_h = 220, 150, 20
    height = 24 + row_h * len(rows)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + bar_w + 60}" '
              f'height="{height}" role="img" aria-label="{html.escape(title)}">'),
             f'<text x="0" y="14" font-weight="600">{html.escape(title)}</text>']
    for i, (label, v) in enumerate(rows):
        y = 24 + i * row_h
        w = 0 if v is None else max(0.0, min(1.0, v)) * bar_w
        color = "#bbb" if v is None else "#2e7d32" if v >= 0.9 else "#f9a825" if v >= 0.6 \
            else "#c62828"
        parts.append(f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end">'
                     f'{html.escape(label[:22])}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="{row_h - 6}" '
                     'fill="#f0f0f0"/>')
        parts.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{row_h - 6}" '
                     f'fill="{color}"/>')
        parts.append(f'<text x="{label_w + bar_w + 6}" y="{y + 13}">{pct(v)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _result_html(t: dict[str, Any]) -> str:
    """The turn's first rows as a table, its chart beside them."""
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in t.get("columns", []))
    body = "".join("<tr>" + "".join(f"<td>{e(str(v))}</td>" for v in row) + "</tr>"
                   for row in t.get("rows", []))
    more = t.get("row_count", 0) - len(t.get("rows", []))
    table = (f"<table class='result'><tr>{head}</tr>{body}</table>"
             + (f"<p>({more} more rows)</p>" if more > 0 else ""))
    chart = t.get("chart") or {}
    # embedded, so the page stays one self-contained file
    img = (f"<img class='chart' src='data:image/png;base64,{chart['png_base64']}' "
           f"alt='{e(chart.get('alt', ''))}' width='480'>" if chart.get("png_base64") else "")
    return f"<div class='result-row'><div>{table}</div>{img}</div>"


def _without_pngs(report: dict[str, Any]) -> dict[str, Any]:
    """The report for report.json: charts keep their kind and description, the PNG stays in
    the HTML page only."""
    cases = [{**c, "turns": [{**t, "chart": {k: v for k, v in t["chart"].items()
                                             if k != "png_base64"}} if t.get("chart") else t
                             for t in c.get("turns", [])]} for c in report.get("cases", [])]
    return {**report, "cases": cases}


def html_page(report: dict[str, Any], failures: list[str] | None = None) -> str:
    meta, s, cases, tags = report["meta"], report["summary"], report["cases"], report["by_tag"]
    e = html.escape
    out = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
           f"<title>fundbot evaluation: {e(str(meta.get('model')))}</title>",
           f"<style>{_CSS}</style></head><body>",
           f"<h1>fundbot evaluation: {e(str(meta.get('model')))}</h1>",
           (f"<p>{s['cases']} cases, today pinned to {e(str(meta.get('today')))}, data as "
            f"of {e(str(meta.get('as_of') or 'unknown'))}, {meta.get('wall_seconds', 0):.1f}s "
            f"wall time, started {e(str(meta.get('started_at')))}.</p>")]
    if s.get("stale_cases"):
        out.append(f"<p class='warn'>{s['stale_cases']} case(s) are stale: their stored "
                   "important values no longer match the data.</p>")
    if failures:
        out.append("<p class='warn'>Thresholds not met:<br>" + "<br>".join(map(e, failures))
                   + "</p>")
    if report.get("interrupted"):
        out.append(f"<p class='warn'>Interrupted: this report covers {s['cases']} of "
                   f"{e(str(meta.get('cases_selected', '?')))} cases.</p>")
    ci = s.get("ci95", {})
    out.append("<div class='cards'>")
    for key in ("pass_rate", "execution_accuracy", "answer_accuracy", "table_recall",
                "column_recall", "value_recall", "rougeL", "outcome_accuracy"):
        band = f"<small>95% CI {ci_text(ci.get(key))}</small>" if ci.get(key) else ""
        out.append(f"<div class='card'>{e(LABELS[key])}<b>{pct(s.get(key))}</b>{band}</div>")
    out.append(f"<div class='card'>LLM calls<b>{s['llm_calls']}</b></div>")
    out.append(f"<div class='card'>Tokens<b>{s['prompt_tokens'] + s['completion_tokens']:,}"
               "</b></div>")
    out.append(f"<div class='card'>Mean s/case<b>{_f(s.get('seconds_mean'))}</b></div></div>")
    out.append("<h2>By tag</h2><div class='charts'>")
    for key in CHART_METRICS:
        out.append(_bar_chart(LABELS[key], [(t, v.get(key)) for t, v in tags.items()]))
    out.append("</div><h2>All metrics</h2><table><tr><th>metric</th><th>value</th>"
               "<th>95% interval</th></tr>")
    for key in ("pass_rate", *QUALITY, *CLASSIFICATION):
        out.append(f"<tr><td>{e(LABELS[key])}</td><td>{pct(s.get(key))}</td>"
                   f"<td>{ci_text(ci.get(key))}</td></tr>")
    out.append("</table><h2>Cases</h2><table><tr><th>case</th><th>tags</th><th>outcome</th>"
               "<th>exec</th><th>tables</th><th>columns</th><th>values</th><th>ROUGE-L</th>"
               "<th>LLM</th><th>s</th></tr>")
    for c in worst(cases, len(cases)):
        m = c["metrics"]
        cls = "ok" if c["passed"] else "fail"
        detail = []
        for i, t in enumerate(c["turns"], 1):
            detail.append(f"<p><b>Turn {i}</b> ({e(t['expect'])} → {e(t['outcome'])}): "
                          f"{e(t['question'])}</p>")
            said = t.get("answer") or t.get("clarification")
            if said:
                detail.append(f"<p>Answer: {e(said)}</p>")
            if t.get("reference_answer"):
                detail.append(f"<p>Reference: {e(t['reference_answer'])}</p>")
            if t.get("sql"):
                detail.append(f"<pre>{e(t['sql'])}</pre>")
            if t.get("rows") or t.get("chart"):
                detail.append(_result_html(t))
            if t.get("reference_sql") and t.get("reference_sql") != t.get("sql"):
                detail.append(f"<p>Reference SQL:</p><pre>{e(t['reference_sql'])}</pre>")
            if t.get("missing_values"):
                detail.append("<p>Values missing: "
                              f"{e(', '.join(map(str, t['missing_values'])))}</p>")
        if c.get("error"):
            detail.append(f"<pre>{e(c['error'])}</pre>")
        out.append(
            f"<tr><td><details><summary class='{cls}'>{e(c['id'])}</summary>{''.join(detail)}"
            f"</details></td><td>{e(', '.join(c['tags']))}</td>"
            f"<td>{e(c['expect'])} → {e(c['outcome'])}</td>"
            f"<td>{pct(m.get('execution_accuracy'))}</td><td>{pct(m.get('table_recall'))}</td>"
            f"<td>{pct(m.get('column_recall'))}</td><td>{pct(m.get('value_recall'))}</td>"
            f"<td>{pct(m.get('rougeL'))}</td><td>{c['llm_calls']}</td>"
            f"<td>{c['seconds']:.2f}</td></tr>")
    out.append("</table></body></html>")
    return "\n".join(out) + "\n"


def prepare(out_dir: str | Path) -> None:
    """Make `out_dir`, prove it writable and remove an earlier run's reports, so a run that
    stops early never leaves an old report.json looking current (raises OSError)."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=d, prefix=".probe-"):
        pass
    for name in REPORT_FILES:
        (d / name).unlink(missing_ok=True)


def write_atomic(path: Path, text: str) -> None:
    """Write a file so a reader sees the old one or the whole new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write(report: dict[str, Any], out_dir: str | Path,
          failures: list[str] | None = None) -> dict[str, Path]:
    """Write report.json, report.md and report.html into `out_dir` (each atomically);
    returns their paths."""
    d = Path(out_dir)
    d.mkdir(parents=True, exist_ok=True)
    paths = {"json": d / "report.json", "md": d / "report.md", "html": d / "report.html"}
    # the human reports first: report.json appearing is the sign the run is complete
    write_atomic(paths["md"], markdown(report, failures))
    write_atomic(paths["html"], html_page(report, failures))
    write_atomic(paths["json"], json.dumps(_without_pngs(report), indent=2, default=str,
                                           ensure_ascii=False) + "\n")
    return paths
