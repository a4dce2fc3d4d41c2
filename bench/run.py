"""Run the benchmarks, print each result as JSON, and write the figures into docs/BENCHMARKS.md.

    python -m bench.run                       # everything (what `make bench` runs)
    python -m bench.run --only overhead,economy
    python -m bench.run --quick               # small sizes for development; docs untouched

Benchmarks: overhead (turn overhead), economy (LLM calls and prompt sizes), scale (warehouse
at 11M valuation rows), slack (Slack under load), eval (eval throughput), spark (the same
queries on local Spark beside DuckDB). Each result is kept
in bench/.cache/results.json, so `--only` refreshes one section of the document and keeps
the others. Exit status 1 when any target was missed (the figures are written regardless).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import CACHE, ROOT, machine

DOC = ROOT / "docs" / "BENCHMARKS.md"
RESULTS = CACHE / "results.json"
ORDER = ("overhead", "economy", "scale", "slack", "eval", "spark")


def _overhead(quick: bool) -> dict[str, Any]:
    from bench import overhead

    return overhead.run(turns=200 if quick else 1000)


def _economy(quick: bool) -> dict[str, Any]:
    from bench import economy

    return economy.run()


def _scale(quick: bool) -> dict[str, Any]:
    from bench import scale

    return scale.run(scale=35 if quick else 350, repeat=1 if quick else 3)


def _slack(quick: bool) -> dict[str, Any]:
    from bench import slack_load

    sizes = (4, 16) if quick else (8, 32)
    mentions, llm_s = (20, 0.5) if quick else (100, 2.0)
    runs = [slack_load.run(mentions, llm_s, w) for w in sizes]
    return {"benchmark": "slack_under_load", "mentions": mentions,
            "llm_seconds_per_call": llm_s, "runs": runs,
            "targets": {"ack_p99_ms": 100, "answered_exactly_once": mentions},
            "met": {f"workers_{r['workers']}": slack_load.ok(r) for r in runs}}


def _eval(quick: bool) -> dict[str, Any]:
    from bench import eval_throughput

    return eval_throughput.run(n_cases=20 if quick else 80, llm_seconds=0.2 if quick else 1.0)


def _spark(quick: bool) -> dict[str, Any]:
    from bench import spark

    return spark.run(scale=35 if quick else 350, repeat=1)


RUNNERS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "overhead": _overhead, "economy": _economy, "scale": _scale, "slack": _slack,
    "eval": _eval, "spark": _spark}

# ------------------------------------------------------------------ rendering


def _met(result: dict[str, Any]) -> str:
    met = result.get("met", {})
    missed = [k for k, v in met.items() if not v]
    return "all met" if not missed else "MISSED: " + ", ".join(missed)


def _row(*cells: Any) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _render_overhead(r: dict[str, Any]) -> list[str]:
    own = r["own_ms"]
    out = [_row("part", "p50 ms", "p95 ms", "p99 ms", "mean ms"), _row("---", "--:", "--:",
                                                                      "--:", "--:"),
           _row("**own (total − LLM)**", own["p50"], own["p95"], own["p99"], own["mean"])]
    names = {"resolve": "entity resolution", "prompt": "prompt building", "guard": "SQL guard",
             "duckdb": "DuckDB", "store": "store (SQLite reads + writes)",
             "other": "other (FSM, bookkeeping)"}
    for part, d in r["parts_ms"].items():
        out.append(_row(names.get(part, part), d["p50"], d["p95"], d["p99"], d["mean"]))
    out += ["", (f"{r['turns']} turns after {r['warmup_turns']} warm-up turns; first (cold) "
            f"turn: {r['cold_first_turn_own_ms']} ms own (loads the value dictionaries). "
            f"LLM round trip at latency 0 (openai client + HTTP, not counted as own): "
            f"p50 {r['llm_roundtrip_ms_at_latency_0']['p50']} ms."), "",
            _row("kind of turn", "turns", "own p50 ms", "own p95 ms", "LLM calls"),
            _row("---", "--:", "--:", "--:", "---")]
    for kind, d in r["by_kind"].items():
        calls = ", ".join(f"{n} calls × {c}" for n, c in sorted(d["llm_calls"].items()))
        out.append(_row(kind, d["own_ms"]["n"], d["own_ms"]["p50"], d["own_ms"]["p95"], calls))
    out += ["", (f"Happy path: {r['happy_path']['llm_calls']} (calls: turns); ambiguous-name "
            f"clarification: {r['ambiguous_name_clarification']['llm_calls']}.")]
    return out


def _render_economy(r: dict[str, Any]) -> list[str]:
    out = [(f"- LLM calls per answered question: **{r['llm_calls_per_answered_turn']}** per "
           f"answered turn ({r['answered_turns']} turns); {r['llm_calls_per_answered_case']} "
           f"per answered case including its clarification rounds ({r['answered_cases']} "
           "cases)."),
           (f"- Estimated prompt tokens per answered turn (all its calls): "
           f"{r['prompt_tokens_est_per_answered_turn']:,}."), "",
           _row("kind of turn", "turns", "LLM calls (calls: turns)"), _row("---", "--:", "---")]
    for kind, d in r["by_kind"].items():
        out.append(_row(kind, d["turns"], d["llm_calls"]))
    out += ["", _row("call", "n", "prompt chars p50", "p95", "max", "≈ tokens p50",
                     "completion tokens p50"),
            _row("---", "--:", "--:", "--:", "--:", "--:", "--:")]
    for purpose, d in r["per_call"].items():
        out.append(_row(purpose, d["calls"], f"{d['prompt_chars']['p50']:,.0f}",
                        f"{d['prompt_chars']['p95']:,.0f}", f"{d['prompt_chars']['max']:,.0f}",
                        f"{d['prompt_tokens_est']['p50']:,.0f}",
                        f"{d['completion_tokens_est']['p50']:,.0f}"))
    g = r["prompt_growth"]
    dc = g["doc_chars_per_table"]
    out += ["", (f"Prompt chars count message text only; the `sql_query` tool schema adds "
            f"{r['tool_schema_chars_per_understand_or_debug_call']} characters to each "
            "understand/debug call."), "",
            (f"**Prompt growth {g['tables']['before']} → {g['tables']['after']} tables** "
            f"({g['schema_pruning']}); documentation per table: core {dc['core']:,} chars, "
            f"extra tables as written {dc['extra_as_written']:,}, padded "
            f"{dc['extra_padded']:,}."), "",
            _row("extra tables' docs", "understand prompt chars at 6 (p50)", "at 60 (p50)",
                 "ratio p50", "ratio p95", "ratio max", "needed tables all sent"),
            _row("---", "--:", "--:", "--:", "--:", "--:", "--:")]
    for label, key in (("as written", "extra_docs_as_written"),
                       ("padded to core density", "extra_docs_padded_to_core_density")):
        d = g[key]
        out.append(_row(label, f"{d['prompt_chars_6_tables']['p50']:,.0f}",
                        f"{d['prompt_chars_60_tables']['p50']:,.0f}", d["ratio"]["p50"],
                        d["ratio"]["p95"], d["ratio"]["max"],
                        d["questions_with_all_needed_tables_sent"]))
    dropped = g["extra_docs_as_written"]["needed_tables_dropped"]
    if dropped:
        out += ["", ("Tables a reference SQL needs that pruning left out at 60 tables "
                f"(table: questions): {dropped}.")]
    return out


def _render_scale(r: dict[str, Any]) -> list[str]:
    rows = r["rows"]
    b = r["build"]
    out = [(f"- Warehouse: scale {r['scale']:g}: {rows['valuations']:,} valuations, "
           f"{rows['investments']:,} investments, {rows['companies']:,} companies, "
           f"{rows['funds']} funds; file {r['file_gib']} GiB. Built with `{b['command']}` "
           f"in {b['seconds']} s, peak RSS {b['peak_rss_gib']} GiB ({b['built']}; this run: "
           f"{b['this_run']})."),
           (f"- {r['queries']} distinct reference SQL queries of the eval cases, through "
           f"`DuckWarehouse.execute` (guard + sandbox) with {r['limits']}, in a child process "
           f"pinned to {r['querying_process_cores']} cores; errors: {len(r['errors'])}."), "",
           _row("", "p50 s", "p95 s", "p99 s", "max s"), _row("---", "--:", "--:", "--:", "--:")]
    for label, key in (("cold (first run in the process)", "cold_s"),
                       ("warm (median of repeats)", "warm_s")):
        d = r[key]
        out.append(_row(label, d["p50"], d["p95"], d["p99"], d["max"]))
    out += ["", f"Peak RSS of the querying process: **{r['peak_rss_gib']} GiB** "
            f"({r['rss_after_open_gib']} GiB after opening the warehouse). Slowest: "
            + ", ".join(f"{q['case']} {q['cold_s']} s" for q in r["slowest_cold"][:3]) + "."]
    return out


def _render_slack(r: dict[str, Any]) -> list[str]:
    out = [_row("workers", "ack p50 ms", "ack p99 ms", "ack max ms", "retry ack p99 ms",
                "one ack alone ms", "answered", "exactly once", "placeholders", "LLM calls",
                "total s", "ideal s", "1 worker would take s"),
           _row("--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:",
                "--:", "--:")]
    for x in r["runs"]:
        out.append(_row(x["workers"], x["ack_ms"]["p50"], x["ack_ms"]["p99"], x["ack_ms"]["max"],
                        x["retry_ack_p99_ms"], x.get("one_at_a_time_ack_ms_p50", "–"),
                        x["answered"], x["answered_exactly_once"],
                        x["placeholders_posted"], x["llm_calls"], x["total_s"],
                        x["ideal_with_pool_s"], x["one_worker_would_take_s"]))
    out += ["", (f"{r['mentions']} signed `app_mention` events POSTed at once (then all "
            f"re-delivered once with `X-Slack-Retry-Num: 1`), fake LLM {r['llm_seconds_per_call']}"
            " s a call, 2 calls a question. \"Ideal\" = ceil(mentions / workers) × 2 calls × "
            "latency.")]
    return out


def _render_eval(r: dict[str, Any]) -> list[str]:
    out = [_row("concurrency", "wall s", "share of serial", "speedup", "LLM calls",
                "calls × latency / concurrency", "cases passed"),
           _row("--:", "--:", "--:", "--:", "--:", "--:", "--:")]
    for x in r["runs"]:
        out.append(_row(x["concurrency"], x["wall_s"], x["share_of_serial"], x["speedup"],
                        x["llm_calls"], x["lower_bound_s"], f"{x['passed']}/{r['cases']}"))
    out += ["", f"{r['cases']} cases, fake LLM {r['llm_seconds_per_call']} s a call."]
    return out


def _render_spark(r: dict[str, Any]) -> list[str]:
    d, s = r["duckdb"], r["spark"]
    out = [(f"- {r['queries']} distinct reference SQL queries at scale {r['scale']:g} "
            f"({r['rows']['valuations']:,} valuations), DuckDB beside a local Spark Connect "
            f"server ({s['server']}), cold run then {r['repeat']} warm; Spark's SQL is the "
            f"reference transpiled by sqlglot, through `SparkWarehouse.execute`."),
           (f"- Spark: server start {s['server_start_s']} s, loading the warehouse through "
            f"Spark Connect {s['load_s']} s, catalogue and dictionaries {s['open_s']} s; "
            f"errors: DuckDB {len(d['errors'])}, Spark {len(s['errors'])}."), "",
           _row("", "DuckDB p50 s", "DuckDB p95 s", "Spark p50 s", "Spark p95 s"),
           _row("---", "--:", "--:", "--:", "--:")]
    for label, key in (("cold", "cold_s"), ("warm", "warm_s")):
        out.append(_row(label, d[key]["p50"], d[key]["p95"], s[key]["p50"], s[key]["p95"]))
    out += ["", (f"Peak memory: DuckDB's querying process {d['peak_rss_gib']} GiB; Spark's "
                 f"server JVM {s['jvm_peak_rss_gib']} GiB plus the client "
                 f"{s['client_peak_rss_gib']} GiB. Slowest on Spark: "
                 + ", ".join(f"{q['case']} {q['cold_s']} s" for q in s["slowest_cold"][:3])
                 + ".")]
    return out


RENDER = {"overhead": _render_overhead, "economy": _render_economy, "scale": _render_scale,
          "slack": _render_slack, "eval": _render_eval, "spark": _render_spark}


def _ok(flag: bool | None) -> str:
    return "n/a" if flag is None else ("met" if flag else "**missed**")


def summary_rows(name: str, r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(target, measured, verdict) rows of one benchmark for the summary table."""
    met = r.get("met", {})
    if name == "overhead":
        own = r["own_ms"]
        return [("turn overhead p50 ≤ 20 ms", f"{own['p50']} ms", _ok(met.get("own_p50"))),
                ("turn overhead p95 ≤ 50 ms", f"{own['p95']} ms", _ok(met.get("own_p95"))),
                ("happy path: exactly 2 LLM calls", str(r["happy_path"]["llm_calls"]),
                 _ok(met.get("happy_path_2_calls"))),
                ("ambiguous name: 0 LLM calls", str(r["ambiguous_name_clarification"]
                                                    ["llm_calls"]),
                 _ok(met.get("entity_clarify_0_calls")))]
    if name == "economy":
        g = r["prompt_growth"]
        worst = max(g["extra_docs_as_written"]["ratio"]["max"],
                    g["extra_docs_padded_to_core_density"]["ratio"]["max"])
        return [("LLM calls per answered question (gold)",
                 str(r["llm_calls_per_answered_turn"]), _ok(met.get("happy_path_2_calls"))),
                ("understand prompt 6 → 60 tables ≤ 1.5×", f"max {worst}×",
                 _ok(met.get("prompt_growth_max_ratio"))),
                ("(no target) needed tables sent at 60 tables",
                 g["extra_docs_as_written"]["questions_with_all_needed_tables_sent"],
                 "see warning" if r.get("warnings") else "ok")]
    if name == "scale":
        return [(f"reference SQL p95 ≤ 1 s at {r['rows']['valuations']:,} valuations",
                 f"{r['cold_s']['p95']} s cold, {r['warm_s']['p95']} s warm",
                 _ok(met.get("p95_cold") and met.get("p95_warm"))),
                ("peak RSS ≤ 2 GiB on 2 cores", f"{r['peak_rss_gib']} GiB",
                 _ok(met.get("peak_rss")))]
    if name == "spark":
        return [(f"(no target) reference SQL p95 at {r['rows']['valuations']:,} valuations, "
                 "DuckDB / local Spark", f"{r['duckdb']['warm_s']['p95']} s / "
                 f"{r['spark']['warm_s']['p95']} s warm", _ok(met.get("spark_no_errors")))]
    if name == "slack":
        rows = []
        for x in r["runs"]:
            rows.append((f"ack p99 ≤ 100 ms, 100 answered once ({x['workers']} workers)",
                         (f"p99 {x['ack_ms']['p99']} ms, {x['answered_exactly_once']}/"
                         f"{x['mentions']} once, {x['total_s']} s total"),
                         _ok(met.get(f"workers_{x['workers']}"))))
        return rows
    if name == "eval":
        at = {x["concurrency"]: x for x in r["runs"]}
        if 1 in at and 8 in at:
            return [("eval: concurrency 8 < ¼ of serial",
                     (f"{at[8]['wall_s']} s vs {at[1]['wall_s']} s "
                     f"({at[8]['share_of_serial']})"), _ok(met.get("c8_under_quarter")))]
    return []


