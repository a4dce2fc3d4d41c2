"""`fundbot sql --json` started many times: every run must exit 0 (issue 9, item 1).

A DuckDB cursor still referenced by a thread at interpreter exit is destroyed during
shutdown, and DuckDB aborts the process (exit 134) after the output was printed. This loop
starts the real command as a user would and counts non-zero exits.

    python -m bench.exit_loop            # 200 runs on the sample warehouse
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.common import ROOT, dist, warehouse

QUERY = "SELECT count(*) FROM valuations"


def run(runs: int = 200) -> dict[str, Any]:
    db, _ = warehouse(1.0)
    fundbot = Path(sys.executable).with_name("fundbot")
    env = {**os.environ, "FUNDBOT_DB": str(db), "FUNDBOT_ENV_FILE": os.devnull}
    codes: Counter[int] = Counter()
    wrong_output = 0
    seconds: list[float] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run([str(fundbot), "sql", "--json", QUERY], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
        seconds.append(time.perf_counter() - t0)
        codes[done.returncode] += 1
        try:
            ok = json.loads(done.stdout)["rows"][0][0] > 0
        except (ValueError, KeyError, IndexError, TypeError):
            ok = False
        wrong_output += not ok
    nonzero = sum(n for code, n in codes.items() if code != 0)
    return {"benchmark": "exit_loop", "command": f"fundbot sql --json \"{QUERY}\"",
            "runs": runs, "exit_codes": {str(k): v for k, v in sorted(codes.items())},
            "nonzero_exits": nonzero, "wrong_output": wrong_output,
            "seconds_per_run": dist(seconds),
            "targets": {"nonzero_exits": 0},
            "met": {"no_nonzero_exit": nonzero == 0 and wrong_output == 0}}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 200), indent=2))
