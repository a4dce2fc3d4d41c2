"""Warehouse at scale: every eval reference SQL against >= 10M valuation rows; time and memory.

    python -m bench.scale [--scale 350] [--repeat 3]

The warehouse is built once with `fundbot db init --scale` into bench/.cache/ (reused while
the generator is unchanged). The queries run in a child process pinned to at most 2 cores,
through the real guarded `DuckWarehouse.execute` with production Limits (1 GB DuckDB memory
limit, 2 threads, 10 s timeout, 1,000-row cap); the child's peak RSS is its
`getrusage().ru_maxrss` plus the peaks of its SQL worker processes. Cold = the first run of
each query in a fresh process; warm = the median of the following runs.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any

from bench.common import ROOT, build_record, dist, warehouse

TARGET_P95_S = 1.0
TARGET_RSS_GIB = 2.0


def _queries() -> list[tuple[str, str]]:
    """(case id, SQL) for every distinct reference SQL of the eval cases."""
    from eval.cases import load_cases

    seen: dict[str, str] = {}
    for case in load_cases():
        for i, t in enumerate(case.turns):
            if t.sql and t.sql not in seen:
                seen[t.sql] = case.id + (f"#{i}" if len(case.turns) > 1 else "")
    return [(cid, sql) for sql, cid in seen.items()]


def _child(path: str, repeat: int) -> dict[str, Any]:
    from bot.warehouse import open_warehouse
    from states.ports import Limits, QueryError

    t0 = time.perf_counter()
    wh = open_warehouse(path, Limits())
    open_s = time.perf_counter() - t0
    rss_open = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = []
    for cid, sql in _queries():
        runs, error, rows = [], "", 0
        for _ in range(1 + repeat):
            t = time.perf_counter()
            try:
                res = wh.execute(sql)
                rows = len(res.rows)
            except QueryError as exc:
                error = f"{exc.kind}: {exc.message[:200]}"
            runs.append(time.perf_counter() - t)
            if error:
                break
        out.append({"case": cid, "cold_s": runs[0],
                    "warm_s": statistics.median(runs[1:]) if len(runs) > 1 else runs[0],
                    "rows": rows, "error": error})
    # DuckDB runs in the SQL worker processes: their peaks count too (summed, as if at once)
    workers_kib = sum(_peak_kib(pid) for pid in wh.pool.pids())
    wh.close()
    return {"open_s": open_s, "queries": out,
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + workers_kib,
            "rss_after_open_kib": rss_open}


def _peak_kib(pid: int) -> int:
    """A live process's peak resident memory (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)


def _pin_two_cores() -> None:
    try:
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, cores[:2])
    except (AttributeError, OSError):
        pass  # not Linux: the figures say how many cores there were


def run(scale: float = 350, repeat: int = 3) -> dict[str, Any]:
    import duckdb

    path, built_s = warehouse(scale, via_cli=True)
    built = build_record(path)
    con = duckdb.connect(str(path), read_only=True)
    try:
        counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                  for t in ("valuations", "investments", "companies", "funds")}
    finally:
        con.close()
    size_gib = path.stat().st_size / 2**30
    proc = subprocess.run([sys.executable, "-m", "bench.scale", "--child", str(path),
                           "--repeat", str(repeat)], cwd=ROOT, capture_output=True, text=True,
                          check=True, timeout=1800)
    child = json.loads(proc.stdout)
    qs = child["queries"]
    cold = [q["cold_s"] for q in qs]
    warm = [q["warm_s"] for q in qs]
    slowest = sorted(qs, key=lambda q: -q["cold_s"])[:5]
    rss_gib = child["peak_rss_kib"] / 2**20
    return {
        "benchmark": "warehouse_at_scale",
        "scale": scale, "rows": counts, "file_gib": round(size_gib, 2),
        "build": {"command": f"fundbot db init --scale {scale:g} --path {path.name}",
                  "seconds": built.get("seconds"), "peak_rss_gib": built.get("peak_rss_gib"),
                  "built": built.get("built"), "this_run": "built" if built_s else "cached"},
        "limits": "production Limits(): memory_limit 1GB, threads 2, timeout 10 s, 1,000 rows",
        "querying_process_cores": 2,
        "queries": len(qs), "errors": [f"{q['case']}: {q['error']}" for q in qs if q["error"]],
        "open_s": round(child["open_s"], 3),
        "cold_s": dist(cold, 3), "warm_s": dist(warm, 3),
        "slowest_cold": [{"case": q["case"], "cold_s": round(q["cold_s"], 3),
                          "warm_s": round(q["warm_s"], 3)} for q in slowest],
        "peak_rss_gib": round(rss_gib, 3),
        "rss_after_open_gib": round(child["rss_after_open_kib"] / 2**20, 3),
        "targets": {"p95_s": TARGET_P95_S, "peak_rss_gib": TARGET_RSS_GIB},
        "met": {"p95_cold": percentile_ok(cold), "p95_warm": percentile_ok(warm),
                "peak_rss": rss_gib <= TARGET_RSS_GIB,
                "no_errors": not any(q["error"] for q in qs),
                # a --quick run builds a small warehouse on purpose: no 10M claim then
                **({"valuations_10M": counts["valuations"] >= 10_000_000}
                   if scale >= 350 else {})},
    }


def percentile_ok(values: list[float]) -> bool:
    from bench.common import percentile

    return percentile(values, 95) <= TARGET_P95_S


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=350)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--child", help=argparse.SUPPRESS)  # the measured querying process
    args = p.parse_args(argv)
    if args.child:
        _pin_two_cores()
        print(json.dumps(_child(args.child, args.repeat)))
        return 0
    result = run(args.scale, args.repeat)
    print(json.dumps(result, indent=2))
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
