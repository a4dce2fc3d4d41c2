"""The LLM fault corpus: every fault through the real OpenAIChat, real HTTP to FakeOpenAI on
127.0.0.1, and the real core (run_turn, DuckWarehouse on a copy of the sample warehouse,
SqliteStore in tmp_path).

For each fault: bounded retries (waits recorded by an injected sleep, so nothing waits), then
a clear message or an answer; the thread is consistent afterwards (idle, the turn in its
history, the trace's final state set) and the next question in the same thread is answered.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from bot.llm import BACKOFF_CAP_S, MAX_CONTENT_CHARS, OpenAIChat
from bot.store import SqliteStore
from bot.warehouse import DuckWarehouse
from states.interpret import MAX_ANSWER_CHARS
from states.machine import Deps, run_turn
from states.ports import Limits, TurnResult
from tests.fakes import fake_openai as fo
from tests.fakes.fake_openai import FakeOpenAI, Reply
from tests.warehouse_fixture import copied_warehouse

API_KEY = "sk-fault-corpus-0123456789abcdef"
LIMITS = Limits(llm_timeout_s=0.3, llm_retries=2, query_timeout_s=5.0)
ATTEMPTS = LIMITS.llm_retries + 1
QUESTION = "How many portfolio companies do we have?"
NEXT_QUESTION = "And how many funds are there?"
GOOD_SQL = "SELECT count(*) AS companies FROM companies"
NEXT_SQL = "SELECT count(*) AS funds FROM funds"
BAD_SQL = "SELECT nope FROM companies"  # refused by the guard: sends the turn to debug
EMPTY_CHOICES = {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": "m",
                 "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0,
                                          "total_tokens": 1}}
HUGE = "blah " * 50_000  # ~50,000 tokens


@dataclass
class Fault:
    name: str
    stage: str  # understand | debug | interpret: where the fault hits
    replies: list[Reply]
    state: str  # the turn's outcome: failed, or answered when the fault is survived in-turn
    says: str = ""  # fragment of the user's message
    sleeps: list[float] | None = None  # exact waits expected, when the server names them
    dead_endpoint: bool = False
    max_requests: int = 0  # HTTP requests this turn may make (0: derived)
    extra: dict = field(default_factory=dict)


def _n(reply: Reply, n: int = ATTEMPTS) -> list[Reply]:
    return [reply] * n


FAULTS = [
    Fault("429 with Retry-After", "understand",
          _n(fo.error(429, headers={"Retry-After": "7"})), "failed", "rate-limiting",
          sleeps=[7.0] * LIMITS.llm_retries),
    Fault("429 with Retry-After, then served", "understand",
          [fo.error(429, headers={"Retry-After": "2"}), fo.tool_call(GOOD_SQL),
           fo.text("You hold 400 companies.")], "answered", sleeps=[2.0]),
    Fault("429 without Retry-After", "understand", _n(fo.error(429)), "failed", "rate-limiting"),
    Fault("HTTP 500", "understand", _n(fo.error(500)), "failed", "language model"),
    Fault("HTTP 503", "understand", _n(fo.error(503)), "failed", "language model"),
    Fault("HTTP 503, then served", "understand",
          [fo.error(503), fo.error(503), fo.tool_call(GOOD_SQL), fo.text("400 companies.")],
          "answered"),
    Fault("time-out", "understand", _n(fo.text("late", delay=1.0)), "failed", "in time"),
    Fault("connection refused", "understand", [], "failed", "could not reach",
          dead_endpoint=True),
    Fault("HTTP 401", "understand", [fo.error(401)], "failed", "credentials", max_requests=1),
    Fault("truncated JSON", "understand", [fo.raw('{"id": "chatcmpl-1", "choices": [{"mess')],
          "failed", "language model", max_requests=1),
    Fault("HTML from a proxy", "understand",
          [fo.raw("<html><body>502 Bad Gateway</body></html>", content_type="text/html")],
          "failed", "language model", max_requests=1),
    Fault("malformed tool arguments", "understand",
          [fo.tool_calls([("sql_query", '{"sql": "SELECT count(*) FROM comp')])] * 2,
          "failed", "could not use", max_requests=2),
    Fault("malformed tool arguments, then corrected", "understand",
          [fo.tool_calls([("sql_query", '{"sql": ')]), fo.tool_call(GOOD_SQL),
           fo.text("400 companies.")], "answered"),
    Fault("unknown tool name", "understand",
          [fo.tool_calls([("drop_database", {"name": "fund"})])] * 2, "failed", "could not use",
          max_requests=2),
    Fault("several tool calls at once", "understand",
          [fo.tool_calls([("sql_query", {"sql": GOOD_SQL}),
                          ("sql_query", {"sql": "DROP TABLE investments"})]),
           fo.text("400 companies.")], "answered", extra={"sql_runs": 1}),
    Fault("unknown tool beside a good call", "understand",
          [fo.tool_calls([("shell", {"cmd": "rm -rf /"}), ("sql_query", {"sql": GOOD_SQL})]),
           fo.text("400 companies.")], "answered", extra={"sql_runs": 1}),
    Fault("empty choices", "understand", [fo.json_body(EMPTY_CHOICES)], "failed",
          "language model", max_requests=1),
    Fault("content-filter refusal", "understand",
          [fo.text(None, finish_reason="content_filter")], "failed", "content filter",
          max_requests=1),
    Fault("50,000-token reply to interpret", "interpret",
          [fo.text(HUGE, usage={"prompt_tokens": 900, "completion_tokens": 50_000,
                                "total_tokens": 50_900})], "answered", max_requests=2),
    Fault("HTTP 500 in interpret", "interpret", _n(fo.error(500)), "answered",
          "could not get the language model to summarise"),
    Fault("time-out in interpret", "interpret", _n(fo.text("late", delay=1.0)), "answered",
          "could not get the language model to summarise"),
    Fault("429 in debug", "debug", _n(fo.error(429)), "failed", "rate-limiting"),
    Fault("truncated JSON in debug", "debug", [fo.raw('{"choices": [')], "failed",
          "language model", max_requests=2),
]


def _prefix(stage: str) -> list[Reply]:
    """Replies that bring the turn to the faulty stage."""
    return {"understand": [], "interpret": [fo.tool_call(GOOD_SQL)],
            "debug": [fo.tool_call(BAD_SQL)]}[stage]


# ------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def warehouse(sample_db, tmp_path_factory) -> Iterator[DuckWarehouse]:
    yield from copied_warehouse(sample_db, tmp_path_factory, "faults", LIMITS)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=API_KEY) as server:
        yield server


def dead_url() -> str:
    """A 127.0.0.1 port nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def make_deps(base_url: str, warehouse: DuckWarehouse, store: SqliteStore,
              sleeps: list[float]) -> Deps:
    llm = OpenAIChat(api_key=API_KEY, base_url=base_url, model="fake-model",
                     timeout_s=LIMITS.llm_timeout_s, retries=LIMITS.llm_retries,
                     sleep=sleeps.append)
    return Deps(llm=llm, warehouse=warehouse, store=store, limits=LIMITS,
                today=date(2026, 10, 15))


