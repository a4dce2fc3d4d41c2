"""The model is untrusted input: its tool calls are capped where the reply is parsed, what it
sent is truncated before history, traces and debug prompts, and every request carries a
completion-token limit. The real core, the real openai client against FakeOpenAI on
127.0.0.1, the real warehouse (worker pool) and the real SQLite store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date

import pytest

from bot.config import load_config
from bot.runtime import build_llm
from bot.store import SqliteStore
from bot.warehouse import DuckWarehouse
from states.guard import MAX_SQL_CHARS
from states.machine import Deps, run_turn
from states.ports import Limits
from tests.fakes import fake_openai as fo
from tests.fakes.fake_openai import FakeOpenAI
from tests.warehouse_fixture import copied_warehouse

API_KEY = "sk-model-caps-test"
LIMITS = Limits(query_timeout_s=5, debug_attempts=3)
SMALL = 100_000  # bytes a stored row or a request may take here; the attacks were megabytes


@pytest.fixture(scope="module")
def warehouse(sample_db, tmp_path_factory) -> Iterator[DuckWarehouse]:
    yield from copied_warehouse(sample_db, tmp_path_factory, "caps", LIMITS)


@pytest.fixture
def core(warehouse, tmp_path) -> Iterator[tuple[Deps, FakeOpenAI]]:
    with FakeOpenAI(api_key=API_KEY) as fake:
        config = load_config(env={"OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": fake.base_url,
                                  "FUNDBOT_MAX_COMPLETION_TOKENS": "321"}, dotenv=False)
        llm = build_llm(config)
        store = SqliteStore(tmp_path / "state.sqlite3")
        yield Deps(llm=llm, warehouse=warehouse, store=store, limits=LIMITS,
                   today=date(2026, 10, 15)), fake
        llm.close()
        store.close()


def stored_sizes(deps: Deps, thread: str, trace_id: str) -> tuple[int, int]:
    conv = json.dumps(deps.store.load(thread).to_dict())
    trace = json.dumps(deps.store.get_trace(trace_id).to_dict())
    return len(conv), len(trace)


def test_a_5mb_tool_call_is_refused_and_nothing_grows(core):
    deps, fake = core
    huge = "SELECT 1 AS x FROM funds WHERE " + " OR ".join(["fund_id = 1"] * 400_000)  # 5 MB
    fake.enqueue(fo.tool_call(huge))
    fake.enqueue(fo.tool_call(huge))  # the corrective round gets the same
    r = run_turn(deps, "t-huge", "How many funds do we have?")
    assert r.state == "failed" and r.sql is None
    assert all(len(json.dumps(q.body)) < SMALL for q in fake.chat_requests)
    conv, trace = stored_sizes(deps, "t-huge", r.trace_id)
    assert conv < SMALL and trace < SMALL, (conv, trace)
    corrective = fake.chat_requests[1].messages[-1]["content"]
    assert "characters" in corrective and f"{MAX_SQL_CHARS:,}" in corrective


def test_sql_over_the_limit_is_not_run(core):
    deps, fake = core
    long_sql = "SELECT 1 AS x FROM funds WHERE " + " OR ".join(["fund_id = 1"] * 2000)
    assert MAX_SQL_CHARS < len(long_sql) < 40_000
    fake.enqueue(fo.tool_call(long_sql))
    fake.enqueue(fo.tool_call("SELECT count(*) AS n FROM funds"))
    fake.enqueue(fo.text("There are 8 funds."))
    r = run_turn(deps, "t-long", "How many funds do we have?")
    assert r.state == "answered" and r.sql == "SELECT count(*) AS n FROM funds"
    assert "the SQL was" in fake.chat_requests[1].messages[-1]["content"]


def test_debug_prompts_stay_bounded(core):
    deps, fake = core
    failing = "SELECT nope FROM funds WHERE " + " OR ".join(["fund_id = 1"] * 1300)  # 19 KB
    assert len(failing) < MAX_SQL_CHARS
    for _ in range(LIMITS.debug_attempts + 1):
        fake.enqueue(fo.tool_call(failing))
    r = run_turn(deps, "t-debug", "How many funds do we have?")
    assert r.state == "failed"
    sizes = [len(json.dumps(q.body)) for q in fake.chat_requests]
    assert len(sizes) == LIMITS.debug_attempts + 1
    # each earlier attempt is shown cut to 4,000 characters: 3 attempts were 57 KB, now ~12 KB
    assert max(sizes) - sizes[0] < 4 * 4_500, sizes
    conv, trace = stored_sizes(deps, "t-debug", r.trace_id)
    assert conv < SMALL


def test_every_request_sends_the_completion_token_limit(core):
    deps, fake = core
    fake.enqueue(fo.tool_call("SELECT count(*) AS n FROM funds"))
    fake.enqueue(fo.text("There are 8 funds."))
    assert run_turn(deps, "t-tokens", "How many funds do we have?").state == "answered"
    assert [q.body["max_completion_tokens"] for q in fake.chat_requests] == [321, 321]
