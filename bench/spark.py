"""Spark beside DuckDB: every eval reference SQL at the 10M-row scale on both engines.

    python -m bench.spark [--scale 350] [--repeat 1] [--driver-memory 2g]

DuckDB's side is `bench.scale` (a child process on 2 cores, production limits). Spark's side
is a local Spark Connect server from the pyspark wheel (`local[2]`, the given driver memory),
loaded with the same generated warehouse through `schemas.spark_load.copy_tables` (Arrow
batches over Spark Connect), queried through the real `SparkWarehouse.execute` (guard in the
Spark dialect, tags, row cap) with the reference SQL transpiled by sqlglot. Memory on Spark is
the server JVM's peak RSS (VmHWM) plus the client's; the time limit is raised to 120 s so
slow queries are measured rather than cut.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import dist, warehouse

TIMEOUT_S = 120.0


def _group_peak_rss_kib(pgid: int) -> int:
    """The largest VmHWM (peak RSS) among the processes of a process group: the JVM's."""
    peak = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            for line in (stat.parent / "status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            continue
    return peak


def _spark_side(path: Path, repeat: int, driver_memory: str) -> dict[str, Any]:
    from bench.scale import _queries
    from bot.spark_server import LocalSparkConnect
    from bot.spark_warehouse import SparkWarehouse, connect
    from schemas.spark_load import copy_tables
    from states.dialects import transpile
    from states.ports import Limits, QueryError

    with tempfile.TemporaryDirectory(prefix="fundbot-bench-spark-") as tmp:
        server = LocalSparkConnect(tmp, driver_memory=driver_memory)
        t0 = time.perf_counter()
        server.start()
        start_s = time.perf_counter() - t0
        try:
            t0 = time.perf_counter()
            spark = connect(server.url)
            try:
                counts = copy_tables(spark, path)
            finally:
                spark.stop()
            load_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            wh = SparkWarehouse(server.url, Limits(query_timeout_s=TIMEOUT_S))
            wh.resolve("warm the value dictionaries")
            open_s = time.perf_counter() - t0
            out = []
            try:
                for cid, sql in _queries():
                    runs, error, rows = [], "", 0
                    spark_sql = transpile(sql, wh.dialect)
                    for _ in range(1 + repeat):
                        t = time.perf_counter()
                        try:
                            rows = len(wh.execute(spark_sql).rows)
                        except QueryError as exc:
                            error = f"{exc.kind}: {exc.message[:200]}"
                        runs.append(time.perf_counter() - t)
                        if error:
                            break
                    warm = sorted(runs[1:])[len(runs[1:]) // 2] if len(runs) > 1 else runs[0]
                    out.append({"case": cid, "cold_s": runs[0], "warm_s": warm, "rows": rows,
                                "error": error})
                    print(f"spark {cid}: {runs[0]:.2f} s {error}", file=sys.stderr, flush=True)
            finally:
                wh.close()
            jvm_kib = _group_peak_rss_kib(server.proc.pid) if server.proc else 0
        finally:
            server.stop()
    return {"counts": counts, "start_s": start_s, "load_s": load_s, "open_s": open_s,
            "queries": out, "jvm_peak_rss_kib": jvm_kib,
            "client_peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}


def run(scale: float = 350, repeat: int = 1, driver_memory: str = "2g") -> dict[str, Any]:
    from bench import scale as duck_bench

    duck = duck_bench.run(scale, repeat)
    path, _ = warehouse(scale, via_cli=True)
    s = _spark_side(path, repeat, driver_memory)
    qs = s["queries"]
    cold, warm = [q["cold_s"] for q in qs], [q["warm_s"] for q in qs]
    gib = 2**20
    return {
        "benchmark": "spark_beside_duckdb",
        "scale": scale, "rows": duck["rows"], "queries": len(qs), "repeat": repeat,
        "duckdb": {"cold_s": duck["cold_s"], "warm_s": duck["warm_s"],
                   "peak_rss_gib": duck["peak_rss_gib"], "errors": duck["errors"],
                   "limits": duck["limits"]},
        "spark": {"cold_s": dist(cold, 3), "warm_s": dist(warm, 3),
                  "server": f"local[2], driver memory {driver_memory}, shuffle partitions 2",
                  "server_start_s": round(s["start_s"], 1),
                  "load_s": round(s["load_s"], 1), "loaded_rows": s["counts"],
                  "open_s": round(s["open_s"], 2),
                  "jvm_peak_rss_gib": round(s["jvm_peak_rss_kib"] / gib, 3),
                  "client_peak_rss_gib": round(s["client_peak_rss_kib"] / gib, 3),
                  "limits": f"timeout {TIMEOUT_S:g} s, 1,000 rows",
                  "errors": [f"{q['case']}: {q['error']}" for q in qs if q["error"]],
                  "slowest_cold": [{"case": q["case"], "cold_s": round(q["cold_s"], 2)}
                                   for q in sorted(qs, key=lambda q: -q["cold_s"])[:5]]},
        "met": {"spark_no_errors": not any(q["error"] for q in qs)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scale", type=float, default=350)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--driver-memory", default="2g")
    args = p.parse_args(argv)
    result = run(args.scale, args.repeat, args.driver_memory)
    print(json.dumps(result, indent=2))
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
