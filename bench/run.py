"""Run the benchmarks, print each result as JSON, and write the figures into docs/BENCHMARKS.md.

    python -m bench.run                       # everything (what `make bench` runs)
    python -m bench.run --only overhead,economy
    python -m bench.run --quick               # small sizes for development; docs untouched

Benchmarks: overhead (turn overhead), economy (LLM calls and prompt sizes), scale (warehouse
at 11M valuation rows), slack (Slack under load), eval (eval throughput), mcp (an `ask` over
MCP vs the same turn in-process), exits (200 starts of `fundbot sql --json`, all must exit 0),
wide (own time per turn at 6 vs 60 tables), verify (answer verification: false rejections,
catches, step time), charts (a chart's cost per turn), sqlwall (the SQL worker pool's cost and
attacks past the guard), slack_attack (Slack under load and attack), replicas (several bot
processes on one PostgreSQL store), verified (verified-query retrieval, wrong matches, LLM
calls), spark (the same queries on local Spark beside DuckDB). Each result is kept in
bench/.cache/results.json, so `--only` refreshes one section of the document and keeps the
others (and their summary rows). Exit status 1 when any target was missed (the figures are
written regardless).
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


def _mcp(quick: bool) -> dict[str, Any]:
    from bench import mcp_overhead

    return mcp_overhead.run(turns=50 if quick else 300)


def _exits(quick: bool) -> dict[str, Any]:
    from bench import exit_loop

    return exit_loop.run(runs=20 if quick else 200)


def _wide(quick: bool) -> dict[str, Any]:
    from bench import wide

    return wide.run(turns=100 if quick else 400)


def _sqlwall(quick: bool) -> dict[str, Any]:
    from bench import sqlwall

    return sqlwall.run(queries=100 if quick else 600)


def _slack_attack(quick: bool) -> dict[str, Any]:
    from bench import slack_load

    mentions = 20 if quick else 100
    r = slack_load.run(mentions, 0.5, 8, attack=True)
    return {"benchmark": "slack_under_attack", **r,
            "targets": {"ack_p99_ms": 100, "answered_exactly_once": mentions,
                        "oversized_status": 413},
            "met": {"ack_p99": r["ack_ms"]["p99"] <= 100, "answered": slack_load.ok(r)
                    or r["answered_exactly_once"] == mentions,
                    "oversized_413": set(r["attack"]["oversized_statuses"]) == {413}}}


def _charts(quick: bool) -> dict[str, Any]:
    from bench import charts

    return charts.run(repeat=2 if quick else 5)


def _verify(quick: bool) -> dict[str, Any]:
    from bench import verify

    return verify.run(repeat=1 if quick else 3)


def _replicas(quick: bool) -> dict[str, Any]:
    from bench import replicas

    if quick:
        return replicas.run(mentions=30, llm_seconds=0.5, turns=16, lease_s=3.0)
    return replicas.run(mentions=100, llm_seconds=2.0, turns=48, lease_s=30.0)


def _verified(quick: bool) -> dict[str, Any]:
    from bench import verified

    return verified.run()


def _spark(quick: bool) -> dict[str, Any]:
    from bench import spark

    return spark.run(scale=35 if quick else 350, repeat=1)


RUNNERS: dict[str, Callable[[bool], dict[str, Any]]] = {
    "overhead": _overhead,
    "economy": _economy,
    "scale": _scale,
    "slack": _slack,
    "eval": _eval,
    "mcp": _mcp,
    "exits": _exits,
    "wide": _wide,
    "verify": _verify,
    "charts": _charts,
    "sqlwall": _sqlwall,
    "slack_attack": _slack_attack,
    "replicas": _replicas,
    "verified": _verified,
    "spark": _spark,
}
ORDER = tuple(RUNNERS)

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
                "one ack alone ms", "answered", "exactly once", "placeholders", "streams",
                "LLM calls", "total s", "ideal s", "1 worker would take s"),
           _row("--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:", "--:",
                "--:", "--:", "--:")]
    for x in r["runs"]:
        out.append(_row(x["workers"], x["ack_ms"]["p50"], x["ack_ms"]["p99"], x["ack_ms"]["max"],
                        x["retry_ack_p99_ms"], x.get("one_at_a_time_ack_ms_p50", "–"),
                        x["answered"], x["answered_exactly_once"],
                        x["placeholders_posted"], x.get("streams_started", "–"),
                        x["llm_calls"], x["total_s"],
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


def _render_mcp(r: dict[str, Any]) -> list[str]:
    out = [_row("path", "calls", "wall p50 ms", "own p50 ms", "own p95 ms", "MCP p50 ms",
                "MCP p95 ms", "LLM p50 ms"),
           _row("---", "--:", "--:", "--:", "--:", "--:", "--:", "--:")]
    for name, d in r["modes"].items():
        mcp = d.get("mcp_ms", {})
        out.append(_row(name, d["calls"], d["wall_ms"]["p50"], d["own_ms"]["p50"],
                        d["own_ms"]["p95"], mcp.get("p50", "–"), mcp.get("p95", "–"),
                        d["llm_ms"]["p50"]))
    extra = r["extra_own_ms_p50"]
    out += ["", (f"{r['turns']} calls per path after {r['warmup_turns']} warm-up calls, each a "
            f"new thread: \"{r['question']}\". Own time added by MCP (p50): stdio "
            f"{extra['mcp_stdio']} ms, HTTP {extra['mcp_http']} ms.")]
    return out


def _render_exits(r: dict[str, Any]) -> list[str]:
    s = r["seconds_per_run"]
    return [(f"`{r['command']}` started {r['runs']} times as separate processes: exit codes "
             f"{r['exit_codes']} (code: runs), {r['nonzero_exits']} non-zero, "
             f"{r['wrong_output']} with wrong output; {s['p50']} s a run (p50), "
             f"{s['max']} s max.")]


def _render_wide(r: dict[str, Any]) -> list[str]:
    out = [_row("", "6 tables p50 ms", "p95 ms", "60 tables p50 ms", "p95 ms", "ratio p50",
                "ratio p95"), _row("---", "--:", "--:", "--:", "--:", "--:", "--:")]
    a, b = r["own_ms"]["6"], r["own_ms"]["60"]
    out.append(_row("**own time per turn**", a["p50"], a["p95"], b["p50"], b["p95"],
                    r["own_ratio_60_to_6"]["p50"], r["own_ratio_60_to_6"]["p95"]))
    a, b = r["guard_plus_pruning_ms"]["6"], r["guard_plus_pruning_ms"]["60"]
    out.append(_row("guard + prompt building (pruning)", a["p50"], a["p95"], b["p50"],
                    b["p95"], round(b["p50"] / a["p50"], 3), round(b["p95"] / a["p95"], 3)))
    d = r["direct_ms"]
    out += ["", _row("alone, outside a turn", "p50 ms", "p95 ms", "p99 ms"),
            _row("---", "--:", "--:", "--:")]
    for label, key in (("guard, 6 tables", "guard_6"), ("guard, 60 tables", "guard_60"),
                       ("pruning, 60 tables, first sight of each question", "pruning_60_cold"),
                       ("pruning, 60 tables, again", "pruning_60_warm"),
                       ("guard + pruning per turn at 60 tables, fastest of the repeats",
                        "guard_plus_pruning_60_fastest")):
        if key in d:
            out.append(_row(label, d[key]["p50"], d[key]["p95"], d[key]["p99"]))
    out += ["", (f"{r['turns']} turns at each size (bench.overhead's loop) on the sample "
                 f"warehouse ({r['tables']['small']} tables) and the same widened to "
                 f"{r['tables']['wide']} (bench.wide_catalog, docs padded to the core "
                 "tables' density), interleaved turn by turn; then the "
                 f"{d['queries']} reference SQL queries and {d['questions']} questions of the "
                 f"eval cases, {d['reps']} times.")]
    return out




def _render_verify(r: dict[str, Any]) -> list[str]:
    raw, best = r["verify_step_ms"], r["verify_step_ms_best_of_runs"]
    out = [(f"- Gold answers: **{r['false_rejections']} false rejections** in "
            f"{r['gold_answer_turns']} answered turns ({r['gold_runs']} runs of every bundled "
            "case through `run_turn` with the gold model)."),
           (f"- Mutated reference answers: **{r['caught']} of {r['mutants']} caught "
            f"({r['catch_rate']:.1%})** (seed {r['seed']})."), "",
           _row("mutation", "caught", "missed"), _row("---", "--:", "--:")]
    for kind, d in r["by_kind"].items():
        out.append(_row(kind, d.get("caught", 0), d.get("missed", 0)))
    out += ["", _row("verify step, own ms", "n", "p50", "p95", "p99", "max"),
            _row("---", "--:", "--:", "--:", "--:", "--:"),
            _row("each turn, every run (raw)", raw["n"], raw["p50"], raw["p95"], raw["p99"],
                 raw["max"]),
            _row("each turn's fastest run", best["n"], best["p50"], best["p95"], best["p99"],
                 best["max"])]
    if r["missed"]:
        out += ["", "Missed: " + "; ".join(f"{m['case']} ({m['kind']}): “{m['mutant']}”"
                                           for m in r["missed"][:5])]
    return out


def _render_sqlwall(r: dict[str, Any]) -> list[str]:
    out = [_row("", "p50 ms", "p95 ms", "p99 ms"), _row("---", "--:", "--:", "--:")]
    for label, key in (("in process (before issue 10)", "in_process_ms"),
                       ("worker pool", "worker_pool_ms"), ("added, pairwise", "added_ms_pairwise")):
        out.append(_row(label, r[key]["p50"], r[key]["p95"], r[key]["p99"]))
    out += ["", f"Added at the median: {r['added_p50_ms']} ms over {r['queries']} queries "
            f"({r['distinct_sql']} eval reference queries, interleaved).", "",
            _row("attack, guard bypassed", "stopped in s", "outcome"), _row("---", "--:", "---")]
    for name, x in r["attacks_guard_bypassed"].items():
        out.append(_row(name, x["seconds"], x["outcome"]))
    out += ["", f"Limits {r['attack_limits']}; workers replaced {r['workers_replaced']}; the "
            f"bot process's peak RSS {r['bot_peak_rss_mib_during_attacks']} MiB. A worker maps "
            f"{r.get('worker_mapped_at_open_mib')} MiB once the warehouse is open; its "
            f"RLIMIT_AS with the 1GB limit: {r.get('worker_rlimit_as_mib')} MiB."]
    return out


def _render_slack_attack(r: dict[str, Any]) -> list[str]:
    a = r["attack"]
    return [_row("ack p50 ms", "ack p99 ms", "answered", "exactly once", "oversized bodies",
                 "idle re-opened", "bot peak RSS MiB"),
            _row("--:", "--:", "--:", "--:", "---", "--:", "--:"),
            _row(r["ack_ms"]["p50"], r["ack_ms"]["p99"], f"{r['answered']}/{r['mentions']}",
                 r["answered_exactly_once"], ", ".join(map(str, a["oversized_statuses"])),
                 a["idle_reopened"], a["bot_peak_rss_mib"]),
            "", (f"{r['mentions']} signed mentions at once, fake LLM 0.5 s a call, 8 workers, "
                 "while another process holds 200 idle connections (re-opened when dropped) "
                 "and streams 4 unsigned bodies announcing 400 MB.")]


def _render_charts(r: dict[str, Any]) -> list[str]:
    out = [_row("turn", "n", "p50 ms", "p95 ms", "p99 ms", "max ms"),
           _row("---", "--:", "--:", "--:", "--:", "--:")]
    for label, key in (("a chart is drawn (choice + drawing + PNG), every run", "chart_ms"),
                       ("a chart is drawn, each result's fastest run", "chart_ms_best_of_runs"),
                       ("no chart (the choice alone)", "no_chart_ms")):
        if key in r:  # an older result may lack the fastest-run figure
            d = r[key]
            out.append(_row(label, d["n"], d["p50"], d["p95"], d["p99"], d["max"]))
    kinds = ", ".join(f"{k} {n}" for k, n in sorted(r["kinds"].items()))
    out += ["", (f"{r['results']} results (every bundled answer case's reference result and the "
                 f"three README examples), {r['repeat']} times each; {r['charted']} deserve a "
                 f"chart ({kinds}). The first chart of a process costs "
                 f"{r['cold_first_chart_ms']} ms (matplotlib's import and font cache).")]
    return out


def _render_replicas(r: dict[str, Any]) -> list[str]:
    out = [_row("store", "ack p50 ms", "ack p99 ms", "ack max ms", "one ack alone ms",
                "answered"), _row("---", "--:", "--:", "--:", "--:", "--:")]
    for a in r["ack"]:
        out.append(_row(a["store"], a["ack_ms"]["p50"], a["ack_ms"]["p99"], a["ack_ms"]["max"],
                        a["one_at_a_time_ack_ms_p50"], f"{a['answered']}/{a['mentions']}"))
    out += ["", _row("processes", "turns", "seconds", "turns/s"), _row("--:", "--:", "--:",
                                                                          "--:")]
    for t in r["throughput"]:
        out.append(_row(t["processes"], t["turns"], t["seconds"], t["turns_per_s"]))
    k = r["takeover"]
    out += ["", (f"{r['mentions']} signed mentions at once, each written to the inbox before "
                 f"its 200. Throughput: real `fundbot slack` processes (8 workers each) on one "
                 f"PostgreSQL store, fake LLM {r['llm_seconds_per_call']} s a call, 2 calls a "
                 f"turn. Takeover: one of two processes SIGKILLed holding "
                 f"{k['leased_by_the_dead_process']} leased questions; the survivor had them "
                 f"all {k['picked_up_after_s']} s later (lease {k['lease_s']:g} s) and every "
                 f"question was answered {k['all_answered_after_s']} s after the kill.")]
    return out


def _render_verified(r: dict[str, Any]) -> list[str]:
    from bench import verified

    return verified.render(r, _row)
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


RENDER = {
    "overhead": _render_overhead,
    "economy": _render_economy,
    "scale": _render_scale,
    "slack": _render_slack,
    "eval": _render_eval,
    "mcp": _render_mcp,
    "exits": _render_exits,
    "wide": _render_wide,
    "verify": _render_verify,
    "charts": _render_charts,
    "sqlwall": _render_sqlwall,
    "slack_attack": _render_slack_attack,
    "replicas": _render_replicas,
    "verified": _render_verified,
    "spark": _render_spark,
}


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
    if name == "verify":
        return [("verify: 0 false rejections on gold answers", str(r["false_rejections"]),
                 _ok(met.get("false_rejections"))),
                ("verify: ≥ 99 % of ≥ 200 mutated answers caught",
                 f"{r['caught']}/{r['mutants']} ({r['catch_rate']:.1%})",
                 _ok(met.get("catch_rate"))),
                ("verify step p95 ≤ 2 ms",
                 (f"{r['verify_step_ms_best_of_runs']['p95']} ms (fastest run per turn; "
                  f"raw {r['verify_step_ms']['p95']} ms)"), _ok(met.get("p95_ms")))]
    if name == "sqlwall":
        return [("SQL worker pool: added p50 ≤ 2 ms", f"{r['added_p50_ms']} ms",
                 _ok(met.get("added_p50"))),
                ("attacks past the guard stopped ≤ limit + 2 s",
                 ", ".join(f"{x['seconds']} s" for x in r["attacks_guard_bypassed"].values()),
                 _ok(met.get("attacks_stopped")))]
    if name == "slack_attack":
        return [("under attack: ack p99 ≤ 100 ms, all answered once, 413s",
                 (f"p99 {r['ack_ms']['p99']} ms, {r['answered_exactly_once']}/{r['mentions']}, "
                  f"{r['attack']['bot_peak_rss_mib']} MiB peak"),
                 _ok(all(met.values())))]
    if name == "charts":
        best = r.get("chart_ms_best_of_runs", {}).get("p95", "–")
        return [("chart per turn p95 ≤ 300 ms", f"{r['chart_ms']['p95']} ms (each result's "
                 f"fastest run: {best} ms)",
                 _ok(met.get("chart_p95"))),
                ("turn with no chart: no drawing", f"{r['no_chart_ms']['p95']} ms p95 (choice "
                 "only)", _ok(met.get("no_chart_p95")))]
    if name == "replicas":
        rows = [(f"ack p99 ≤ 100 ms with the inbox write on {a['store']}",
                 f"p99 {a['ack_ms']['p99']} ms, {a['answered']}/{a['mentions']} answered",
                 _ok(met.get(f"ack_p99_{a['store']}"))) for a in r["ack"]]
        tp = {t["processes"]: t["turns_per_s"] for t in r["throughput"]}
        rows.append(("(no target) turns/s, 1 → 2 processes, 2 s LLM",
                     f"{tp.get(1)} → {tp.get(2)}", "ok"))
        rows.append(("dead process's work picked up ≤ 60 s",
                     f"{r['takeover']['picked_up_after_s']} s", _ok(met.get(
                         "takeover_within_60_s"))))
        return rows
    if name == "eval":
        at = {x["concurrency"]: x for x in r["runs"]}
        if 1 in at and 8 in at:
            return [("eval: concurrency 8 < ¼ of serial",
                     (f"{at[8]['wall_s']} s vs {at[1]['wall_s']} s "
                     f"({at[8]['share_of_serial']})"), _ok(met.get("c8_under_quarter")))]
    if name == "mcp":
        return [(f"MCP protocol overhead of an ask p50 ≤ {r['targets']['mcp_p50_ms']:g} ms "
                 f"({k.removeprefix('mcp_')})", f"{r['modes'][k]['mcp_ms']['p50']} ms",
                 _ok(met.get(f"{k}_p50"))) for k in ("mcp_stdio", "mcp_http")]
    if name == "wide":
        gp = r["guard_plus_pruning_ms"]["60"]
        return [("own time per turn, 60 vs 6 tables ≤ 1.2×",
                 f"{r['own_ratio_60_to_6']['p50']}× p50", _ok(met.get("own_p50_ratio"))),
                ("guard + pruning p95 ≤ 3 ms at 60 tables (inside turns)",
                 f"{gp['p95']} ms ({r['guard_plus_pruning_ms']['6']['p95']} ms at 6 tables)",
                 _ok(met.get("guard_plus_pruning_p95"))),
                ("guard + pruning p95 ≤ 3 ms at 60 tables (each turn's fastest of 4 runs)",
                 f"{r['direct_ms'].get('guard_plus_pruning_60_fastest', {}).get('p95', '–')} ms",
                 _ok(met.get("guard_plus_pruning_p95_fastest")))]
    if name == "exits":
        return [(f"`fundbot sql --json` × {r['runs']}: 0 non-zero exits",
                 f"{r['nonzero_exits']} non-zero, exit codes {r['exit_codes']}",
                 _ok(met.get("no_nonzero_exit")))]
    if name == "verified":
        return [(f"verified queries: top-3 retrieval ≥ {r['targets']['top3_hit_rate']:.0%}",
                 f"{r['top3_hit_rate']:.1%} of {r['paraphrases']} paraphrases",
                 _ok(met.get("top3_hit_rate"))),
                (f"verified queries: wrong matches ≤ {r['targets']['wrong_match_rate']:.0%}",
                 f"{r['wrong_match_rate']:.1%} of {r['near_misses']} near misses",
                 _ok(met.get("wrong_match_rate")))]
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


def results_in_doc(text: str) -> dict[str, Any]:
    """The results the document already shows (each block keeps its JSON), by benchmark."""
    found = {}
    for name in ORDER:
        m = re.search(rf"<!-- bench:{name} .*?```json\n(.*?)\n```.*?<!-- /bench:{name} -->",
                      text, re.DOTALL)
        if m:
            try:
                found[name] = {"result": json.loads(m.group(1))}
            except ValueError:
                pass
    return found


def write_doc(results: dict[str, Any], path: Path = DOC) -> None:
    """Replace each benchmark's generated block in the document, keeping the prose around;
    the summary keeps the rows of benchmarks not run this time (from their blocks' JSON)."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    summary = re.compile(r"<!-- bench:summary .*?<!-- /bench:summary -->", re.DOTALL)
    if summary.search(text):
        shown = {**results_in_doc(text), **results}
        text = summary.sub(lambda _m: render_summary(shown), text)
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