def render_summary(results: dict[str, Any]) -> str:
    lines = ["<!-- bench:summary (generated by `python -m bench.run`; edit outside) -->",
             _row("target", "measured", "verdict"), _row("---", "---", "---")]
    for name in ORDER:
        if name in results:
            lines += [_row(*row) for row in summary_rows(name, results[name]["result"])]
    lines.append("<!-- /bench:summary -->")
    return "\n".join(lines)


def render_block(name: str, entry: dict[str, Any]) -> str:
    r, m = entry["result"], entry["machine"]
    lines = [f"<!-- bench:{name} (generated by `python -m bench.run`; edit outside) -->",
             (f"Measured {m['date']} on {m['cores']} cores ({m['cpu'] or 'cpu unknown'}, "
             f"{m['memory']}), Python {m['python']}, DuckDB {m['duckdb']}, commit "
             f"{m['commit']}; {entry['seconds']:.0f} s; load average (1 min) "
             f"{m.get('load_1m', '?')} before, {m.get('load_1m_after', '?')} after. "
             f"Command: `{entry['command']}`."), "",
             *RENDER[name](r), "", f"Targets: **{_met(r)}**.", "",
             *[f"**Warning:** {w}." for w in r.get("warnings", [])],
             "<details><summary>JSON</summary>", "", "```json",
             json.dumps(r, indent=1), "```", "", "</details>", f"<!-- /bench:{name} -->"]
    return "\n".join(lines)


