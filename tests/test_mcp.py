"""`fundbot mcp` end to end: the real server as a subprocess over stdio and over streamable HTTP
(each started once per test session), driven by the `mcp` client SDK; the LLM is the fake
OpenAI-compatible server on 127.0.0.1, the warehouse the sample DuckDB file."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import dataclasses
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from bot.cli import main
from bot.config import ConfigError, load_config
from bot.mcp_server import ask_output, build_server, parse_tokens
from bot.runtime import build_deps
from bot.store import SqliteStore
from states.ports import TurnResult
from tests.fakes.fake_openai import FakeOpenAI
from tests.test_run_slack import free_port, wait_healthy

API_KEY = "sk-mcp-test-KEY-0123456789"
TOKENS = {"alice": "alice-token-0123456789abcdef", "bob": "bob-token-0123456789abcdef",
          "carol": "carol-token-0123456789abcdef"}
ALLOWED = "alice,bob"  # carol holds a valid token but is not on the allow-list
TOOLS = {"ask", "run_sql", "list_tables", "describe_table", "feedback"}
SQL_COUNT = "SELECT count(*) AS companies FROM companies"
SQL_ADAM = ("SELECT c.company_name FROM investments i JOIN general_partners g ON "
            "g.gp_id = i.lead_gp_id JOIN companies c ON c.company_id = i.company_id "
            "WHERE g.full_name = 'Adam Levin'")
FUNDBOT = str(Path(sys.executable).with_name("fundbot"))


class Remote:
    """An mcp Client kept open on its own event loop thread, so that plain (sync) tests share
    one connection for the whole session: ``remote.call("ask", {...})``."""

    def __init__(self, connect: Callable[[], AbstractAsyncContextManager[Client]]):
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self._ready: concurrent.futures.Future[Client] = concurrent.futures.Future()
        self._main = asyncio.run_coroutine_threadsafe(self._hold(connect), self._loop)
        try:
            self.client = self._ready.result(timeout=120)
        except BaseException:
            self._shut()
            raise

    async def _hold(self, connect: Callable[[], AbstractAsyncContextManager[Client]]) -> None:
        self._stop = asyncio.Event()
        try:
            async with connect() as client:
                self._ready.set_result(client)
                await self._stop.wait()
        except BaseException as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def run(self, fn: Callable[[Client], Awaitable[Any]]) -> Any:
        return asyncio.run_coroutine_threadsafe(fn(self.client), self._loop).result(timeout=120)

    def call(self, tool: str, args: dict[str, Any] | None = None) -> Any:
        return self.run(lambda c: c.call_tool(tool, args or {}))

    def read(self, uri: str) -> str:
        return self.run(lambda c: c.read_resource(uri)).contents[0].text

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        try:
            self._main.result(timeout=60)
        finally:
            self._shut()

    def _shut(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def text_of(result: Any) -> str:
    return result.content[0].text


# ---------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def fake_llm():
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def llm(fake_llm):
    """The session's fake LLM with an empty script and no requests recorded."""
    with fake_llm._lock:
        fake_llm._queue.clear()
        fake_llm.requests.clear()
    return fake_llm


