"""What the process wall costs per query, and what it stops.

    python -m bench.sqlwall [--queries N]

Every eval reference query runs on the sample warehouse (scale 1) two ways, interleaved:
in process as before issue 10 (the guard, then DuckDB on a sandboxed connection in this
process) and through `DuckWarehouse.execute` (the same guard and DuckDB in a warm worker
process behind OS limits). The added cost is the difference of the medians. Then a few of
tests/test_resource_attacks.py's attacks bypass the guard and meet the wall: the time each
took to be stopped, and this process's peak resident memory meanwhile.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from bench.common import dist, warehouse

ATTACKS = {  # the guard bypassed: only the wall stops these
    "nested replace (1 GB string)": "SELECT length(replace(replace(repeat('x',1000),'x',"
                                    "repeat('x',1000)),'x',repeat('x',1000)))",
    "1,001 rows of 1 MB": "SELECT replace(repeat('x',1000),'x',repeat('y',1000)) FROM valuations",
    "NATURAL JOIN x150 (planner)": "SELECT count(*) FROM funds f0 " + " ".join(
        f"NATURAL JOIN funds f{i}" for i in range(1, 150)),
    "cross join (time)": "SELECT count(*) FROM valuations a, valuations b, valuations c",
}


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run(queries: int = 600) -> dict[str, Any]:
    import duckdb

    from bot.sqlworker import HEADROOM, memory_bytes
    from bot.warehouse import QueryErrors, connect, open_warehouse
    from eval.cases import load_cases
    from states.guard import check
    from states.ports import Limits, QueryError

    db, _ = warehouse(1.0)
    limits = Limits()
    sqls = [t.sql for c in load_cases() for t in c.turns if getattr(t, "sql", None)]
    wh = open_warehouse(str(db), limits)
    con = connect(str(db), limits)
    errors = QueryErrors(str(db), limits)

    def in_process(sql: str) -> None:
        cur = con.cursor()
        try:
            cur.execute(check(sql, wh.catalog, limits.max_rows))
            cur.fetchmany(limits.max_rows + 1)
        except duckdb.Error as exc:
            errors.from_duckdb(exc, False)
        finally:
            cur.close()

    def pooled(sql: str) -> None:
        try:
            wh.execute(sql)
        except QueryError:
            pass

    for sql in sqls:  # warm both paths
        in_process(sql)
        pooled(sql)
    base_ms: list[float] = []
    wall_ms: list[float] = []
    for i in range(queries):
        sql = sqls[i % len(sqls)]
        for fn, out in ((in_process, base_ms), (pooled, wall_ms)):
            t0 = time.perf_counter()
            fn(sql)
            out.append((time.perf_counter() - t0) * 1000)
    caps = wh.pool.address_spaces()
    con.close()
    wh.close()
    added = [w - b for w, b in zip(wall_ms, base_ms, strict=True)]

    tight = Limits(query_timeout_s=2.0, memory_limit="256MB")
    wh = open_warehouse(str(db), tight)
    Path("/proc/self/clear_refs").write_text("5")
    stops: dict[str, Any] = {}
    for name, sql in ATTACKS.items():
        t0 = time.perf_counter()
        # both workers warm (a replaced one starts again): the stop time alone is measured
        wh.execute("SELECT 1 AS ready FROM funds LIMIT 1")
        wh.execute("SELECT 1 AS ready FROM funds LIMIT 1")
        ready_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        try:
            res = wh.sandbox_execute(sql)
            outcome = f"{len(res.rows)} rows" + (" (cut)" if res.truncated else "")
        except QueryError as exc:
            outcome = exc.kind + (": memory" if "memory" in exc.message else "")
        stops[name] = {"seconds": round(time.perf_counter() - t0, 2), "outcome": outcome,
                       "warm_workers_before_s": round(ready_s, 2)}
    replaced = wh.pool.replaced
    wh.close()
    p50_base, p50_wall = dist(base_ms, 3)["p50"], dist(wall_ms, 3)["p50"]
    result = {
        "benchmark": "sql_process_wall", "queries": queries, "distinct_sql": len(sqls),
        "in_process_ms": dist(base_ms, 3), "worker_pool_ms": dist(wall_ms, 3),
        "added_ms_pairwise": dist(added, 3),
        "added_p50_ms": round(p50_wall - p50_base, 3),
        "attacks_guard_bypassed": stops, "attack_limits": {
            "query_timeout_s": tight.query_timeout_s, "memory_limit": tight.memory_limit},
        # RLIMIT_AS = what a worker maps once the warehouse is open + memory_limit + HEADROOM
        "worker_rlimit_as_mib": sorted({round(c / 2**20) for c in caps}),
        "worker_mapped_at_open_mib": sorted({round((c - memory_bytes(limits.memory_limit)
                                                    - HEADROOM) / 2**20) for c in caps}),
        "workers_replaced": replaced, "bot_peak_rss_mib_during_attacks": round(_vm_hwm_mib(), 1),
        "targets": {"added_p50_ms": 2.0, "stopped_within_s": tight.query_timeout_s + 2},
    }
    result["met"] = {
        "added_p50": result["added_p50_ms"] <= 2.0,
        "attacks_stopped": all(s["seconds"] <= tight.query_timeout_s + 2 for s in stops.values()),
    }
    return result


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--queries", type=int, default=600)
    print(json.dumps(run(p.parse_args().queries), indent=2))