def write_doc(results: dict[str, Any], path: Path = DOC) -> None:
    """Replace each benchmark's generated block in the document, keeping the prose around."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    summary = re.compile(r"<!-- bench:summary .*?<!-- /bench:summary -->", re.DOTALL)
    if summary.search(text):
        text = summary.sub(lambda _m: render_summary(results), text)
    for name in ORDER:
        if name not in results:
            continue
        block = render_block(name, results[name])
        pattern = re.compile(rf"<!-- bench:{name} .*?<!-- /bench:{name} -->", re.DOTALL)
        if pattern.search(text):
            text = pattern.sub(lambda _m, b=block: b, text)
        else:
            text += f"\n\n{block}\n"
    path.write_text(text, encoding="utf-8")


# ------------------------------------------------------------------------ main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help=f"comma-separated subset of {', '.join(ORDER)}")
    p.add_argument("--quick", action="store_true", help="small sizes; docs untouched")
    p.add_argument("--no-docs", action="store_true", help="do not write docs/BENCHMARKS.md")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(ORDER)
    unknown = [n for n in names if n not in RUNNERS]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(ORDER)}")
    command = "make bench" if not args.only and not args.quick else (
        "python -m bench.run" + (f" --only {args.only}" if args.only else "")
        + (" --quick" if args.quick else ""))
    stored: dict[str, Any] = {}
    if RESULTS.exists() and not args.quick:
        stored = json.loads(RESULTS.read_text())
    missed = False
    for name in names:
        print(f"bench: {name} ...", file=sys.stderr, flush=True)
        info = machine()
        t0 = time.perf_counter()
        result = RUNNERS[name](args.quick)
        seconds = time.perf_counter() - t0
        info["load_1m_after"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result, indent=2), flush=True)
        missed |= not all(result.get("met", {}).values())
        if not args.quick:
            stored[name] = {"result": result, "machine": info, "seconds": seconds,
                            "command": command}
            CACHE.mkdir(parents=True, exist_ok=True)
            RESULTS.write_text(json.dumps(stored, indent=1))  # after each: a crash keeps them
    if not args.quick and not args.no_docs:
        write_doc(stored)
        print(f"bench: figures written to {DOC.relative_to(ROOT)}", file=sys.stderr)
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
