"""MCP overhead: the same turn in-process and as an `ask` over MCP (stdio and streamable HTTP).

    python -m bench.run --only mcp            # 300 calls a path; --quick: 50

One question, each turn in a new thread, answered by a fake LLM in its own process at latency 0
(fixed SQL and answer: understand, execute, interpret, 2 LLM calls) on the sample warehouse.
In-process: `run_turn` with the ports `fundbot` builds from its configuration. Over MCP:
`fundbot mcp` as a child process (stdio, then `--http` on loopback with a bearer token), called
by the `mcp` client SDK. The server returns the turn's timings in the result (`timings_ms`), so
for each call:

- own = wall time at the caller minus the time inside LLM calls (what `run_turn` calls "own");
- MCP = wall time at the client minus the turn's total inside the server: JSON-RPC framing, the
  transport, the SDK's argument and output validation, our output conversion, the thread check.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import API_KEY, dist, gold_process, scratch, warehouse

QUESTION = "How many companies do we hold?"
SQL = "SELECT count(*) AS companies FROM companies"
ANSWER = "We hold 400 companies."
TOKEN = "bench-token-not-a-secret-0123456789"
TARGET_MCP_P50_MS = 20.0  # an ask waits seconds for the model; the protocol should not show


def _env(db: Path, state: Path, base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "OPENAI_", "FUNDBOT_"))}
    env.update({"FUNDBOT_ENV_FILE": str(state.with_name("none.env")), "FUNDBOT_DB": str(db),
                "FUNDBOT_STATE": str(state), "OPENAI_BASE_URL": base_url,
                "OPENAI_API_KEY": API_KEY, "FUNDBOT_LLM_RETRIES": "0",
                "FUNDBOT_MCP_RATE": "1000000/minute", "FUNDBOT_MCP_TOKEN": TOKEN})
    return env


def _in_process(env: dict[str, str], n: int) -> list[dict[str, Any]]:
    from bot.config import load_config
    from bot.runtime import build_deps
    from states.machine import run_turn

    deps = build_deps(load_config(env))
    rows = []
    for i in range(n):
        t0 = time.perf_counter()
        r = run_turn(deps, f"bench-{i}", QUESTION, user="bench")
        wall = (time.perf_counter() - t0) * 1000
        rows.append({"wall": wall, "total": r.timings_ms["total"], "llm": r.timings_ms["llm"],
                     "ok": r.state == "answered" and r.llm_calls == 2})
    deps.store.close()
    return rows


async def _asks(client: Any, n: int) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        t0 = time.perf_counter()
        res = await client.call_tool("ask", {"question": QUESTION})
        wall = (time.perf_counter() - t0) * 1000
        out = res.structured_content or {}
        timings = out.get("timings_ms", {})
        rows.append({"wall": wall, "total": timings.get("total", float("nan")),
                     "llm": timings.get("llm", float("nan")),
                     "ok": not res.is_error and out.get("state") == "answered"
                     and out.get("llm_calls") == 2})
    return rows


def _over_stdio(env: dict[str, str], n: int) -> list[dict[str, Any]]:
    from mcp import Client, StdioServerParameters

    params = StdioServerParameters(command=str(Path(sys.executable).with_name("fundbot")),
                                   args=["mcp"], env=env)

    async def go() -> list[dict[str, Any]]:
        async with Client(params) as client:
            return await _asks(client, n)

    return asyncio.run(go())


def _over_http(env: dict[str, str], n: int) -> list[dict[str, Any]]:
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    from tests.test_run_slack import free_port, wait_healthy

    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("fundbot")), "mcp", "--http",
                             "--port", str(port)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    async def go() -> list[dict[str, Any]]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        timeout = httpx2.Timeout(30, read=300)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http, \
                Client(streamable_http_client(f"http://127.0.0.1:{port}/mcp",
                                              http_client=http)) as client:
            return await _asks(client, n)

    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        return asyncio.run(go())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)


def _summary(rows: list[dict[str, Any]], over_mcp: bool) -> dict[str, Any]:
    out = {"calls": len(rows), "answered_with_2_llm_calls": sum(r["ok"] for r in rows),
           "wall_ms": dist([r["wall"] for r in rows]),
           "own_ms": dist([r["wall"] - r["llm"] for r in rows]),
           "llm_ms": dist([r["llm"] for r in rows])}
    if over_mcp:
        out["mcp_ms"] = dist([r["wall"] - r["total"] for r in rows])
    return out


def run(turns: int = 200, warmup: int = 10) -> dict[str, Any]:
    db, _ = warehouse(1.0)
    modes: dict[str, Callable[[dict[str, str], int], list[dict[str, Any]]]] = {
        "in_process": _in_process, "mcp_stdio": _over_stdio, "mcp_http": _over_http}
    result: dict[str, Any] = {"benchmark": "mcp_overhead", "question": QUESTION,
                              "turns": turns, "warmup_turns": warmup, "modes": {}}
    with scratch() as work, gold_process(latency=0.0, fixed=(SQL, ANSWER)) as gold:
        for name, measure in modes.items():
            env = _env(db, work / f"{name}.sqlite3", gold.base_url)
            rows = measure(env, warmup + turns)[warmup:]
            result["modes"][name] = _summary(rows, over_mcp=name != "in_process")
    m = result["modes"]
    base = m["in_process"]["own_ms"]["p50"]
    result["extra_own_ms_p50"] = {k: round(m[k]["own_ms"]["p50"] - base, 2)
                                  for k in ("mcp_stdio", "mcp_http")}
    result["targets"] = {"mcp_p50_ms": TARGET_MCP_P50_MS}
    result["met"] = {
        **{f"{k}_p50": m[k]["mcp_ms"]["p50"] <= TARGET_MCP_P50_MS
           for k in ("mcp_stdio", "mcp_http")},
        "every_call_answered": all(v["answered_with_2_llm_calls"] == v["calls"]
                                   for v in m.values())}
    return result

