"""Turn overhead: our own time per turn with an instant LLM, by part, and LLM calls per outcome.

    python -m bench.overhead [--turns 1000]

The eval cases' questions, turn by turn (each case in a fresh thread, cycled until `turns`
turns are done, after a short warm-up), through `run_turn` with production Limits, the real
DuckWarehouse on the sample warehouse (scale 1), the real SqliteStore and the real openai
client against FakeOpenAI at latency 0 answering as the gold model (reference SQL for
understand, the templated answer for interpret), served from a child process as a real
endpoint would be. "own" = the turn's wall time minus the time
spent inside LLM calls (request building, HTTP and parsing included there).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from bench.common import RoutedChat, dist, gold_process, scratch, warehouse

PARTS = ("resolve", "prompt", "guard", "duckdb", "store")
TARGETS = {"p50_ms": 20.0, "p95_ms": 50.0}


def _kind(r: Any, pending_kind: str | None, trace: Any) -> str:
    """What sort of turn this was, for the per-kind figures."""
    if r.state == "clarify":
        return "clarify_entity" if pending_kind == "entity" else "clarify_llm"
    if r.refused or r.error_kind == "refused":
        return "refuse"
    if r.state == "answered" and r.sql:
        purposes = [c.purpose for c in trace.llm_calls] if trace else []
        if "understand" not in purposes:
            return "answer_pasted_sql"  # the user's own SELECT: no understand call
        states = [s.state for s in trace.steps]
        if states[:1] == ["clarify"]:  # the reply to a clarification: its own wait step first
            states = states[1:]
        return ("answer" if states == ["understand", "execute", "interpret", "verify"]
                else "answer_debugged")
    return r.state


def run(turns: int = 1000, warmup: int = 30) -> dict[str, Any]:
    db, built_s = warehouse(1.0)
    got = measure({"sample": (db, None)}, turns, warmup)["sample"]
    return summarise(got, warmup, f"sample, scale 1 ({db.name})", built_s)


def measure(variants: dict[str, tuple[Any, dict[str, Any] | None]], turns: int,
            warmup: int) -> dict[str, dict[str, Any]]:
    """The eval turns through each variant's warehouse (path, docs); with several, each turn
    runs on every variant in a row, so a machine's changing load weighs on all alike."""
    from bot.store import SqliteStore
    from bot.warehouse import open_warehouse
    from eval.cases import DEFAULT_TODAY, load_cases
    from states.machine import Deps, run_turn
    from states.ports import Limits

    cases = load_cases()
    limits = Limits()
    out: dict[str, dict[str, Any]] = {}
    with scratch() as work, gold_process(latency=0.0) as gold:
        bases = {}
        for label, (db, docs) in variants.items():
            wh = open_warehouse(str(db), limits, docs)
            store = SqliteStore(work / f"state-{label}.sqlite3")
            bases[label] = Deps(llm=None, warehouse=wh, store=store,  # type: ignore[arg-type]
                                limits=limits)
            out[label] = {"rows": [], "wall": 0.0, "tables": len(wh.catalog.tables),
                          "cases": len(cases)}
        clients = {c.id: RoutedChat(c.id, gold.base_url) for c in cases}
        rep, done = 0, 0
        while done < warmup + turns:
            for case in cases:
                for i, spec in enumerate(case.turns):
                    if done >= warmup + turns:
                        break
                    for label, base in bases.items():
                        deps = replace(base, llm=clients[case.id],
                                       today=case.today or DEFAULT_TODAY)
                        thread = f"bench-{label}-{rep}-{case.id}"
                        clients[case.id].turn = i
                        t0 = time.perf_counter()
                        r = run_turn(deps, thread, spec.question, user="bench")
                        out[label]["wall"] += time.perf_counter() - t0
                        # outside the timing: what kind of turn it was
                        conv = base.store.load(thread)
                        pending = conv.pending.kind if conv.pending else None
                        trace = base.store.get_trace(r.trace_id)
                        out[label]["rows"].append({
                            "case": case.id, "expect": spec.expect,
                            "kind": _kind(r, pending, trace), "state": r.state,
                            "llm_calls": r.llm_calls, "t": dict(r.timings_ms)})
                    done += 1
                if done >= warmup + turns:
                    break
            rep += 1
        for c in clients.values():
            c.close()
        for base in bases.values():
            base.store.close()
            base.warehouse.close()
    return out


def summarise(got: dict[str, Any], warmup: int, what: str,
              built_s: float | None = None) -> dict[str, Any]:
    rows, wall = got["rows"], got["wall"]
    cold = rows[0]["t"]["own"]
    measured = rows[warmup:]
    own = [r["t"]["own"] for r in measured]
    parts = {p: dist([r["t"].get(p, 0.0) for r in measured]) for p in PARTS}
    rest = [r["t"]["own"] - sum(r["t"].get(p, 0.0) for p in PARTS) for r in measured]
    parts["other"] = dist(rest)
    # what depends on the catalogue's size: the guard and prompt building (schema pruning)
    guard_prune = dist([r["t"].get("guard", 0.0) + r["t"].get("prompt", 0.0) for r in measured])
    by_kind: dict[str, Any] = {}
    for kind in sorted({r["kind"] for r in measured}):
        sel = [r for r in measured if r["kind"] == kind]
        by_kind[kind] = {"own_ms": dist([r["t"]["own"] for r in sel]),
                         "llm_calls": dict(Counter(r["llm_calls"] for r in sel))}
    happy = [r for r in measured if r["kind"] == "answer"]
    entity = [r for r in measured if r["kind"] == "clarify_entity"]
    own_d = dist(own)
    return {
        "benchmark": "turn_overhead",
        "turns": len(measured), "warmup_turns": warmup, "cases": got["cases"],
        "warehouse": what, "wall_s": round(wall, 2),
        "own_ms": own_d,
        "cold_first_turn_own_ms": round(cold, 2),
        "parts_ms": parts,
        "guard_plus_pruning_ms": guard_prune,
        "tables": got["tables"],
        "llm_roundtrip_ms_at_latency_0": dist([r["t"]["llm"] / max(1, r["llm_calls"])
                                               for r in measured if r["llm_calls"]]),
        "by_kind": by_kind,
        "happy_path": {"turns": len(happy),
                       "llm_calls": dict(Counter(r["llm_calls"] for r in happy)),
                       "all_exactly_2": all(r["llm_calls"] == 2 for r in happy)},
        "ambiguous_name_clarification": {
            "turns": len(entity), "llm_calls": dict(Counter(r["llm_calls"] for r in entity)),
            "all_zero": bool(entity) and all(r["llm_calls"] == 0 for r in entity)},
        "targets": {"own_p50_ms": TARGETS["p50_ms"], "own_p95_ms": TARGETS["p95_ms"]},
        "met": {"own_p50": own_d["p50"] <= TARGETS["p50_ms"],
                "own_p95": own_d["p95"] <= TARGETS["p95_ms"],
                "happy_path_2_calls": bool(happy) and all(r["llm_calls"] == 2 for r in happy),
                "entity_clarify_0_calls": bool(entity)
                and all(r["llm_calls"] == 0 for r in entity)},
        "warehouse_build_s": round(built_s, 1) if built_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--turns", type=int, default=1000)
    args = p.parse_args(argv)
    result = run(args.turns)
    print(json.dumps(result, indent=2))
    return 0 if all(result["met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
