"""Our own time per turn at 6 and at 60 tables (issue 9, item 12).

    python -m bench.wide [--turns 400]

The turn-overhead loop (bench.overhead: eval questions, gold fake LLM in its own process,
real warehouse and store), each turn run on the sample warehouse (6 tables) and then on the
same warehouse widened to 60 tables (bench.wide_catalog, docs padded to the core tables'
density), so the machine's changing load weighs on both alike. What grows with the
catalogue is the guard (the catalogue's schema for sqlglot) and schema pruning (inside prompt
building); both should cost the same at 60 tables as at 6 once what depends only on the
catalogue is cached.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench import overhead
from bench.common import dist, scratch, warehouse

TARGETS = {"own_p50_ratio_60_to_6": 1.2, "guard_plus_pruning_p95_ms_at_60": 3.0}


def run(turns: int = 400, warmup: int = 30) -> dict[str, Any]:
    from bench.wide_catalog import widen
    from schemas.catalog import load_docs

    db, _ = warehouse(1.0)
    core = load_docs()
    with scratch() as work:
        wide_db = work / "wide.duckdb"
        wide_docs = widen(db, wide_db, core, dense_like=core)
        got = overhead.measure({"6": (db, None), "60": (wide_db, wide_docs)}, turns, warmup)
        direct = _direct(db, wide_db, wide_docs)
    at6 = overhead.summarise(got["6"], warmup, "sample, 6 tables")
    at60 = overhead.summarise(got["60"], warmup, "sample widened to 60 tables")
    ratio = {p: round(at60["own_ms"][p] / at6["own_ms"][p], 3) for p in ("p50", "p95", "mean")}
    gp = at60["guard_plus_pruning_ms"]
    return {
        "benchmark": "wide_catalog_overhead", "turns": turns,
        "tables": {"small": at6["tables"], "wide": at60["tables"]},
        "own_ms": {"6": at6["own_ms"], "60": at60["own_ms"]},
        "own_ratio_60_to_6": ratio,
        "guard_plus_pruning_ms": {"6": at6["guard_plus_pruning_ms"], "60": gp},
        "parts_ms": {"6": at6["parts_ms"], "60": at60["parts_ms"]},
        "direct_ms": direct,
        "targets": TARGETS,
        "met": {"own_p50_ratio": ratio["p50"] <= TARGETS["own_p50_ratio_60_to_6"],
                "guard_plus_pruning_p95": gp["p95"] <= TARGETS["guard_plus_pruning_p95_ms_at_60"],
                "guard_plus_pruning_p95_fastest": direct["guard_plus_pruning_60_fastest"]["p95"]
                <= TARGETS["guard_plus_pruning_p95_ms_at_60"]},
    }


def _direct(db: Any, wide_db: Any, wide_docs: dict[str, Any], reps: int = 5) -> dict[str, Any]:
    """The guard and pruning alone, outside a turn: each eval reference SQL checked against
    the 6- and the 60-table catalogue in turn, and each question pruned at 60 tables (the
    first pass sees every question's words for the first time: "cold")."""
    import time

    from bot.warehouse import open_warehouse
    from eval.cases import load_cases
    from states.guard import check
    from states.ports import Limits, QueryError
    from states.pruning import relevant_tables

    turns = [t for c in load_cases() for t in c.turns]
    sqls = [t.sql for t in turns if t.sql]
    guard: dict[str, list[float]] = {"6": [], "60": []}
    cold: list[float] = []
    warm: list[float] = []
    # each turn's guard + pruning at 60 tables, fastest of the repeats: what the code costs
    # without the time slices other processes take on a shared machine
    best: dict[int, float] = {}
    with open_warehouse(str(db), Limits()) as w6, \
            open_warehouse(str(wide_db), Limits(), wide_docs) as w60:
        cats = {"6": w6.catalog, "60": w60.catalog}
        for rep in range(reps):
            for sql in sqls:
                for label, cat in cats.items():
                    t0 = time.perf_counter()
                    try:
                        check(sql, cat, 1000)
                    except QueryError:
                        pass
                    guard[label].append((time.perf_counter() - t0) * 1000)
            for i, t in enumerate(turns):
                t0 = time.perf_counter()
                relevant_tables(cats["60"], t.question, [])
                t1 = time.perf_counter()
                if t.sql:
                    try:
                        check(t.sql, cats["60"], 1000)
                    except QueryError:
                        pass
                t2 = time.perf_counter()
                (cold if rep == 0 else warm).append((t1 - t0) * 1000)
                if rep:  # the first pass builds pruning's caches for each question's words
                    best[i] = min(best.get(i, float("inf")), (t2 - t0) * 1000)
    return {"guard_6": dist(guard["6"], 3), "guard_60": dist(guard["60"], 3),
            "pruning_60_cold": dist(cold, 3), "pruning_60_warm": dist(warm, 3),
            "guard_plus_pruning_60_fastest": dist(list(best.values()), 3),
            "queries": len(sqls), "questions": len(turns), "reps": reps}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=400)
    result = run(p.parse_args(argv).turns)
    print(json.dumps(result, indent=2))
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
