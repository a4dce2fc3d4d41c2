"""Slack load benchmark: N mentions at once over signed HTTP while the fake LLM is slow.

    python -m bench.slack_load [--mentions 100] [--llm-seconds 2] [--workers 8]

Everything real except the outside world: the app on a local port, the core, DuckDB and SQLite,
the openai client against tests/fakes/fake_openai.py, the Slack Web API emulator. Prints
acknowledgement latency (Slack wants < 3 s), how many questions were answered and how many
twice, and the wall time against what one worker would have needed.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bot.config import Config
from bot.runtime import build_deps
from bot.slack import HttpServer, create_app
from schemas.generate import build
from states.ports import Limits
from tests.fakes import fake_openai
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import FakeSlack, SlackSender

SECRET = "bench-signing-secret"
CHANNEL = "C0BENCH01"
SQL = "SELECT count(*) AS companies FROM companies"


def _responder(body: dict) -> fake_openai.Reply:
    # Understand gets tools and answers with SQL; interpret gets none and answers in words.
    if body.get("tools"):
        return fake_openai.tool_call(SQL)
    return fake_openai.text("We have that many portfolio companies.")


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def run(mentions: int, llm_seconds: float, workers: int, scale: float) -> dict:
    work = Path(tempfile.mkdtemp(prefix="fundbot-bench-"))
    db = work / "fund.duckdb"
    build(db, scale=scale)
    with FakeSlack() as slack, FakeOpenAI(responder=_responder, latency=llm_seconds) as llm:
        config = Config(openai_api_key="sk-bench", openai_base_url=llm.base_url,
                        db_path=str(db), state_path=str(work / "state.sqlite3"),
                        slack_bot_token=slack.token, slack_signing_secret=SECRET,
                        slack_api_url=slack.api_url, port=0, workers=workers,
                        limits=Limits(llm_retries=0, llm_timeout_s=llm_seconds + 30))
        deps = build_deps(config)
        app, dispatcher = create_app(config, deps)
        server = HttpServer(app, host="127.0.0.1", port=0, signing_secret=SECRET,
                            quiet=dispatcher.quiet).start()
        sender = SlackSender(server.url, SECRET)
        payloads = [sender.mention(CHANNEL, f"U{i:08d}", f"question {i}: how many companies?")
                    for i in range(mentions)]
        roots = {p["event"]["ts"] for p in payloads}

        def answered() -> set[str]:
            return {m.get("thread_ts") for m in slack.messages.get(CHANNEL, [])
                    if m.get("thread_ts") in roots and not m["text"].startswith(":hourglass")}

        # Slack sends from its own machines: the load comes from another process, so its
        # threads do not compete with the app for this interpreter's lock.
        start = time.monotonic()
        first = _blast(server.url, payloads, retry=None)
        # Slack re-delivers everything once mid-way, as it would after a network blip.
        retries = _blast(server.url, payloads, retry=1)
        slack.wait_for(lambda: len(answered()) == mentions,
                       timeout=llm_seconds * 2 * mentions + 60)
        total = time.monotonic() - start
        dispatcher.join(30)
        server.stop()
        dispatcher.shutdown()

        acks = [ms for _, ms in first]
        per_thread: dict[str, int] = {}
        for call in slack.calls_to("chat.update"):
            per_thread[call.args["ts"]] = per_thread.get(call.args["ts"], 0) + 1
        posts = slack.calls_to("chat.postMessage")
        turn_s = 2 * llm_seconds
        return {
            "mentions": mentions,
            "llm_seconds_per_call": llm_seconds,
            "workers": workers,
            "ack_ms": {"p50": round(statistics.median(acks), 1),
                       "p95": round(_percentile(acks, 95), 1),
                       "p99": round(_percentile(acks, 99), 1),
                       "max": round(max(acks), 1)},
            "ack_statuses": sorted({status for status, _ in first + retries}),
            "retry_ack_p99_ms": round(_percentile([ms for _, ms in retries], 99), 1),
            "answered": len(answered()),
            "placeholders_posted": len(posts),
            "answered_twice": sum(1 for n in per_thread.values() if n > 1),
            "llm_calls": len(llm.requests),
            "total_s": round(total, 2),
            "one_worker_would_take_s": round(mentions * turn_s, 1),
            "ideal_with_pool_s": round(-(-mentions // workers) * turn_s, 1),
        }


def _blast(url: str, payloads: list[dict], retry: int | None) -> list[tuple[int, float]]:
    """POST every payload at once from a child process; [(status, milliseconds)]."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump({"url": url, "payloads": payloads, "retry": retry}, f)
    out = subprocess.run([sys.executable, "-m", "bench.slack_load", "--client", f.name],
                         capture_output=True, text=True, check=True, timeout=300)
    Path(f.name).unlink()
    return [tuple(x) for x in json.loads(out.stdout)]


def _client(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    sender = SlackSender(spec["url"], SECRET)
    payloads = spec["payloads"]
    gate = threading.Barrier(len(payloads))

    def deliver(payload: dict) -> tuple[int, float]:
        gate.wait()  # all at once
        d = sender.post(payload, retry_num=spec["retry"])
        return d.status, d.seconds * 1000

    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        print(json.dumps(list(pool.map(deliver, payloads))))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=100)
    parser.add_argument("--llm-seconds", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--scale", type=float, default=0.3)
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the load generator's own run
    args = parser.parse_args(argv)
    if args.client:
        _client(args.client)
        return 0
    result = run(args.mentions, args.llm_seconds, args.workers, args.scale)
    print(json.dumps(result, indent=2))
    ok = (result["ack_ms"]["p99"] <= 100 and result["answered"] == args.mentions
          and result["answered_twice"] == 0 and result["placeholders_posted"] == args.mentions)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
