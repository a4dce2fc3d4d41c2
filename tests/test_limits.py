"""Limits are configuration with safe defaults, and each one is enforced.

Every field of `states.ports.Limits` is read from `FUNDBOT_<NAME>` by bot/config.py, reaches
the part that enforces it through bot/runtime.build_deps, and has its effect tested through
the real component: DuckDB (query time, memory, threads, rows), the core (rows sent to the
LLM, question length, debug attempts, clarification rounds, history), the OpenAI client
against FakeOpenAI (LLM time-out and retries).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from bot.config import LIMIT_ENV, ConfigError, load_config
from bot.runtime import build_deps, build_llm
from bot.store import SqliteStore
from bot.warehouse import DuckWarehouse
from states.machine import Deps, run_turn
from states.ports import Limits, LLMError, QueryError
from tests.core_fakes import ScriptedLLM
from tests.fakes import fake_openai as fo
from tests.fakes.fake_openai import FakeOpenAI

HEAVY = "SELECT count(*) FROM valuations a, valuations b, valuations c"  # minutes unbounded
MANY_ROWS = "SELECT company_id, company_name FROM companies ORDER BY company_id"

# A value for every field, each different from its default; a new field must be added here.
OVERRIDES = {
    "query_timeout_s": ("2.5", 2.5), "memory_limit": ("256MB", "256MB"), "threads": ("1", 1),
    "max_rows": ("77", 77), "llm_rows": ("9", 9), "max_question_chars": ("300", 300),
    "llm_timeout_s": ("7.5", 7.5), "llm_retries": ("1", 1), "debug_attempts": ("2", 2),
    "clarify_rounds": ("1", 1), "history_turns": ("3", 3),
    "max_result_bytes": ("5000", 5000), "sql_workers": ("3", 3),
    "max_completion_tokens": ("300", 300),
}
# What a safe default is: bounded, but not so tight that ordinary questions fail.
SAFE = {
    "query_timeout_s": lambda v: 1 <= v <= 30, "memory_limit": lambda v: v in ("512MB", "1GB",
                                                                                 "2GB"),
    "threads": lambda v: 1 <= v <= 4, "max_rows": lambda v: 100 <= v <= 10_000,
    "llm_rows": lambda v: 10 <= v <= 200, "max_question_chars": lambda v: 500 <= v <= 10_000,
    "llm_timeout_s": lambda v: 10 <= v <= 120, "llm_retries": lambda v: 1 <= v <= 5,
    "debug_attempts": lambda v: v == 3, "clarify_rounds": lambda v: v == 2,  # issue 2 says so
    "history_turns": lambda v: 1 <= v <= 10,
    "max_result_bytes": lambda v: 1_000_000 <= v <= 50_000_000,
    "sql_workers": lambda v: 1 <= v <= 4, "max_completion_tokens": lambda v: 500 <= v <= 4000,
}


def copy_db(sample_db: str, folder: Path) -> str:
    path = folder / "fund.duckdb"
    shutil.copyfile(sample_db, path)
    return str(path)


@pytest.fixture
def wh_with(sample_db, tmp_path) -> Iterator:
    """A warehouse opened with given limits (each on its own copy: DuckDB shares one
    instance per file, and its settings must agree)."""
    opened: list[DuckWarehouse] = []

    def open_(**limits) -> DuckWarehouse:
        folder = tmp_path / f"wh{len(opened)}"
        folder.mkdir()
        w = DuckWarehouse(copy_db(sample_db, folder), Limits(**limits))
        opened.append(w)
        return w

    yield open_
    for w in opened:
        w.close()


# ------------------------------------------------------------------- configuration


def test_every_limit_is_read_from_the_environment():
    names = {f.name for f in dataclasses.fields(Limits)}
    assert names == set(OVERRIDES) == set(SAFE), "a Limits field lacks a test here"
    env = {LIMIT_ENV[n]: raw for n, (raw, _) in OVERRIDES.items()}
    assert all(k == f"FUNDBOT_{n.upper()}" for n, k in LIMIT_ENV.items())
    limits = load_config(env=env, dotenv=False).limits
    for name, (_, expected) in OVERRIDES.items():
        assert getattr(limits, name) == expected != getattr(Limits(), name), name


def test_defaults_are_safe():
    defaults = load_config(env={}, dotenv=False).limits
    assert defaults == Limits()
    for name, ok in SAFE.items():
        assert ok(getattr(defaults, name)), f"{name} = {getattr(defaults, name)!r}"


@pytest.mark.parametrize(("name", "raw"), [
    ("query_timeout_s", "0"), ("query_timeout_s", "-5"), ("query_timeout_s", "inf"),
    ("query_timeout_s", "nan"), ("query_timeout_s", "soon"), ("memory_limit", "-1"),
    ("memory_limit", "80%"), ("memory_limit", "0GB"), ("memory_limit", "lots"),
    ("threads", "0"), ("max_rows", "0"), ("max_rows", "-1"), ("llm_rows", "0"),
    ("max_question_chars", "0"), ("llm_timeout_s", "0"), ("llm_retries", "-1"),
    ("debug_attempts", "-1"), ("clarify_rounds", "-2"), ("history_turns", "-1"),
    ("max_rows", "1e9"), ("max_result_bytes", "0"), ("sql_workers", "0"),
    ("max_completion_tokens", "0"), ("max_completion_tokens", "-5"),
])
def test_a_limit_cannot_be_switched_off_by_a_bad_value(name, raw):
    """DuckDB reads memory_limit -1 or 80% as no cap; inf seconds is no time-out."""
    with pytest.raises(ConfigError) as info:
        load_config(env={LIMIT_ENV[name]: raw}, dotenv=False)
    assert LIMIT_ENV[name] in str(info.value) and repr(raw) in str(info.value)


def test_zero_is_allowed_where_it_means_none():
    env = {LIMIT_ENV[n]: "0" for n in ("llm_retries", "debug_attempts", "clarify_rounds",
                                       "history_turns")}
    limits = load_config(env=env, dotenv=False).limits
    assert (limits.llm_retries, limits.debug_attempts, limits.clarify_rounds,
            limits.history_turns) == (0, 0, 0, 0)


def test_configured_limits_reach_every_enforcer(sample_db, tmp_path):
    env = {LIMIT_ENV[n]: raw for n, (raw, _) in OVERRIDES.items()}
    env.update(FUNDBOT_DB=copy_db(sample_db, tmp_path), OPENAI_API_KEY="sk-limits-test",
               OPENAI_BASE_URL="http://127.0.0.1:9/v1",
               FUNDBOT_STATE=str(tmp_path / "state.sqlite3"))
    config = load_config(env=env, dotenv=False)
    deps = build_deps(config)
    try:
        assert deps.limits is config.limits and deps.warehouse.limits is config.limits
        assert (deps.llm.timeout_s, deps.llm.retries) == (7.5, 1)
        assert deps.llm.max_completion_tokens == 300 and len(deps.warehouse.pool.pids()) == 3
        settings = dict(deps.warehouse.sandbox_execute(
            "SELECT name, value FROM duckdb_settings() WHERE name IN ('memory_limit', "
            "'threads')").rows)
        assert settings == {"memory_limit": "244.1 MiB", "threads": "1"}  # 256 MB in MiB
    finally:
        deps.warehouse.close()
        deps.store.close()


# --------------------------------------------------------------------------- DuckDB


def test_query_time_limit(wh_with):
    wh = wh_with(query_timeout_s=0.3)
    with pytest.raises(QueryError) as info:  # HEAVY alone runs for minutes
        wh.execute(HEAVY)
    assert info.value.kind == "timeout" and "0.3 s" in info.value.message
    assert wh.execute("SELECT count(*) FROM funds").rows == [(8,)]  # usable afterwards


def test_a_worker_that_does_not_stop_is_killed_and_replaced(wh_with):
    """The deadline is the pool's, not DuckDB's interrupt: a worker that cannot answer (here
    stopped outright with SIGSTOP, as a query stuck in a string builder would be) is killed
    with its process group at query_timeout_s + GRACE_S, and a fresh worker takes its place."""
    wh = wh_with(query_timeout_s=0.3, sql_workers=1)
    assert wh.execute("SELECT count(*) FROM funds").rows == [(8,)]  # warm
    (stuck,) = wh.pool.pids()
    os.kill(stuck, signal.SIGSTOP)
    with pytest.raises(QueryError) as info:
        wh.execute("SELECT count(*) FROM funds")
    assert info.value.kind == "timeout" and "0.3 s" in info.value.message
    with pytest.raises(ProcessLookupError):
        os.kill(stuck, 0)  # killed and reaped
    assert wh.pool.replaced == 1 and wh.pool.pids() != [stuck]
    assert wh.execute("SELECT count(*) FROM funds").rows == [(8,)]


def test_result_bytes(wh_with):
    wh = wh_with(max_result_bytes=2000, query_timeout_s=20)
    res = wh.execute(MANY_ROWS)
    assert res.truncated and 0 < len(res.rows) < 100  # cut at the bytes, not the rows
    assert sum(len(r[1]) for r in res.rows) <= 2000
    with pytest.raises(QueryError) as info:  # one row over the cap: nothing to show
        wh.execute("SELECT repeat('x', 1000) || repeat('y', 1000) || repeat('z', 1000) AS s")
    assert info.value.kind == "runtime" and "2,000-byte limit" in info.value.message


def test_sql_workers(wh_with):
    wh = wh_with(sql_workers=3)
    assert len(wh.pool.pids()) == 3 and os.getpid() not in wh.pool.pids()


def test_memory_limit(wh_with):
    wh = wh_with(memory_limit="64MB", query_timeout_s=20)
    with pytest.raises(QueryError) as info:
        wh.execute("SELECT string_agg(c.company_name, ',') FROM companies c, companies d, "
                   "companies e")
    assert info.value.kind == "runtime" and "64MB memory limit" in info.value.message
    # the same query fits a bigger limit: the limit, not the query, stopped it
    roomy = wh_with(memory_limit="1GB", query_timeout_s=20)
    assert roomy.execute("SELECT length(string_agg(c.company_name, ',')) FROM companies c, "
                         "companies d").rows[0][0] > 1_000_000


def test_threads(wh_with):
    wh = wh_with(threads=1)
    assert wh.sandbox_execute("SELECT current_setting('threads')").rows == [(1,)]


def test_rows_returned(wh_with):
    wh = wh_with(max_rows=7)
    res = wh.execute(MANY_ROWS)
    assert len(res.rows) == 7 and res.truncated
    assert res.rows[0][0] == 1  # the first rows, in the query's order
    exact = wh.execute("SELECT * FROM funds ORDER BY fund_id LIMIT 7")
    assert len(exact.rows) == 7 and not exact.truncated


def test_rows_cap_stops_the_rest_of_a_streamed_query(wh_with):
    """Rows past the cap are never read, so they must not be computed on in the background:
    DuckDB otherwise keeps a streamed query running, and closing its cursor (when a worker
    thread has gone) waits for it, blocking every new query (seen: 14 s)."""
    wh = wh_with(max_rows=10, query_timeout_s=2)
    endless = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n FROM r) SELECT * FROM r"
    for _ in range(15):  # the stall came one time in three to eight
        res = wh.sandbox_execute(endless)
        # the capped rows come back as rows, not as a time-out: the query was stopped at the
        # cap, so its worker answered and lives on (a stall ends in the pool's kill instead)
        assert len(res.rows) == 10 and res.truncated
        assert wh.execute("SELECT 1 AS one FROM funds LIMIT 1").rows == [(1,)]
    assert wh.pool.replaced == 0


# ------------------------------------------------------------------------- the core


def core(wh: DuckWarehouse, tmp_path: Path, **limits) -> tuple[Deps, ScriptedLLM]:
    llm = ScriptedLLM()
    return Deps(llm=llm, warehouse=wh, store=SqliteStore(tmp_path / "state.sqlite3"),
                limits=Limits(**limits), today=date(2026, 10, 15)), llm


def test_rows_sent_to_the_llm(wh_with, tmp_path):
    deps, llm = core(wh_with(max_rows=100), tmp_path, llm_rows=5)
    llm.sql(MANY_ROWS).text("There are many companies.")
    r = run_turn(deps, "t", "List the portfolio companies")
    assert len(r.rows) == 100 and r.truncated  # the user gets max_rows
    prompt = llm.history[1]["messages"][-1]["content"]
    table = [ln for ln in prompt.splitlines() if ln.startswith("| ")]
    assert len(table) == 1 + 5  # header and llm_rows rows
    assert "(95 more rows not shown)" in prompt and "truncated" in prompt


def test_question_length(wh_with, tmp_path):
    deps, llm = core(wh_with(), tmp_path, max_question_chars=60)
    r = run_turn(deps, "t", "How many portfolio companies do we have? " + "x" * 30)
    assert r.state == "failed" and r.error_kind == "too_long" and r.llm_calls == 0
    assert "60" in r.answer
    llm.sql("SELECT count(*) FROM companies").text("400.")
    ok = run_turn(deps, "t", "How many portfolio companies do we have?")
    assert ok.state == "answered"


@pytest.mark.parametrize("attempts", [0, 1, 2])
def test_debug_attempts(wh_with, tmp_path, attempts):
    deps, llm = core(wh_with(), tmp_path, debug_attempts=attempts)
    for _ in range(attempts + 1):
        llm.sql("SELECT nope FROM companies")  # refused every time
    r = run_turn(deps, "t", "How many portfolio companies do we have?")
    assert r.state == "failed" and r.error_kind == "sql"
    assert len(deps.store.get_trace(r.trace_id).sql_attempts) == attempts + 1
    assert len(llm.history) == attempts + 1 and not llm.queue


@pytest.mark.parametrize("rounds", [1, 2])
def test_clarification_rounds(wh_with, tmp_path, rounds):
    deps, llm = core(wh_with(), tmp_path, clarify_rounds=rounds)
    states = []
    for i in range(rounds + 1):
        llm.text("Which period do you mean?")
        r = run_turn(deps, "t", "How did we do?" if i == 0 else "the good one")
        states.append(r.state)
    assert states == ["clarify"] * rounds + ["failed"]
    assert r.error_kind == "clarify" and deps.store.load("t").status == "idle"


def test_history_turns(wh_with, tmp_path):
    deps, llm = core(wh_with(), tmp_path, history_turns=1)
    for i in range(3):
        llm.sql(f"SELECT {i + 1} AS n FROM funds LIMIT 1").text(f"Answer {i}.")
        assert run_turn(deps, "t", f"Question {i}?").state == "answered"
    llm.sql("SELECT 4 AS n FROM funds LIMIT 1").text("Answer 3.")
    run_turn(deps, "t", "Question 3?")
    sent = [m["content"] for m in llm.history[-2]["messages"][1:-1]]  # between system and now
    assert sent[0] == "Question 2?" and "Answer 2." in sent[1] and len(sent) == 2


# ---------------------------------------------------------------------- the LLM client


def test_llm_time_out_and_retries_from_the_environment():
    with FakeOpenAI() as fake:
        for retries in (0, 1):
            config = load_config(env={"OPENAI_API_KEY": "sk-limits-test",
                                      "OPENAI_BASE_URL": fake.base_url,
                                      "FUNDBOT_LLM_TIMEOUT_S": "0.2",
                                      "FUNDBOT_LLM_RETRIES": str(retries)}, dotenv=False)
            llm = build_llm(config)
            before = len(fake.chat_requests)
            for _ in range(retries + 1):
                fake.enqueue(fo.text("too late", delay=2.0))
            # each reply comes 10x past the limit: a time-out, not "too late", shows the
            # limit cut every attempt
            with pytest.raises(LLMError) as info:
                llm.complete([{"role": "user", "content": "hi"}])
            assert info.value.kind == "timeout" and "0.2 seconds" in info.value.message
            assert len(fake.chat_requests) - before == retries + 1  # exactly the attempts
            llm.close()