def server_env(sample_db: str, state: Path, fake: FakeOpenAI, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SLACK_", "OPENAI_", "FUNDBOT_"))}
    env.update({
        "FUNDBOT_ENV_FILE": str(state.with_name("none.env")), "FUNDBOT_DB": sample_db,
        "FUNDBOT_STATE": str(state), "FUNDBOT_TODAY": "2026-10-15",
        "OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": API_KEY, "FUNDBOT_LLM_RETRIES": "0",
    }, **extra)
    return env


@pytest.fixture(scope="session")
def stdio_state(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("mcp-stdio") / "state.sqlite3"


@pytest.fixture(scope="session")
def stdio(sample_db, stdio_state, fake_llm):
    """`fundbot mcp` as Claude Desktop starts it: a child process speaking MCP on stdio."""
    params = StdioServerParameters(command=FUNDBOT, args=["mcp"],
                                   env=server_env(sample_db, stdio_state, fake_llm))
    remote = Remote(lambda: Client(params))
    yield remote
    remote.close()


@pytest.fixture(scope="session")
def http_server(sample_db, tmp_path_factory, fake_llm):
    """`fundbot mcp --http` on loopback with three client tokens; yields (url, stderr log)."""
    tmp = tmp_path_factory.mktemp("mcp-http")
    port = free_port()
    env = server_env(sample_db, tmp / "state.sqlite3", fake_llm,
                     FUNDBOT_MCP_TOKEN=",".join(f"{n}:{t}" for n, t in TOKENS.items()),
                     FUNDBOT_ALLOWED_USERS=ALLOWED)
    log = tmp / "stderr.log"
    with open(log, "w") as err:
        proc = subprocess.Popen([FUNDBOT, "mcp", "--http", "--port", str(port)], env=env,
                                stdin=subprocess.DEVNULL, stdout=err, stderr=err, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc)
        yield f"http://127.0.0.1:{port}/mcp", log
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


@asynccontextmanager
async def http_client(url: str, token: str) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"},
                                  timeout=httpx2.Timeout(30, read=300)) as http:
        async with Client(streamable_http_client(url, http_client=http)) as client:
            yield client


@pytest.fixture(scope="session")
def http_clients(http_server):
    url, _ = http_server
    remotes = {name: Remote(lambda t=token: http_client(url, t)) for name, token in TOKENS.items()}
    yield remotes
    for remote in remotes.values():
        remote.close()


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """A raw HTTP POST, for what the SDK client would never send."""
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        **headers})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


INITIALIZE = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {},
    "clientInfo": {"name": "raw", "version": "0"}}}).encode()


# ------------------------------------------------------------------------- stdio


def test_tools_have_typed_schemas_one_line_descriptions_and_read_only_hints(stdio):
    tools = {t.name: t for t in stdio.run(lambda c: c.list_tools()).tools}
    assert set(tools) == TOOLS
    for tool in tools.values():
        assert tool.description and "\n" not in tool.description.strip()
        assert tool.input_schema["type"] == "object" and tool.output_schema
        assert tool.annotations.read_only_hint is True
        assert tool.annotations.destructive_hint is False
    ask = tools["ask"]
    assert ask.input_schema["required"] == ["question"]
    assert ask.input_schema["properties"]["question"]["maxLength"] == 4000
    assert "thread_id" in ask.input_schema["properties"]
    out = ask.output_schema["properties"]
    assert out["state"]["enum"] == ["answered", "clarify", "failed"]
    assert {"answer", "sql", "columns", "rows", "clarification", "options", "as_of", "thread_id",
            "trace_id", "truncated"} <= set(out)
    assert tools["feedback"].input_schema["properties"]["value"]["enum"] == ["up", "down"]
    assert tools["run_sql"].input_schema["required"] == ["sql"]


def test_ask_answers_in_full_and_the_trace_and_feedback_follow(stdio, stdio_state, llm):
    llm.enqueue_tool_call(SQL_COUNT).enqueue_text("We hold 400 companies.")
    result = stdio.call("ask", {"question": "How many companies do we hold?"})
    assert not result.is_error
    out = result.structured_content
    assert out["state"] == "answered" and out["answer"] == "We hold 400 companies."
    assert out["sql"] == SQL_COUNT and out["columns"] == ["companies"]
    assert out["rows"] == [[400]] and out["row_count"] == 1 and not out["truncated"]
    assert out["as_of"] == "2026-09-30" and out["thread_id"].startswith("mcp-")
    assert out["clarification"] is None and out["options"] == [] and out["llm_calls"] == 2
    assert json.loads(text_of(result)) == out  # clients that read only content see the same
    # the real openai client reached the fake with the question and our key
    assert "How many companies do we hold?" in json.dumps(llm.bodies[0]["messages"])
    assert llm.chat_requests[0].auth_matches(API_KEY)

    trace = json.loads(stdio.read(f"fundbot://trace/{out['trace_id']}"))
    assert trace["final_state"] == "answered" and trace["thread_id"] == out["thread_id"]
    assert [a["sql"] for a in trace["sql_attempts"]] == [SQL_COUNT]

    fb = stdio.call("feedback", {"trace_id": out["trace_id"], "value": "down",
                                 "comment": "  count the exits too  "})
    assert not fb.is_error and fb.structured_content["saved"] is True
    with SqliteStore(stdio_state) as store:  # the same table and rules as Slack's buttons
        saved = store.feedback_for(out["trace_id"])
    assert [(f["user"], f["value"], f["comment"]) for f in saved] == [
        ("mcp:local", -1, "count the exits too")]