def assert_consistent(store: SqliteStore, thread: str, r: TurnResult, turns: int) -> None:
    """Idle, nothing pending, the turn in the history, its trace finished."""
    conv = store.load(thread)
    assert conv.status == "idle" and conv.pending is None
    assert len(conv.history) == turns
    assert conv.history[-1].trace_id == r.trace_id and conv.history[-1].state == r.state
    trace = store.get_trace(r.trace_id)
    assert trace is not None and trace.final_state == r.state
    assert trace.steps, "the trace records the states visited"


# ---------------------------------------------------------------------------- tests


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_fault_is_survived(fault: Fault, fake: FakeOpenAI, warehouse: DuckWarehouse,
                           tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite3")
    sleeps: list[float] = []
    for reply in _prefix(fault.stage) + fault.replies:
        fake.enqueue(reply)
    url = dead_url() if fault.dead_endpoint else fake.base_url
    deps = make_deps(url, warehouse, store, sleeps)
    thread = f"C1:{fault.name}"

    r = run_turn(deps, thread, QUESTION, user="U1")

    # the outcome, and a message a partner can act on
    assert r.state == fault.state, (r.state, r.answer)
    assert r.answer and fault.says.lower() in r.answer.lower(), r.answer
    assert len(r.answer) <= MAX_ANSWER_CHARS + 1
    assert "Traceback" not in r.answer and API_KEY not in r.answer
    if r.state == "failed":
        assert r.error_kind == "llm", (r.error_kind, r.answer)
        assert len(r.answer) < 400
    if fault.stage == "interpret":
        assert r.rows and r.sql == GOOD_SQL  # the data is shown even when the summary fails
    # bounded retries: no more requests than the attempts allow, waits within the bounds
    calls = len(_prefix(fault.stage)) + 1 + (1 if fault.stage == "debug" else 0)
    limit = fault.max_requests or (len(_prefix(fault.stage)) + ATTEMPTS * 2)
    assert len(fake.chat_requests) <= limit
    assert len(sleeps) <= LIMITS.llm_retries * calls
    assert all(0 <= s <= max(BACKOFF_CAP_S, 60.0) for s in sleeps)
    if fault.sleeps is not None:
        assert sleeps == fault.sleeps
    if len(fault.replies) == ATTEMPTS and all(x is fault.replies[0] for x in fault.replies):
        # a fault that lasts: every attempt made, then given up; no more
        assert len(fake.chat_requests) == len(_prefix(fault.stage)) + ATTEMPTS
        assert len(sleeps) == LIMITS.llm_retries
    if fault.dead_endpoint:
        assert len(fake.chat_requests) == 0 and len(sleeps) == LIMITS.llm_retries
    if "sql_runs" in fault.extra:
        trace = store.get_trace(r.trace_id)
        assert [a.sql for a in trace.sql_attempts] == [GOOD_SQL]
    # the thread's state is consistent, the trace says where the turn ended
    assert_consistent(store, thread, r, turns=1)
    trace = store.get_trace(r.trace_id)
    if r.state == "failed":
        assert trace.error
        if "tool" not in fault.name:  # an HTTP-level fault: the failed call is in the trace
            assert any(c.error for c in trace.llm_calls)
    # the next question in the same thread works (the endpoint is back, if it was down)
    fake.enqueue(fo.tool_call(NEXT_SQL)).enqueue(fo.text("There are 8 funds."))
    deps = make_deps(fake.base_url, warehouse, store, sleeps)
    r2 = run_turn(deps, thread, NEXT_QUESTION, user="U1")
    assert r2.state == "answered" and r2.answer == "There are 8 funds.", r2.answer
    assert r2.rows == [(8,)]
    assert_consistent(store, thread, r2, turns=2)
    store.close()


def test_fifty_thousand_token_reply_is_capped_on_the_way_in(fake: FakeOpenAI) -> None:
    """The client caps a runaway reply before the core sees it; usage is still recorded."""
    fake.enqueue(fo.text(HUGE, usage={"prompt_tokens": 5, "completion_tokens": 50_000,
                                      "total_tokens": 50_005}))
    llm = OpenAIChat(api_key=API_KEY, base_url=fake.base_url, sleep=lambda s: None)
    reply = llm.complete([{"role": "user", "content": "hi"}])
    assert len(reply.content) <= MAX_CONTENT_CHARS + 60 and "truncated" in reply.content
    assert reply.usage.completion_tokens == 50_000


def test_faults_figures(capsys) -> None:
    """The figures SECURITY.md quotes."""
    survived_in_turn = sum(f.state == "answered" for f in FAULTS)
    kinds = {f.name.split(",")[0].replace(" in interpret", "").replace(" in debug", "")
             for f in FAULTS}
    assert len(FAULTS) >= 13 and {"understand", "debug", "interpret"} == {f.stage for f in FAULTS}
    with capsys.disabled():
        print(f"\n[LLM faults] injected: {len(FAULTS)} ({len(kinds)} kinds, at understand/debug/"
              f"interpret); answered despite the fault: {survived_in_turn}; failed with a clear "
              f"message: {len(FAULTS) - survived_in_turn}; thread consistent and next question "
              f"answered: {len(FAULTS)} of {len(FAULTS)} (each asserted by test_fault_is_survived)")


BAD_INPUT = [  # (message, outcome, error kind, LLM calls) — issue 2's bad input, end to end
    ("", "failed", "empty", 0),
    ("   \n\t ", "failed", "empty", 0),
    ("How much? " * 2000, "failed", "too_long", 0),  # 20,000 characters
    ("DROP TABLE investments; SELECT 1", "failed", "refused", 0),
    ("¿Cuántas empresas hay en el portafolio?", "answered", None, 2),
    ("SELECT count(*) AS companies FROM companies", "answered", None, 1),  # pasted, runs as is
]


@pytest.mark.parametrize(("text", "state", "kind", "calls"), BAD_INPUT,
                         ids=["empty", "whitespace", "20k chars", "pasted DROP", "Spanish",
                              "pasted SELECT"])
def test_bad_input_through_the_real_core(text, state, kind, calls, fake, warehouse, tmp_path):
    store = SqliteStore(tmp_path / "state.sqlite3")
    if state == "answered":
        if calls == 2:
            fake.enqueue(fo.tool_call(GOOD_SQL))
        fake.enqueue(fo.text("400 companies."))
    deps = make_deps(fake.base_url, warehouse, store, [])
    r = run_turn(deps, "C1:bad", text, user="U1")
    assert (r.state, r.error_kind, r.llm_calls) == (state, kind, calls), r.answer
    assert r.answer and len(r.answer) < 400
    assert len(fake.chat_requests) == calls
    assert_consistent(store, "C1:bad", r, turns=1)
    assert len(store.get_trace(r.trace_id).question) <= 2001  # a huge message is not stored whole
    fake.enqueue(fo.tool_call(NEXT_SQL)).enqueue(fo.text("There are 8 funds."))
    r2 = run_turn(deps, "C1:bad", NEXT_QUESTION, user="U1")
    assert r2.state == "answered" and r2.rows == [(8,)]
    store.close()
