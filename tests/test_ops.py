"""Operations: `fundbot doctor` says what is wrong in one line per part, and /readyz tells a
load balancer when a replica cannot take deliveries."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from bot.cli import main
from bot.config import Config
from bot.runtime import build_deps
from bot.slack import HttpServer, create_app
from states.ports import Limits
from tests.fakes.fake_openai import FakeOpenAI
from tests.fakes.fake_slack import FakeSlack

TOKEN, SECRET, KEY = "xoxb-doctor-TOKEN-1", "doctor-SIGNING-2", "sk-doctor-KEY-3"


@pytest.fixture
def env(monkeypatch, tmp_path, sample_db):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN",
                 "SLACK_SIGNING_SECRET", "SLACK_API_URL", "FUNDBOT_STATE", "FUNDBOT_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "none.env"))
    monkeypatch.setenv("FUNDBOT_DB", sample_db)
    monkeypatch.setenv("FUNDBOT_STATE", str(tmp_path / "state.sqlite3"))
    return monkeypatch


def doctor(capsys) -> tuple[int, dict[str, str]]:
    code = main(["doctor"])
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 4 and "Traceback" not in out.err
    return code, {line.split()[1]: line for line in lines}


def test_doctor_all_good(env, capsys, pg_url):
    with FakeSlack(token=TOKEN) as slack, FakeOpenAI() as llm:
        llm.enqueue_text("OK")
        env.setenv("FUNDBOT_STATE", pg_url)
        env.setenv("OPENAI_BASE_URL", llm.base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("SLACK_BOT_TOKEN", TOKEN)
        env.setenv("SLACK_SIGNING_SECRET", SECRET)
        env.setenv("SLACK_API_URL", slack.api_url)
        code, lines = doctor(capsys)
    assert code == 0 and all(line.startswith("ok") for line in lines.values()), lines
    assert "PostgreSQL" in lines["store"] and "schema 2" in lines["store"]
    assert "6 tables" in lines["warehouse"] and "fundbot" in lines["slack"]
    assert not any(s in "".join(lines.values()) for s in (TOKEN, SECRET, KEY))


def test_doctor_names_each_fault_in_one_line(env, capsys, tmp_path):
    with FakeSlack(token="xoxb-the-right-one") as slack, FakeOpenAI() as llm:
        llm.enqueue_error(401, {"error": {"message": "Incorrect API key provided."}})
        bad_state = tmp_path / "broken.sqlite3"
        bad_state.write_bytes(b"garbage" * 1000)
        env.setenv("FUNDBOT_STATE", str(bad_state))
        env.setenv("FUNDBOT_DB", str(tmp_path / "missing.duckdb"))
        env.setenv("OPENAI_BASE_URL", llm.base_url)
        env.setenv("OPENAI_API_KEY", KEY)
        env.setenv("SLACK_BOT_TOKEN", TOKEN)  # not the emulator's token
        env.setenv("SLACK_SIGNING_SECRET", SECRET)
        env.setenv("SLACK_API_URL", slack.api_url)
        code, lines = doctor(capsys)
    assert code == 1 and all(line.startswith("FAIL") for line in lines.values()), lines
    assert "damaged" in lines["store"] and "fundbot db init" in lines["warehouse"]
    assert "key" in lines["llm"].lower() and "SLACK_BOT_TOKEN" in lines["slack"]
    assert not any(s in "".join(lines.values()) for s in (TOKEN, SECRET, KEY))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_readyz_turns_away_traffic_while_shutting_down(tmp_path, sample_db):
    with FakeSlack(token=TOKEN) as slack:
        config = Config(openai_api_key=KEY, db_path=sample_db,
                        state_path=str(tmp_path / "state.sqlite3"), slack_bot_token=TOKEN,
                        slack_signing_secret=SECRET, slack_api_url=slack.api_url, workers=2,
                        limits=Limits(llm_retries=0))
        app, dispatcher = create_app(config, build_deps(config))
        server = HttpServer(app, host="127.0.0.1", port=0, signing_secret=SECRET,
                            quiet=dispatcher.quiet).start()
        base = server.url.rsplit("/slack/events", 1)[0]
        try:
            assert _get(base + "/healthz") == (200, "ok")
            status, body = _get(base + "/readyz")
            assert status == 200 and body.startswith("ready")
            dispatcher.shutdown(wait=True, timeout=10)  # SIGTERM: stop taking work
            assert _get(base + "/readyz") == (503, "shutting down")
            assert _get(base + "/healthz") == (200, "ok")
        finally:
            server.stop()
