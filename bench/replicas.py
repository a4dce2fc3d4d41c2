"""Several bot processes on one store: what the durable inbox costs and what a second process
buys.

    python -m bench.replicas [--mentions 100] [--llm-seconds 2] [--turns 48]

- ack: N signed mentions at once into the app (in this process, as bench.slack_load does),
  each written to the inbox before its 200: acknowledgement p50/p99 with the store on SQLite
  and on PostgreSQL (a throwaway server started here, tests/pg_fixture.py).
- throughput: `turns` questions in as many threads into 1, then 2, real `fundbot slack`
  processes on one PostgreSQL store (deliveries spread over the processes), the fake LLM in
  its own process taking `llm_seconds` a call (2 calls a turn): answered turns per second.
- takeover: one of two processes is SIGKILLed while it holds leased questions; how long until
  the survivor has taken them all (the lease is FUNDBOT_INBOX_LEASE_S, 30 s by default), and
  until they are all answered.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

from bench.common import gold_process, percentile, scratch, warehouse
from bench.slack_load import ANSWER, SECRET, SQL, _blast
from bot.config import Config
from bot.runtime import build_deps
from bot.slack import HttpServer, create_app
from bot.store import open_store
from states.ports import Limits
from tests.fakes.fake_slack import FakeSlack, SlackSender
from tests.pg_fixture import PgServer
from tests.replica import Replica

CHANNEL = "C0BENCH02"


def _answered(slack: FakeSlack, roots: set[str]) -> set[str]:
    return {m.get("thread_ts") for m in slack.messages.get(CHANNEL, [])
            if m.get("thread_ts") in roots and not m["text"].startswith(":hourglass")}


def ack(state: str, mentions: int, db: Path, llm_url: str) -> dict:
    """Acknowledgement latency of a burst, each delivery written to the inbox first."""
    with FakeSlack() as slack:
        config = Config(openai_api_key="sk-bench", openai_base_url=llm_url, db_path=str(db),
                        state_path=state, slack_bot_token=slack.token,
                        slack_signing_secret=SECRET, slack_api_url=slack.api_url, workers=8,
                        limits=Limits(llm_retries=0))
        deps = build_deps(config)
        app, dispatcher = create_app(config, deps)
        server = HttpServer(app, host="127.0.0.1", port=0, signing_secret=SECRET,
                            quiet=dispatcher.quiet).start()
        try:
            sender = SlackSender(server.url, SECRET)
            payloads = [sender.mention(CHANNEL, f"U{i:08d}", f"question {i}: how many?",
                                       ts=f"{1_810_000_000 + i}.000100")
                        for i in range(mentions)]
            roots = {p["event"]["ts"] for p in payloads}
            _, first = _blast(server.url, payloads, retry=None)
            _, serial = _blast(server.url, payloads[:20], retry=1, serial=True)
            slack.wait_for(lambda: len(_answered(slack, roots)) == mentions, timeout=300)
        finally:
            server.stop()
            dispatcher.shutdown(wait=True, timeout=30)
            deps.store.close()
    acks = [ms for _, ms in first]
    return {"store": "PostgreSQL" if state.startswith("postgresql") else "SQLite",
            "mentions": mentions, "statuses": sorted({s for s, _ in first}),
            "ack_ms": {"p50": round(statistics.median(acks), 1),
                       "p99": round(percentile(acks, 99), 1), "max": round(max(acks), 1)},
            "one_at_a_time_ack_ms_p50": round(statistics.median([ms for _, ms in serial]), 2),
            "answered": len(_answered(slack, roots))}


def _env(db: Path, state: str, slack: FakeSlack, work: Path, lease_s: float) -> dict:
    return {**{k: v for k, v in os.environ.items()
               if not k.startswith(("FUNDBOT_", "OPENAI_", "SLACK_"))},
            "FUNDBOT_ENV_FILE": str(work / "none.env"), "FUNDBOT_DB": str(db),
            "FUNDBOT_STATE": state, "SLACK_BOT_TOKEN": slack.token,
            "SLACK_SIGNING_SECRET": SECRET, "SLACK_API_URL": slack.api_url,
            "OPENAI_API_KEY": "sk-bench", "FUNDBOT_LLM_RETRIES": "0",
            "FUNDBOT_WORKERS": "8", "FUNDBOT_INBOX_LEASE_S": str(lease_s)}


def _send(replicas: list[Replica], count: int, base: int) -> set[str]:
    roots = set()
    for i in range(count):
        replica = replicas[i % len(replicas)]
        sender = SlackSender(f"http://127.0.0.1:{replica.port}/slack/events", SECRET)
        payload = sender.mention(CHANNEL, "U1", f"question {i}: how many?",
                                 ts=f"{base + i}.000100")
        assert sender.post(payload).status == 200
        roots.add(payload["event"]["ts"])
    return roots


def throughput(processes: int, turns: int, db: Path, pg: PgServer, llm_url: str,
               work: Path) -> dict:
    name = pg.create_database()
    try:
        with FakeSlack() as slack:
            env = _env(db, pg.url(name), slack, work, 30)
            replicas = [Replica(env, llm_url).start() for _ in range(processes)]
            try:
                t0 = time.monotonic()
                roots = _send(replicas, turns, 1_820_000_000)
                slack.wait_for(lambda: len(_answered(slack, roots)) == turns, timeout=600)
                seconds = time.monotonic() - t0
            finally:
                for r in replicas:
                    r.stop()
    finally:
        pg.drop_database(name)
    return {"processes": processes, "turns": turns, "seconds": round(seconds, 2),
            "turns_per_s": round(turns / seconds, 2)}


def takeover(db: Path, pg: PgServer, llm_url: str, work: Path, lease_s: float,
             questions: int = 16) -> dict:
    name = pg.create_database()
    store = open_store(pg.url(name))
    try:
        with FakeSlack() as slack:
            env = _env(db, pg.url(name), slack, work, lease_s)
            survivor, victim = Replica(env, llm_url).start(), Replica(env, llm_url).start()
            try:
                roots = _send([victim], questions, 1_830_000_000)

                def victims() -> set[str]:
                    with store._auto() as x:
                        return {e for (e,) in x("SELECT event_id FROM inbox WHERE status ="
                                                 " 'leased' AND owner LIKE ?",
                                                 (f"%:{victim.proc.pid}:%",)).fetchall()}
                slack.wait_for(lambda: len(victims()) >= 4, timeout=60)
                held = victims()
                victim.kill()
                killed = time.monotonic()

                def taken() -> bool:
                    with store._auto() as x:
                        rows = x("SELECT owner FROM inbox WHERE event_id = ANY(?)",
                                 (list(held),)).fetchall()
                    return all(o is None or f":{victim.proc.pid}:" not in o for (o,) in rows)
                slack.wait_for(taken, timeout=lease_s * 3 + 30)
                picked_up = time.monotonic() - killed
                slack.wait_for(lambda: len(_answered(slack, roots)) == questions, timeout=300)
                all_answered = time.monotonic() - killed
            finally:
                survivor.stop()
                victim.stop()
    finally:
        store.close()
        pg.drop_database(name)
    return {"lease_s": lease_s, "leased_by_the_dead_process": len(held),
            "picked_up_after_s": round(picked_up, 2),
            "all_answered_after_s": round(all_answered, 2), "questions": questions}


def run(mentions: int = 100, llm_seconds: float = 2.0, turns: int = 48,
        lease_s: float = 30.0) -> dict:
    db, _ = warehouse(1.0)
    pg = PgServer()
    try:
        with scratch() as work:
            with gold_process(0.0, fixed=(SQL, ANSWER)) as fast:
                name = pg.create_database()
                acks = [ack(str(work / "state.sqlite3"), mentions, db, fast.base_url),
                        ack(pg.url(name), mentions, db, fast.base_url)]
                pg.drop_database(name)
            with gold_process(llm_seconds, fixed=(SQL, ANSWER)) as slow:
                runs = [throughput(n, turns, db, pg, slow.base_url, work) for n in (1, 2)]
                pickup = takeover(db, pg, slow.base_url, work, lease_s)
    finally:
        pg.stop()
    return {"benchmark": "replicas", "mentions": mentions, "llm_seconds_per_call": llm_seconds,
            "ack": acks, "throughput": runs, "takeover": pickup,
            "targets": {"ack_p99_ms": 100, "takeover_s": 60},
            "met": {**{f"ack_p99_{a['store']}": a["ack_ms"]["p99"] <= 100
                       and a["answered"] == mentions for a in acks},
                    "takeover_within_60_s": pickup["picked_up_after_s"] <= 60}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mentions", type=int, default=100)
    p.add_argument("--llm-seconds", type=float, default=2.0)
    p.add_argument("--turns", type=int, default=48)
    p.add_argument("--lease-s", type=float, default=30.0)
    args = p.parse_args(argv)
    print(json.dumps(run(args.mentions, args.llm_seconds, args.turns, args.lease_s), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
