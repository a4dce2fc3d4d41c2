"""Logs an operator can read: one INFO line per turn (thread, state, ms, calls), the steps at
DEBUG, nothing from transitions at INFO, and no spurious slack_bolt warning at start-up."""

from __future__ import annotations

import logging

from bot.config import Config
from bot.runtime import build_deps
from bot.slack import create_app
from bot.store import SqliteStore
from bot.warehouse import DuckWarehouse
from states.machine import Deps, run_turn
from states.ports import Limits
from tests.core_fakes import ScriptedLLM
from tests.fakes.fake_slack import FakeSlack


def test_one_info_line_per_turn_and_steps_at_debug(sample_db, tmp_path, caplog):
    llm = ScriptedLLM()
    with DuckWarehouse(sample_db, Limits()) as wh:
        deps = Deps(llm=llm, warehouse=wh, store=SqliteStore(str(tmp_path / "s.sqlite3")))
        caplog.set_level(logging.DEBUG)
        llm.sql("SELECT count(*) AS n FROM funds").text("8 funds.")
        run_turn(deps, "T1", "how many funds?")
        run_turn(deps, "T2", "What has Adam invested in?")  # clarify, no LLM call
        llm.text("OUT OF SCOPE: only the data.")
        run_turn(deps, "T3", "weather?")
    info = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert [r.name for r in info] == ["fundbot.turn"] * 3, [(r.name, r.getMessage())
                                                            for r in info]
    lines = [r.getMessage() for r in info]
    assert lines[0].startswith("turn thread=T1 state=answered ms=") and "calls=2" in lines[0]
    assert "thread=T2 state=clarify" in lines[1] and "calls=0" in lines[1]
    assert "thread=T3 state=answered" in lines[2] and "calls=1" in lines[2]
    steps = [r.getMessage() for r in caplog.records
             if r.name == "fundbot.turn" and r.levelno == logging.DEBUG]
    assert any("thread=T1 step=execute event=rows" in s for s in steps)
    assert not any(r.name.startswith("transitions") and r.levelno >= logging.INFO
                   for r in caplog.records)


def test_slack_start_up_has_no_token_will_be_unused_warning(sample_db, tmp_path, caplog,
                                                            monkeypatch):
    slack = FakeSlack().start()
    try:
        # as after load_dotenv: the token is in the environment and in our WebClient
        monkeypatch.setenv("SLACK_BOT_TOKEN", slack.token)
        config = Config(openai_api_key="sk-test", db_path=sample_db,
                        state_path=str(tmp_path / "s.sqlite3"), slack_bot_token=slack.token,
                        slack_signing_secret="secret", slack_api_url=slack.api_url, workers=1)
        deps = build_deps(config)
        caplog.set_level(logging.INFO)
        _, dispatcher = create_app(config, deps)
        dispatcher.shutdown(wait=True, timeout=10)
        deps.warehouse.close()
    finally:
        slack.stop()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
