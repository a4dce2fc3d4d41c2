"""CPU time the Slack app spends taking in one mention, independent of machine load.

    python -m bench.slack_intake [--mentions 200] [--repeat 3]

Acknowledgement latency under a burst (bench.slack_load) is wall-clock time and grows with
whatever else the machine runs. This measures the part the app controls: the CPU time
(`time.thread_time`) of the thread that hands each signed mention to Bolt (middleware,
listeners, queueing the turn) in Socket Mode, with the Web API emulator behind it. The turns
themselves run on other threads and are not counted.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time

from bench.common import scratch, warehouse
from bot.config import Config
from bot.runtime import build_deps
from bot.slack import create_app
from states.ports import Limits
from tests.fakes.fake_slack import FakeSlack, SlackSender


def run(mentions: int = 200, repeat: int = 3) -> dict:
    logging.disable(logging.ERROR)  # the queued turns fail without a model; not measured
    db, _ = warehouse(1.0)
    with FakeSlack() as slack, scratch() as work:
        config = Config(openai_api_key="sk-bench", openai_base_url="http://127.0.0.1:9/v1",
                        db_path=str(db), state_path=str(work / "state.sqlite3"),
                        slack_bot_token=slack.token, slack_app_token="xapp-bench",
                        slack_api_url=slack.api_url, workers=1,
                        limits=Limits(llm_retries=0, llm_timeout_s=1))
        app, dispatcher = create_app(config, build_deps(config))
        from slack_bolt.request import BoltRequest

        sender = SlackSender("http://unused", "unused")
        per_mention = []
        for r in range(repeat):
            payloads = [sender.mention(f"C0BENCH{r:02d}", f"U{i:08d}", f"question {i}?")
                        for i in range(mentions)]
            start = time.thread_time()
            for payload in payloads:
                app.dispatch(BoltRequest(body=payload, mode="socket_mode"))
            per_mention.append((time.thread_time() - start) / mentions * 1000)
        dispatcher.shutdown(wait=False)
    return {"benchmark": "slack_intake_cpu", "mentions": mentions, "repeat": repeat,
            "cpu_ms_per_mention": [round(x, 3) for x in per_mention],
            "median_cpu_ms_per_mention": round(statistics.median(per_mention), 3)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mentions", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.mentions, args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
