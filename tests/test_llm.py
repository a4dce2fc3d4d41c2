"""OpenAIChat through the real openai client against the fake server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest

from bot.llm import MAX_CONTENT_CHARS, OpenAIChat
from states.ports import LLMError
from tests.fakes.fake_openai import NO_REPLY, FakeOpenAI, tool_calls

SECRET = "sk-test-SECRET123"
MESSAGES = [{"role": "system", "content": "You write DuckDB SQL."},
            {"role": "user", "content": "How much did we invest in Databricks?"}]
TOOLS = [{"type": "function", "function": {
    "name": "sql_query", "description": "Run one read-only SQL query.",
    "parameters": {"type": "object", "properties": {"sql": {"type": "string"}},
                   "required": ["sql"]}}}]


class Sleeps(list):
    """A sleep that records instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def chat(fake: FakeOpenAI, sleeps: Sleeps, **kw: object) -> OpenAIChat:
    options = {"model": "gpt-test", "timeout_s": 5.0, "retries": 3, "sleep": sleeps} | kw
    return OpenAIChat(SECRET, base_url=fake.base_url, **options)  # type: ignore[arg-type]


def fail(llm: OpenAIChat, **kw: object) -> LLMError:
    with pytest.raises(LLMError) as info:
        llm.complete(MESSAGES, tools=TOOLS, **kw)  # type: ignore[arg-type]
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)
    assert info.value.__context__ is None and info.value.__cause__ is None
    return info.value


# ------------------------------------------------------------------ happy paths


def test_tool_call_is_parsed_and_request_is_real(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_tool_call("SELECT SUM(amount) FROM investments")
    reply = chat(fake, sleeps).complete(MESSAGES, tools=TOOLS, tool_choice="auto")
    assert reply.content is None
    assert [c.name for c in reply.tool_calls] == ["sql_query"]
    assert json.loads(reply.tool_calls[0].arguments) == {
        "sql": "SELECT SUM(amount) FROM investments"}
    assert reply.tool_calls[0].id.startswith("call_")
    assert reply.finish_reason == "tool_calls"
    assert reply.model == "gpt-test"
    body = fake.bodies[0]
    assert body["model"] == "gpt-test"
    assert body["messages"] == MESSAGES
    assert body["tools"] == TOOLS and body["tool_choice"] == "auto"
    assert fake.requests[0].auth_matches(SECRET)
    assert sleeps == []


def test_text_reply_and_usage(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_text("Which Adam: Adam Brooks or Adam Levin?")
    fake.enqueue_json({"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "stop",
                                    "message": {"role": "assistant", "content": "Hi"}}],
                       "usage": {"prompt_tokens": 123, "completion_tokens": 7,
                                 "total_tokens": 130}})
    llm = chat(fake, sleeps)
    first = llm.complete(MESSAGES)
    assert first.content == "Which Adam: Adam Brooks or Adam Levin?"
    assert first.tool_calls == [] and first.finish_reason == "stop"
    assert first.usage.prompt_tokens > 0 and first.usage.completion_tokens > 0
    second = llm.complete(MESSAGES)
    assert (second.usage.prompt_tokens, second.usage.completion_tokens) == (123, 7)
    assert llm.calls == 2
    assert llm.usage.prompt_tokens == first.usage.prompt_tokens + 123
    assert "tools" not in fake.bodies[0]  # no tools offered, none sent


