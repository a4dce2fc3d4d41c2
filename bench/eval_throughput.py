"""Eval throughput: 80 cases with a fake LLM taking 1 s a call, at concurrency 1 and 8.

    python -m bench.eval_throughput [--cases 80] [--llm-seconds 1] [--concurrency 1,8]

Runs eval's own runner (`eval.runner.run_cases`, what `fundbot eval --concurrency N` calls)
over the first N cases of eval/cases.jsonl: the real core, DuckWarehouse on the sample
warehouse, SqliteStore, and the real openai client against FakeOpenAI answering as the gold
model, served from a child process with the given latency per call.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from bench.common import RoutedChat, gold_process, scratch, warehouse


def run(n_cases: int = 80, llm_seconds: float = 1.0,
        concurrency: tuple[int, ...] = (1, 8)) -> dict[str, Any]:
    from bot.store import SqliteStore
    from bot.warehouse import open_warehouse
    from eval.cases import load_cases
    from eval.runner import run_cases, summarize
    from states.ports import Limits

    cases = load_cases()[:n_cases]
    db, _ = warehouse(1.0)
    runs = []
    with scratch() as work, gold_process(latency=llm_seconds) as gold:
        wh = open_warehouse(str(db), Limits())
        for n in concurrency:
            store = SqliteStore(work / f"state-{n}.sqlite3")
            # built before the clock starts, as `fundbot eval` builds its one client
            clients = {c.id: RoutedChat(c.id, gold.base_url) for c in cases}
            records, wall = run_cases(cases, wh, store, lambda case, cl=clients: cl[case.id],
                                      concurrency=n)
            s = summarize(records)
            runs.append({"concurrency": n, "wall_s": round(wall, 2),
                         "llm_calls": s["llm_calls"], "passed": s["passed"],
                         "execution_accuracy": s["execution_accuracy"],
                         "lower_bound_s": round(s["llm_calls"] * llm_seconds / n, 1)})
            for c in clients.values():
                c.close()
            store.close()
        wh.close()
    serial = next((r["wall_s"] for r in runs if r["concurrency"] == 1), None)
    for r in runs:
        r["share_of_serial"] = round(r["wall_s"] / serial, 3) if serial else None
        r["speedup"] = round(serial / r["wall_s"], 2) if serial else None
    at8 = next((r for r in runs if r["concurrency"] == 8), None)
    return {
        "benchmark": "eval_throughput",
        "cases": len(cases), "llm_seconds_per_call": llm_seconds,
        "runs": runs,
        "target": "concurrency 8 well under a quarter of the serial time",
        "met": {"c8_under_quarter": bool(at8 and at8["share_of_serial"] is not None
                                         and at8["share_of_serial"] < 0.25),
                "all_passed": all(r["passed"] == len(cases) for r in runs)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=80)
    p.add_argument("--llm-seconds", type=float, default=1.0)
    p.add_argument("--concurrency", default="1,8")
    args = p.parse_args(argv)
    result = run(args.cases, args.llm_seconds,
                 tuple(int(x) for x in args.concurrency.split(",") if x.strip()))
    print(json.dumps(result, indent=2))
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