def test_ask_returns_a_chart_as_an_image_block_when_the_result_deserves_one(stdio, llm):
    sql = ("SELECT f.fund_name, SUM(i.amount_usd) AS invested FROM investments i "
           "JOIN funds f USING (fund_id) GROUP BY 1")
    llm.enqueue_tool_call(sql).enqueue_text("Here is what each fund has invested.")
    result = stdio.call("ask", {"question": "How much has each fund invested?"})
    assert not result.is_error and result.structured_content["state"] == "answered"
    kinds = [block.type for block in result.content]
    assert kinds == ["text", "text", "image"]
    assert result.content[1].text.startswith("Chart: Horizontal bar chart of Invested by Fund")
    image = result.content[2]
    assert image.mime_type == "image/png"
    assert base64.b64decode(image.data).startswith(b"\x89PNG\r\n\x1a\n")


def test_clarification_is_answered_in_a_second_call(stdio, llm):
    first = stdio.call("ask", {"question": "What has Adam invested in?"}).structured_content
    assert first["state"] == "clarify" and first["options"] == ["Adam Brooks", "Adam Levin"]
    assert "Adam" in first["clarification"] and first["answer"] is None
    assert not llm.chat_requests  # resolved deterministically, no LLM call
    llm.enqueue_tool_call(SQL_ADAM).enqueue_text("Adam Levin led these deals.")
    second = stdio.call("ask", {"question": "Adam Levin", "thread_id": first["thread_id"]})
    out = second.structured_content
    assert out["state"] == "answered" and out["sql"] == SQL_ADAM and out["rows"]
    assert out["thread_id"] == first["thread_id"]
    assert "What has Adam invested in?" in json.dumps(llm.bodies[0]["messages"])


def test_run_sql_refusal_is_a_tool_error_with_the_guards_message(stdio):
    result = stdio.call("run_sql", {"sql": "DROP TABLE investments"})
    assert result.is_error and "refused" in text_of(result)
    assert "read-only" in text_of(result) and "DROP" in text_of(result)
    bad = stdio.call("run_sql", {"sql": "SELECT secret FROM funds"})
    assert bad.is_error and "secret" in text_of(bad)


def test_run_sql_rows_are_capped_and_say_so(stdio):
    out = stdio.call("run_sql", {"sql": "SELECT company_name FROM companies"}).structured_content
    assert out["columns"] == ["company_name"] and out["row_count"] == 400
    assert len(out["rows"]) == 50 and out["truncated"] is True  # FUNDBOT_LLM_ROWS


def test_catalog_tools_and_resources(stdio):
    listed = stdio.call("list_tables").structured_content
    names = [t["name"] for t in listed["tables"]]
    assert "investments" in names and listed["as_of"] == "2026-09-30" and listed["rules"]
    table = stdio.call("describe_table", {"name": "Funds"}).structured_content
    assert table["name"] == "funds" and all(c["description"] for c in table["columns"])
    missing = stdio.call("describe_table", {"name": "payroll"})
    assert missing.is_error and "no table 'payroll'" in text_of(missing)
    assert "investments" in text_of(missing)
    catalog = json.loads(stdio.read("fundbot://catalog"))
    assert [t["name"] for t in catalog["tables"]] == names
    assert stdio.read("fundbot://diagram").find("stateDiagram-v2") >= 0


def test_unknown_thread_and_trace_are_clear_errors(stdio, llm):
    result = stdio.call("ask", {"question": "and last year?", "thread_id": "mcp-000000000000"})
    assert result.is_error and "unknown thread 'mcp-000000000000'" in text_of(result)
    odd = stdio.call("ask", {"question": "hi", "thread_id": "../../etc/passwd"})
    assert odd.is_error and "unknown thread" in text_of(odd)
    fb = stdio.call("feedback", {"trace_id": "0123456789abcdef", "value": "up"})
    assert fb.is_error and "no trace" in text_of(fb)
    assert not llm.chat_requests