def test_named_tool_choice_forces_that_function(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_tool_call("SELECT 1")
    chat(fake, sleeps).complete(MESSAGES, tools=TOOLS, tool_choice="sql_query")
    assert fake.bodies[0]["tool_choice"] == {"type": "function",
                                             "function": {"name": "sql_query"}}


def test_several_tool_calls_kept_in_order(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue(tool_calls([("sql_query", {"sql": "SELECT 1"}), ("sql_query", '{"sql": "x')]))
    reply = chat(fake, sleeps).complete(MESSAGES, tools=TOOLS)
    assert [c.arguments for c in reply.tool_calls] == ['{"sql": "SELECT 1"}', '{"sql": "x']


def test_huge_content_is_capped(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_text("x" * (MAX_CONTENT_CHARS + 5000))
    reply = chat(fake, sleeps).complete(MESSAGES)
    assert reply.content is not None
    assert reply.content.startswith("x" * MAX_CONTENT_CHARS)
    assert len(reply.content) < MAX_CONTENT_CHARS + 100
    assert "truncated" in reply.content


def test_responder_answers_when_queue_is_empty(sleeps: Sleeps) -> None:
    seen: list[str] = []

    def gold(request: dict) -> str:
        seen.append(request["messages"][-1]["content"])
        return "answer for: " + request["messages"][-1]["content"]

    with FakeOpenAI(responder=gold) as server:
        server.enqueue_text("scripted first")
        llm = chat(server, sleeps)
        assert llm.complete(MESSAGES).content == "scripted first"
        assert llm.complete(MESSAGES).content == "answer for: " + MESSAGES[-1]["content"]
    assert seen == [MESSAGES[-1]["content"]]


# ---------------------------------------------------------------------- retries


def test_429_with_retry_after_waits_what_the_server_said(fake: FakeOpenAI, sleeps: Sleeps
                                                         ) -> None:
    fake.enqueue_error(429, headers={"Retry-After": "7"})
    fake.enqueue_tool_call("SELECT 1")
    reply = chat(fake, sleeps).complete(MESSAGES, tools=TOOLS)
    assert reply.tool_calls[0].name == "sql_query"
    assert sleeps == [7.0]
    assert len(fake.chat_requests) == 2


def test_429_without_retry_after_backs_off_exponentially(fake: FakeOpenAI, sleeps: Sleeps
                                                         ) -> None:
    for _ in range(3):
        fake.enqueue_error(429)
    fake.enqueue_text("finally")
    assert chat(fake, sleeps).complete(MESSAGES).content == "finally"
    assert len(sleeps) == 3
    # Jittered within [half, full] of 0.5, 1, 2 seconds: each wait longer in expectation.
    for wait, ceiling in zip(sleeps, (0.5, 1.0, 2.0), strict=True):
        assert ceiling / 2 <= wait <= ceiling


def test_huge_retry_after_gives_up_at_once_and_says_when(fake: FakeOpenAI, sleeps: Sleeps
                                                         ) -> None:
    fake.enqueue_error(429, headers={"Retry-After": "600"})
    err = fail(chat(fake, sleeps))
    assert err.kind == "rate_limit"
    assert "600 seconds" in err.message
    assert sleeps == [] and len(fake.chat_requests) == 1


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors_are_retried_then_succeed(fake: FakeOpenAI, sleeps: Sleeps,
                                                status: int) -> None:
    fake.enqueue_error(status)
    fake.enqueue_error(503, headers={"Retry-After": "1"})
    fake.enqueue_text("ok")
    assert chat(fake, sleeps).complete(MESSAGES).content == "ok"
    assert len(sleeps) == 2 and sleeps[1] == 1.0


@pytest.mark.parametrize(("status", "kind", "words"), [
    (429, "rate_limit", "rate-limiting us (HTTP 429) after 4 attempts; try again in a minute"),
    (500, "server", "failed (HTTP 500) after 4 attempts"),
    (503, "server", "failed (HTTP 503) after 4 attempts"),
])
def test_exhausted_retries_raise_kind(fake: FakeOpenAI, sleeps: Sleeps, status: int,
                                      kind: str, words: str) -> None:
    for _ in range(4):
        fake.enqueue_error(status)
    err = fail(chat(fake, sleeps, retries=3))
    assert err.kind == kind
    assert words in err.message
    assert len(fake.chat_requests) == 4 and len(sleeps) == 3


def test_empty_queue_is_a_clear_server_error(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    err = fail(chat(fake, sleeps, retries=0))
    assert err.kind == "server"
    assert fake.pending == 0 and len(fake.chat_requests) == 1
    assert "after 1 attempt;" in err.message
    # The fake's own body names the problem for whoever debugs a test.
    assert NO_REPLY == "fake: no scripted reply"


@pytest.mark.parametrize(("status", "kind"), [(401, "auth"), (403, "auth"),
                                              (400, "bad_request"), (404, "bad_request"),
                                              (422, "bad_request")])
def test_client_errors_are_not_retried(fake: FakeOpenAI, sleeps: Sleeps, status: int,
                                       kind: str) -> None:
    fake.enqueue_error(status)
    err = fail(chat(fake, sleeps))
    assert err.kind == kind
    assert len(fake.chat_requests) == 1 and sleeps == []


def test_bad_request_carries_the_servers_reason(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_error(400, {"error": {"message": "This model's maximum context length is 8192",
                                       "type": "invalid_request_error"}})
    err = fail(chat(fake, sleeps))
    assert err.kind == "bad_request" and "maximum context length is 8192" in err.message


def test_wrong_key_is_auth_and_key_never_leaks(sleeps: Sleeps) -> None:
    with FakeOpenAI(api_key="sk-the-right-one") as server:
        llm = chat(server, sleeps)
        err = fail(llm)
        assert err.kind == "auth" and "OPENAI_API_KEY" in err.message
        assert SECRET not in repr(llm) and SECRET not in str(vars(llm))
        assert SECRET not in repr(server.requests) and "Bearer" not in repr(server.requests)
        assert server.requests[0].has_auth and not server.requests[0].auth_matches("sk-x")


def test_secret_echoed_by_server_is_scrubbed(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_error(400, {"error": {"message": f"bad key {SECRET} / Bearer {SECRET}"}})
    err = fail(chat(fake, sleeps))
    assert SECRET not in err.message and "***" in err.message


def test_timeout_is_bounded(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_delay(3.0)
    fake.enqueue_delay(3.0)
    llm = chat(fake, sleeps, timeout_s=0.3, retries=1)
    err = fail(llm)
    # both replies were due 10x past the limit: an error, not "ok", shows the limit cut each
    assert err.kind == "timeout"
    assert "0.3 seconds" in err.message and "after 2 attempts" in err.message
    assert len(fake.chat_requests) == 2 and len(sleeps) == 1


def test_timeout_then_success(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_delay(2.0)
    fake.enqueue_text("quick now")
    assert chat(fake, sleeps, timeout_s=0.3).complete(MESSAGES).content == "quick now"


def test_connection_refused_is_connection(sleeps: Sleeps) -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    llm = OpenAIChat(SECRET, base_url=f"http://user:pw@127.0.0.1:{port}/v1", retries=2,
                     timeout_s=2, sleep=sleeps)
    err = fail(llm)
    assert err.kind == "connection"
    assert f"127.0.0.1:{port}" in err.message and "pw" not in err.message
    assert "after 3 attempts" in err.message and len(sleeps) == 2


# ----------------------------------------------------------------- bad replies


def test_truncated_json_is_bad_response(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_raw(b'{"id": "chatcmpl-1", "object": "chat.completion", "choi')
    err = fail(chat(fake, sleeps))
    assert err.kind == "bad_response"
    assert len(fake.chat_requests) == 1


def test_html_from_a_proxy_is_bad_response(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_raw("<html>It works!</html>", content_type="text/html")
    err = fail(chat(fake, sleeps))
    assert err.kind == "bad_response" and "OPENAI_BASE_URL" in err.message


def test_empty_choices_is_bad_response(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_json({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 0,
                                                "total_tokens": 1}})
    err = fail(chat(fake, sleeps))
    assert err.kind == "bad_response" and "no choices" in err.message


def test_empty_message_is_bad_response(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_json({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "length",
                                    "message": {"role": "assistant", "content": None}}]})
    err = fail(chat(fake, sleeps))
    assert err.kind == "bad_response" and "ran out of tokens" in err.message


def test_content_filter(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    fake.enqueue_json({"id": "c", "object": "chat.completion", "created": 1, "model": "m",
                       "choices": [{"index": 0, "finish_reason": "content_filter",
                                    "message": {"role": "assistant", "content": ""}}]})
    err = fail(chat(fake, sleeps))
    assert err.kind == "content_filter" and "rephras" in err.message


def test_no_key_and_no_base_url_is_auth() -> None:
    llm = OpenAIChat("", base_url=None)
    with pytest.raises(LLMError) as info:
        llm.complete(MESSAGES)
    assert info.value.kind == "auth"


def test_repr_hides_key(fake: FakeOpenAI, sleeps: Sleeps) -> None:
    llm = chat(fake, sleeps)
    assert SECRET not in repr(llm)
    assert "gpt-test" in repr(llm) and f"127.0.0.1:{fake.port}" in repr(llm)
