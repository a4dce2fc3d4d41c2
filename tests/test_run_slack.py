"""`fundbot run` as `make run` starts it: a real process, Slack tokens in the environment,
the Web API emulator as SLACK_API_URL, a signed mention over HTTP, the answer in the thread,
a clean shutdown on SIGTERM, and no token in anything it printed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import FakeSlack, SlackSender

BOT_TOKEN = "xoxb-run-test-TOKEN-123"
SECRET = "run-test-signing-SECRET-456"
API_KEY = "sk-run-test-KEY-789"
SQL = "SELECT count(*) AS companies FROM companies"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            with urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("fundbot run never became healthy")


def test_make_run_answers_a_mention_in_slack(sample_db, tmp_path: Path):
    port = free_port()
    with FakeSlack(token=BOT_TOKEN) as slack, FakeOpenAI() as llm:
        llm.enqueue_tool_call(SQL).enqueue_text("We hold 400 companies.")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "OPENAI_"))}
        env.update({
            "FUNDBOT_ENV_FILE": str(tmp_path / "none.env"), "FUNDBOT_DB": sample_db,
            "FUNDBOT_STATE": str(tmp_path / "state.sqlite3"), "PORT": str(port),
            "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack.api_url, "OPENAI_BASE_URL": llm.base_url,
            "OPENAI_API_KEY": API_KEY,
        })
        exe = Path(sys.executable).with_name("fundbot")
        proc = subprocess.Popen([str(exe), "run"], env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
            sender = SlackSender(f"http://127.0.0.1:{port}/slack/events", SECRET)
            mention = sender.mention("C1", "U1", "how many companies do we hold?")
            assert sender.post(mention).status == 200
            root = mention["event"]["ts"]
            answers = slack.wait_for(lambda: [
                m for m in slack.bot_replies("C1", root)
                if "400 companies" in json.dumps(m)], timeout=30)
            assert answers and SQL in json.dumps(answers[0])  # the SQL is shown
            # the real openai client reached the fake endpoint with our key
            assert llm.chat_requests[0].auth_matches(API_KEY)
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        for secret in (BOT_TOKEN, SECRET, API_KEY):
            assert secret not in out + err