def test_huge_arguments_are_refused_with_the_limit(stdio, llm):
    result = stdio.call("ask", {"question": "how much " * 1000})
    assert result.is_error and "question too long" in text_of(result)
    assert "4,000" in text_of(result) and "FUNDBOT_MAX_QUESTION_CHARS" in text_of(result)
    sql = stdio.call("run_sql", {"sql": "SELECT 1" + " " * 30_000})
    assert sql.is_error and "sql too long" in text_of(sql)
    assert not llm.chat_requests
    # the server is still there and answers
    assert not stdio.call("list_tables").is_error


# -------------------------------------------------------------------------- HTTP


def test_http_bad_or_missing_token_is_401(http_server):
    url, log = http_server
    for headers in ({}, {"Authorization": "Bearer wrong-token-0123456789"},
                    {"Authorization": f"Basic {TOKENS['alice']}"}):
        status, got, body = post(url, INITIALIZE, headers)
        assert status == 401 and got.get("www-authenticate", "").startswith("Bearer")
        assert json.loads(body)["error"] == "invalid_token"
    with pytest.raises(ExceptionGroup) as failed:  # the SDK client cannot connect either
        Remote(lambda: http_client(url, "wrong-token-0123456789"))
    assert failed.group_contains(MCPError, match="error response")
    status, _, _ = post(url, INITIALIZE, {"Authorization": f"Bearer {TOKENS['alice']}"})
    assert status == 200
    for secret in (*TOKENS.values(), API_KEY):
        assert secret not in log.read_text()


def test_http_answer_and_threads_belong_to_their_client(http_clients, llm):
    alice, bob = http_clients["alice"], http_clients["bob"]
    tools = {t.name for t in alice.run(lambda c: c.list_tools()).tools}
    assert tools == TOOLS
    first = alice.call("ask", {"question": "What has Adam invested in?"}).structured_content
    assert first["state"] == "clarify"
    thread = first["thread_id"]
    stolen = bob.call("ask", {"question": "Adam Levin", "thread_id": thread})
    assert stolen.is_error and "unknown thread" in text_of(stolen)
    llm.enqueue_tool_call(SQL_ADAM).enqueue_text("Adam Levin led these deals.")
    out = alice.call("ask", {"question": "Adam Levin", "thread_id": thread}).structured_content
    assert out["state"] == "answered" and out["thread_id"] == thread and out["rows"]
    with pytest.raises(Exception, match="no trace"):  # bob cannot read alice's trace
        bob.read(f"fundbot://trace/{out['trace_id']}")
    assert bob.call("feedback", {"trace_id": out["trace_id"], "value": "up"}).is_error
    assert json.loads(alice.read(f"fundbot://trace/{out['trace_id']}"))["thread_id"] == thread


def test_http_allow_list_applies_as_in_slack(http_clients):
    refused = http_clients["carol"].call("list_tables")
    assert refused.is_error and "'carol'" in text_of(refused)
    assert "FUNDBOT_ALLOWED_USERS" in text_of(refused)
    assert not http_clients["bob"].call("list_tables").is_error


def test_http_run_sql_refusal_and_huge_body(http_server, http_clients):
    result = http_clients["alice"].call("run_sql", {"sql": "DELETE FROM funds"})
    assert result.is_error and "refused" in text_of(result)
    # A 2 MiB call is refused (413) on its declared length, before the server reads it, so
    # the body is not sent: the server answering mid-upload would make the test racy.
    url, _ = http_server
    host = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=30)
    try:
        conn.putrequest("POST", host.path)
        for name, value in (("Authorization", f"Bearer {TOKENS['alice']}"),
                            ("Content-Type", "application/json"),
                            ("Accept", "application/json, text/event-stream"),
                            ("Content-Length", str(2 << 20))):
            conn.putheader(name, value)
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413 and b"too large" in response.read()
    finally:
        conn.close()


def test_http_refuses_a_foreign_host_header(http_server):
    url, _ = http_server
    status, _, _ = post(url, INITIALIZE, {"Authorization": f"Bearer {TOKENS['alice']}",
                                          "Host": "evil.example.com"})
    assert status == 421


