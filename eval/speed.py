"""How much running cases concurrently saves, with an LLM of fixed latency (for bench/).

    python -m eval.speed --latency 1 --cases 80 --concurrency 8

runs the first N bundled cases with the gold replay model slowed to `latency` seconds a
call, once serially and once at the given concurrency, on the sample warehouse (built in a
temporary directory unless --db is given), and prints both wall times and their ratio.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from eval.cases import Case, load_cases
from eval.gold import GoldLLM
from states.ports import Limits, LLMReply


class SlowGold(GoldLLM):
    """The gold model, answering after a fixed delay like a remote endpoint would."""

    latency_s = 1.0

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        time.sleep(self.latency_s)
        return super().complete(messages, tools, tool_choice)


def measure(db: str, cases: list[Case], latency_s: float, concurrency: int,
            workdir: str | Path) -> dict[str, Any]:
    """Wall seconds serially and at `concurrency`, and whether both runs scored the same."""
    from bot.store import SqliteStore
    from bot.warehouse import open_warehouse
    from eval.runner import run_cases, summarize

    slow = type("Slow", (SlowGold,), {"latency_s": latency_s})
    out: dict[str, Any] = {"cases": len(cases), "latency_s": latency_s,
                           "concurrency": concurrency}
    with open_warehouse(db, Limits()) as wh:
        for label, n in (("serial", 1), ("concurrent", concurrency)):
            with SqliteStore(Path(workdir) / f"{label}.sqlite3") as store:
                records, wall = run_cases(cases, wh, store, slow, concurrency=n)
            s = summarize(records)
            out[f"{label}_seconds"] = round(wall, 2)
            out[f"{label}_llm_calls"] = s["llm_calls"]
            out[f"{label}_execution_accuracy"] = s["execution_accuracy"]
    out["ratio"] = round(out["concurrent_seconds"] / out["serial_seconds"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.speed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--latency", type=float, default=1.0, help="seconds per LLM call")
    p.add_argument("--cases", type=int, default=80, help="how many bundled cases")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--db", help="warehouse (default: build the sample one)")
    args = p.parse_args(argv)
    cases = load_cases()[: args.cases]
    with tempfile.TemporaryDirectory() as tmp:
        if args.db:
            db = args.db
        else:
            from eval.make_cases import sample_warehouse

            db = sample_warehouse(tmp)
        print(json.dumps(measure(db, cases, args.latency, args.concurrency, tmp), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
