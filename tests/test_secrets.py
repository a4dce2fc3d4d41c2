"""Secrets never appear in output: known secrets are planted in the environment, the bot is run
through its CLI, failing LLM calls, failing SQL, an eval run and the Slack app, and every output
is searched: stdout, stderr, log records at DEBUG (ours, openai, httpx, httpcore, Slack's), the
SQLite store (and its WAL), traces, and every file written (eval reports).
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import load_config
from bot.llm import OpenAIChat
from bot.runtime import build_deps
from bot.store import SqliteStore
from bot.warehouse import DuckWarehouse
from states.machine import Deps, run_turn
from states.ports import Limits, LLMError
from tests.fakes import fake_openai as fo
from tests.fakes.fake_openai import FakeOpenAI

SECRETS = {
    "OPENAI_API_KEY": "sk-planted-OPENAI-4f9c2e7a1b3d5f60aa",
    "SLACK_BOT_TOKEN": "xoxb-planted-1111-SLACKBOT-9z8y7x6w",
    "SLACK_APP_TOKEN": "xapp-1-planted-A0SLACKAPP-5a4b3c2d",
    "SLACK_SIGNING_SECRET": "planted-signing-secret-8e7d6c5b4a",
}
# distinctive middles too, so a half-masked secret ("sk-pla...60aa") is still caught
NEEDLES = [*SECRETS.values(), "4f9c2e7a1b3d5f60", "SLACKBOT-9z8y7x6w", "A0SLACKAPP-5a4b3c2d",
           "8e7d6c5b4a"]
LOGGERS = ["", "fundbot", "bot", "states", "openai", "httpx", "httpcore", "httpx2", "httpcore2",
           "slack_bolt", "slack_sdk", "urllib3", "eval"]
GOOD_SQL = "SELECT count(*) AS companies FROM companies"


def leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [n for n in NEEDLES if n.encode() in data]


def log_text(caplog: pytest.LogCaptureFixture) -> str:
    parts = []
    for r in caplog.records:
        parts += [r.name, r.getMessage(), repr(r.args), r.exc_text or "", r.stack_info or ""]
        if r.exc_info and r.exc_info[1] is not None:
            parts.append(repr(r.exc_info[1]))
    return "\n".join(parts)


def files_text(folder: Path) -> bytes:
    """Every byte of every file written under `folder` (SQLite, its WAL, reports)."""
    return b"\n".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name or None)
    return caplog


@pytest.fixture
def planted(monkeypatch, tmp_path, sample_db) -> Iterator[dict]:
    """The environment of a deployment, with recognisable secrets in it."""
    out = tmp_path / "out"
    out.mkdir()
    db = tmp_path / "fund.duckdb"
    shutil.copyfile(sample_db, db)
    with FakeOpenAI() as fake:
        env = {**SECRETS, "OPENAI_BASE_URL": fake.base_url, "FUNDBOT_DB": str(db),
               "FUNDBOT_STATE": str(out / "state.sqlite3"), "FUNDBOT_MODEL": "fake-model",
               "FUNDBOT_LLM_RETRIES": "1", "FUNDBOT_LLM_TIMEOUT_S": "5",
               "FUNDBOT_TODAY": "2026-10-15", "FUNDBOT_ENV_FILE": str(tmp_path / "no.env"),
               "SLACK_API_URL": "", "PORT": "0"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.chdir(tmp_path)  # relative paths (eval-out) land where we search
        yield {"fake": fake, "out": out, "db": db, "tmp": tmp_path}


def test_the_search_finds_a_planted_secret():
    key = SECRETS["OPENAI_API_KEY"]
    assert leaks(f"Authorization: Bearer {key}") and leaks(f"sk-pla...{key[18:34]}...")
    assert not leaks("sk-***")


def test_config_and_clients_do_not_show_secrets():
    config = load_config(env={**SECRETS, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"},
                         dotenv=False)
    assert config.openai_api_key == SECRETS["OPENAI_API_KEY"]  # planted, so the test can fail
    llm = OpenAIChat(api_key=SECRETS["OPENAI_API_KEY"], base_url="http://127.0.0.1:9/v1")
    assert not leaks(repr(config)) and not leaks(str(config)) and not leaks(repr(llm))


def test_cli_commands_and_failures_leak_nothing(planted, capsys, debug_logs):
    fake = planted["fake"]
    outputs = []

    def run(*argv: str) -> int:
        code = main(list(argv))
        captured = capsys.readouterr()
        outputs.append(captured.out + captured.err)
        return code

    fake.enqueue(fo.tool_call(GOOD_SQL)).enqueue(fo.text("We hold 400 companies."))
    assert run("ask", "--json", "How many portfolio companies do we have?") == 0
    trace_id = json.loads(outputs[-1])["trace_id"]
    assert run("trace", trace_id) == 0 and trace_id in outputs[-1]
    for _ in range(2):
        fake.enqueue(fo.error(500))
    assert run("ask", "--json", "How many funds are there?") == 1
    # a proxy that echoes our Authorization header back in its error
    fake.enqueue(fo.error(400, {"error": {"message": "bad header Authorization: Bearer "
                                                     f"{SECRETS['OPENAI_API_KEY']}"}}))
    assert run("ask", "How many funds are there?") == 1
    assert run("sql", "--json", "SELECT CAST(company_name AS INTEGER) FROM companies") == 1
    assert run("sql", "SELECT * FROM read_text('/proc/self/environ')") == 2
    assert run("sql", "--json", "SELECT getenv('OPENAI_API_KEY') AS k") == 2
    assert run("sql", "--json", "SELECT count(*) FROM funds") == 0
    assert run("diagram") == 0

    with FakeOpenAI(api_key="sk-the-right-key-is-another") as strict:  # 401 for our key
        os_env = {"OPENAI_BASE_URL": strict.base_url}
        with pytest.MonkeyPatch.context() as mp:
            for k, v in os_env.items():
                mp.setenv(k, v)
            assert run("ask", "--json", "How many funds are there?") == 1
            assert "credentials" in outputs[-1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPENAI_BASE_URL", dead_url())
        assert run("ask", "--json", "How many funds are there?") == 1
        assert "reach" in outputs[-1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FUNDBOT_TODAY", "not-a-date")
        assert run("ask", "How many funds are there?") == 2

    assert len(outputs) == 12
    for text in outputs:
        assert not leaks(text), text
    assert not leaks(log_text(debug_logs))
    # the HTTP stack's own DEBUG records were captured, so they were searched too
    assert {"openai", "httpx2", "httpcore2"} <= {r.name.split(".")[0] for r in debug_logs.records}
    assert not leaks(files_text(planted["out"]))
    store = SqliteStore(planted["out"] / "state.sqlite3")
    try:
        dump = "\n".join(store._conn().iterdump())
        assert "How many funds are there?" in dump  # the store was searched, and holds turns
        assert not leaks(dump)
    finally:
        store.close()


def test_failing_llm_and_sql_leak_nothing_into_messages_traces_or_logs(
        planted, debug_logs, tmp_path):
    fake = planted["fake"]
    wh = DuckWarehouse(str(planted["db"]), Limits())
    store = SqliteStore(planted["out"] / "core.sqlite3")
    results, errors = [], []
    try:
        for fault in ([fo.error(401)], [fo.error(500)] * 2, "dead",
                      [fo.tool_call("SELECT CAST(company_name AS INTEGER) AS x FROM companies")]
                      + [fo.tool_call("SELECT * FROM read_text('/proc/self/environ')")] * 3):
            url = dead_url() if fault == "dead" else fake.base_url
            if fault != "dead":
                for reply in fault:
                    fake.enqueue(reply)
            llm = OpenAIChat(api_key=SECRETS["OPENAI_API_KEY"], base_url=url, retries=1,
                             timeout_s=5, sleep=lambda s: None)
            deps = Deps(llm=llm, warehouse=wh, store=store, limits=Limits(llm_retries=1))
            r = run_turn(deps, f"C1:{len(results)}", "How many portfolio companies do we have?")
            assert r.state == "failed"
            results.append(r)
            try:
                llm.complete([{"role": "user", "content": "hi"}])
            except LLMError as exc:
                errors.append(exc)
        texts = [json.dumps(store.get_trace(r.trace_id).to_dict()) for r in results]
        texts += [r.answer or "" for r in results]
        texts += [f"{e.kind}: {e.message} {e!r} {e.args}" for e in errors]
        assert len(errors) >= 3 and any(t.count("sql_attempts") for t in texts)
        for text in texts:
            assert not leaks(text), text
        assert not leaks(log_text(debug_logs))
        assert not leaks(files_text(planted["out"]))
    finally:
        store.close()
        wh.close()


def test_eval_run_reports_leak_nothing(planted, capsys, debug_logs):
    """An eval run against a failing endpoint: its reports, store and output are clean."""
    fake = planted["fake"]
    fake.responder = lambda body: fo.error(503, {"error": {
        "message": f"upstream said: Bearer {SECRETS['OPENAI_API_KEY']}"}})
    out = planted["out"] / "eval"
    code = main(["eval", "--model", "fake-model", "--out", str(out), "--quiet",
                 "--concurrency", "1", "--tags", "lookup-fund-vintage,lookup-gp-title",
                 "--db", str(planted["db"])])
    captured = capsys.readouterr()
    assert code in (0, 1)
    assert list(out.rglob("report.json")), "the eval wrote no report"
    assert not leaks(captured.out + captured.err)
    assert not leaks(log_text(debug_logs))
    assert not leaks(files_text(planted["out"]))


def test_slack_app_with_planted_tokens_leaks_nothing(planted, debug_logs):
    """A mention answered and a failing one, through the Slack app against the emulator."""
    from bot.slack import HttpServer, create_app
    from tests.fakes.fake_slack import FakeSlack, SlackSender

    fake = planted["fake"]
    slack = FakeSlack(token=SECRETS["SLACK_BOT_TOKEN"]).start()
    try:
        config = load_config(dotenv=False)
        config.slack_api_url = slack.api_url
        config.openai_base_url = fake.base_url
        deps = build_deps(config)
        app, dispatcher = create_app(config, deps)
        server = HttpServer(app, host="127.0.0.1", port=0,
                            signing_secret=config.slack_signing_secret,
                            quiet=dispatcher.quiet).start()
        try:
            sender = SlackSender(server.url, SECRETS["SLACK_SIGNING_SECRET"])
            fake.enqueue(fo.tool_call(GOOD_SQL)).enqueue(fo.text("We hold 400 companies."))
            fake.enqueue(fo.error(500)).enqueue(fo.error(500))
            for text in ("How many portfolio companies?", "How many funds?"):
                payload = sender.mention("C0PARTNERS", "UALICE001", text)
                assert sender.post(payload).status == 200
                ts = payload["event"]["ts"]
                slack.wait_for(lambda ts=ts: [m for m in slack.bot_replies("C0PARTNERS", ts)
                                              if not m["text"].startswith(":hourglass")],
                               timeout=15)
            bad = sender.mention("C0PARTNERS", "UALICE001", "forged")
            assert sender.post(bad, timestamp=int(time.time()) - 3600).status == 401
            assert dispatcher.join(15)
        finally:
            server.stop()
            dispatcher.shutdown(wait=True, timeout=10)
        posted = json.dumps([c.args for c in slack.calls])
        assert "400 companies" in posted  # the emulator saw the answers; search them too
        assert SECRETS["SLACK_BOT_TOKEN"] in {c.token for c in slack.calls}  # it was used
        assert not leaks(posted)
        assert not leaks(log_text(debug_logs))
        assert not leaks(files_text(planted["out"]))
    finally:
        slack.stop()