# -------------------------------------------------------- configuration, in-process


def test_off_loopback_needs_a_token_and_allowed_hosts(monkeypatch, tmp_path, sample_db,
                                                      fake_llm, capsys):
    for key, value in server_env(sample_db, tmp_path / "s.sqlite3", fake_llm).items():
        monkeypatch.setenv(key, value)
    assert main(["mcp", "--http", "--host", "0.0.0.0"]) == 2
    assert "FUNDBOT_MCP_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("FUNDBOT_MCP_TOKEN", TOKENS["alice"])
    assert main(["mcp", "--http", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "--allowed-hosts" in err and TOKENS["alice"] not in err


def test_tokens_are_checked_and_never_echoed():
    assert parse_tokens("alice:" + TOKENS["alice"]) == {TOKENS["alice"]: "alice"}
    assert parse_tokens(TOKENS["bob"]) == {TOKENS["bob"]: "agent"}
    for raw in ("short", "al ice:" + TOKENS["alice"], f"a:{TOKENS['bob']},a:{TOKENS['carol']}"):
        with pytest.raises(ConfigError) as err:
            parse_tokens(raw)
        assert "FUNDBOT_MCP_TOKEN" in str(err.value) and TOKENS["bob"] not in str(err.value)
    assert "mcp_token=***" in repr(load_config({"FUNDBOT_MCP_TOKEN": TOKENS["alice"]}))


def test_a_looping_client_hits_the_rate_limit(tmp_path, sample_db, fake_llm):
    config = load_config(server_env(sample_db, tmp_path / "s.sqlite3", fake_llm,
                                    FUNDBOT_MCP_RATE="3/minute"))
    server = build_server(config, build_deps(config))

    async def loop() -> list[Any]:
        async with Client(server) as client:
            return [await client.call_tool("list_tables", {}) for _ in range(4)]

    results = asyncio.run(loop())
    assert [r.is_error for r in results] == [False, False, False, True]
    assert "rate limit" in text_of(results[3]) and "FUNDBOT_MCP_RATE" in text_of(results[3])
    assert "try again in" in text_of(results[3])
    with pytest.raises(ConfigError, match="FUNDBOT_MCP_RATE"):
        build_server(load_config({"FUNDBOT_MCP_RATE": "lots"}), build_deps(config))


# ------------------------------------------------------------------------- docs


def test_docs_mcp_configs_are_exact(stdio):
    doc = (Path(__file__).resolve().parents[1] / "docs" / "MCP.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```(\w+)\n(.*?)```", doc, re.S)
    desktop = [json.loads(b) for lang, b in blocks if lang == "json"]
    local = desktop[0]["mcpServers"]["fundbot"]
    assert local["command"].endswith("/.venv/bin/fundbot") and local["args"] == ["mcp"]
    assert set(local["env"]) <= {"FUNDBOT_ENV_FILE", "FUNDBOT_DB", "FUNDBOT_STATE"}
    for lang, code in blocks:
        if lang == "python":
            compile(code, "docs/MCP.md", "exec")  # the agent examples are valid Python
    documented = set(re.findall(r"^\| `(\w+)\(", doc, re.M))
    assert documented == TOOLS == {t.name for t in stdio.run(lambda c: c.list_tools()).tools}
    assert {"fundbot://catalog", "fundbot://diagram", "fundbot://trace/{trace_id}"} <= set(
        re.findall(r"`(fundbot://[^`]+)`", doc))


def test_ask_output_passes_new_turn_fields_through():
    # Fields the machine adds to TurnResult later (a `verified` flag) reach agents untouched.
    Verified = dataclasses.make_dataclass("Verified", [("verified", bool, True)],
                                          bases=(TurnResult,))
    result = Verified(thread_id="mcp:local:t", state="answered", answer="Two.", sql="SELECT 2",
                      columns=["n"], rows=[(Decimal("2"),), (3,)], as_of="2026-09-30")
    out = ask_output(result, "t", cap=1)
    assert out["verified"] is True and out["thread_id"] == "t"
    assert out["rows"] == [[2]] and out["row_count"] == 2 and out["truncated"] is True
