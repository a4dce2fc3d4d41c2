"""The LLM port over any OpenAI-compatible Chat Completions endpoint.

The SDK's own retries are off (max_retries=0): this module owns the retry policy so that the
bounds come from Limits, waits are injectable in tests, and every failure ends as one
`LLMError(kind, message)` with a message a user can act on and no secret in it.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import threading
import time
from collections.abc import Callable
from typing import Any, Self
from urllib.parse import urlsplit

import openai
from openai.types.chat import ChatCompletion

from states.ports import LLMError, LLMReply, ToolCall, Usage

log = logging.getLogger("fundbot.llm")

MAX_CONTENT_CHARS = 20_000  # a reply longer than this is a runaway model, not an answer
# Tool-call arguments kept from a reply; states/understand.py refuses anything near this
# (its own limit is the guard's SQL limit), so a cut here is never mistaken for a query.
MAX_ARGUMENT_CHARS = 100_000
MAX_RETRY_AFTER_S = 60.0  # a server asking for a longer pause than this: give up, say when
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 20.0

# Bearer tokens and OpenAI-style keys, scrubbed from anything we put in a message.
_SECRET_PATTERNS = [re.compile(r"(?i)bearer\s+[^\s\"',]+"), re.compile(r"sk-[A-Za-z0-9_\-]{6,}")]


class _Secret:
    """Holds the key without ever showing it in a repr or a traceback's locals."""

    __slots__ = ("value",)

    def __init__(self, value: str):
        self.value = value

    def __repr__(self) -> str:
        return "<secret>"


class _Failure:
    """One failed attempt, classified."""

    def __init__(self, kind: str, retryable: bool, status: int | None = None,
                 detail: str = "", retry_after: float | None = None):
        self.kind = kind
        self.retryable = retryable
        self.status = status
        self.detail = detail
        self.retry_after = retry_after


class OpenAIChat:
    """`LLM` port: `complete(messages, tools, tool_choice) -> LLMReply`, raising `LLMError`."""

    def __init__(self, api_key: str, base_url: str | None = None, model: str = "gpt-4o-mini",
                 timeout_s: float = 60.0, retries: int = 3,
                 sleep: Callable[[float], None] = time.sleep, *,
                 temperature: float | None = None, max_retry_after_s: float = MAX_RETRY_AFTER_S,
                 rng: random.Random | None = None, max_completion_tokens: int | None = 2000):
        self.model = model
        self.max_completion_tokens = max_completion_tokens
        self.base_url = base_url or "https://api.openai.com/v1"
        self.timeout_s = timeout_s
        self.retries = max(0, int(retries))
        self.temperature = temperature  # None: the server's default (reasoning models refuse 0)
        self.seed: int | None = None  # sent when set (eval --seed), for endpoints that take one
        self.max_retry_after_s = max_retry_after_s
        self.calls = 0  # completed calls, and their usage, for benchmarks and traces
        self.usage = Usage()
        self._sleep = sleep
        self._lock = threading.Lock()  # one client may serve several Slack threads at once
        self._rng = rng or random.Random()
        # Local servers (Ollama, llama.cpp, vLLM) take any key but the SDK insists on one.
        self._key = _Secret(api_key or ("unused" if base_url else ""))
        self._client = None
        if self._key.value:
            self._client = openai.OpenAI(api_key=self._key.value, base_url=self.base_url,
                                         timeout=timeout_s, max_retries=0)

    def __repr__(self) -> str:
        return (f"OpenAIChat(model={self.model!r}, base_url={_origin(self.base_url)!r}, "
                f"timeout_s={self.timeout_s:g}, retries={self.retries})")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- the call

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply:
        """One chat completion, retried on 429/5xx/timeouts/connection errors."""
        if self._client is None:
            raise LLMError("auth", "No API key is configured for the language model; "
                                   "set OPENAI_API_KEY (or OPENAI_BASE_URL for a local server).")
        request: dict[str, Any] = {"model": self.model, "messages": messages}
        if tools:
            request["tools"] = tools
            if tool_choice:
                request["tool_choice"] = _tool_choice(tool_choice)
        if self.temperature is not None:
            request["temperature"] = self.temperature
        if self.max_completion_tokens:  # the model's reply is untrusted input: bound it
            request["max_completion_tokens"] = self.max_completion_tokens
        if self.seed is not None:
            request["seed"] = self.seed

        attempts = self.retries + 1
        failure: _Failure | None = None
        for attempt in range(1, attempts + 1):
            completion, failure = self._attempt(request)
            if failure is None:
                return self._reply(completion)
            if not failure.retryable or attempt == attempts:
                break
            if failure.retry_after is not None and failure.retry_after > self.max_retry_after_s:
                break  # waiting that long in a chat thread helps nobody; say when to come back
            delay = self._delay(attempt, failure.retry_after)
            log.warning("LLM %s (HTTP %s), attempt %d of %d; retrying in %.2fs",
                        failure.kind, failure.status or "-", attempt, attempts, delay)
            self._sleep(delay)
        assert failure is not None
        # Raised here, outside any except block, so no SDK exception (which holds the request
        # and its Authorization header) rides along as __context__.
        raise LLMError(failure.kind, self._scrub(self._message(failure, attempt)))

    def _attempt(self, request: dict[str, Any]) -> tuple[Any, _Failure | None]:
        try:
            return self._client.chat.completions.create(**request), None  # type: ignore[union-attr]
        except openai.APITimeoutError:  # before APIConnectionError: it is a subclass
            return None, _Failure("timeout", True)
        except openai.APIConnectionError:
            return None, _Failure("connection", True)
        except openai.APIStatusError as err:
            return None, _classify_status(err)
        except openai.APIResponseValidationError:
            return None, _Failure("bad_response", False, detail="it did not match the schema")
        except ValueError as err:  # json.JSONDecodeError: a truncated or garbled body
            return None, _Failure("bad_response", False, detail=f"unreadable JSON ({err})")
        except openai.OpenAIError as err:
            return None, _Failure("bad_response", False, detail=type(err).__name__)

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Retry-After when the server gave one, else exponential back-off with jitter."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after_s)
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        # Jitter spreads out clients that were throttled together.
        return ceiling * self._rng.uniform(0.5, 1.0)

    # ------------------------------------------------------------ the answer

    def _reply(self, completion: Any) -> LLMReply:
        if not isinstance(completion, ChatCompletion):
            # The SDK hands back text when the body is not JSON: a proxy's HTML page, say.
            raise LLMError("bad_response", "The language model sent a reply we could not read "
                                           "(not a chat completion); check OPENAI_BASE_URL.")
        if not completion.choices:
            raise LLMError("bad_response", "The language model sent an empty reply (no choices).")
        choice = completion.choices[0]
        finish = choice.finish_reason
        if finish == "content_filter":
            raise LLMError("content_filter", "The language model's content filter blocked the "
                                             "reply; try rephrasing the question.")
        message = choice.message
        if message is None:
            raise LLMError("bad_response", "The language model sent a choice without a message.")
        calls = []
        for call in message.tool_calls or []:
            function = getattr(call, "function", None)
            if function is None or not getattr(function, "name", None):
                continue  # custom (non-function) tools are not ours
            arguments = function.arguments
            if not isinstance(arguments, str):  # some servers send an object, not JSON text
                arguments = json.dumps(arguments)
            if len(arguments) > MAX_ARGUMENT_CHARS:
                log.warning("LLM tool-call arguments cut from %d to %d characters",
                            len(arguments), MAX_ARGUMENT_CHARS)
                arguments = arguments[:MAX_ARGUMENT_CHARS]
            calls.append(ToolCall(id=call.id or f"call_{len(calls)}", name=function.name,
                                  arguments=arguments))
        content = message.content
        if content is None and getattr(message, "refusal", None):
            content = message.refusal
        if content is not None and len(content) > MAX_CONTENT_CHARS:
            log.warning("LLM reply truncated from %d to %d characters", len(content),
                        MAX_CONTENT_CHARS)
            content = (content[:MAX_CONTENT_CHARS]
                       + f"\n[reply truncated: {len(content):,} characters]")
        if not calls and not content:
            why = " (it ran out of tokens)" if finish == "length" else ""
            raise LLMError("bad_response", f"The language model sent an empty reply{why}.")
        usage = Usage()
        if completion.usage is not None:
            usage = Usage(prompt_tokens=completion.usage.prompt_tokens or 0,
                          completion_tokens=completion.usage.completion_tokens or 0)
        with self._lock:
            self.calls += 1
            self.usage.prompt_tokens += usage.prompt_tokens
            self.usage.completion_tokens += usage.completion_tokens
        return LLMReply(content=content, tool_calls=calls, usage=usage,
                        model=completion.model or self.model, finish_reason=finish)

    # -------------------------------------------------------------- messages

    def _message(self, f: _Failure, attempts: int) -> str:
        tries = f"after {attempts} attempt{'s' if attempts != 1 else ''}"
        where = _origin(self.base_url)
        if f.kind == "rate_limit":
            when = (f"try again in {f.retry_after:.0f} seconds" if f.retry_after
                    else "try again in a minute")
            return f"The language model is rate-limiting us (HTTP 429) {tries}; {when}."
        if f.kind == "timeout":
            return (f"The language model did not answer within {self.timeout_s:g} seconds "
                    f"({tries}); try again, or ask a simpler question.")
        if f.kind == "server":
            return (f"The language model service failed (HTTP {f.status}) {tries}; "
                    "try again shortly.")
        if f.kind == "connection":
            return (f"Could not reach the language model at {where} {tries}; "
                    "check OPENAI_BASE_URL and the network.")
        if f.kind == "auth":
            return (f"The language model at {where} rejected our credentials (HTTP {f.status}); "
                    "check OPENAI_API_KEY.")
        if f.kind == "bad_request" and f.status == 404:
            return (f"The language model at {where} does not know model {self.model!r} or this "
                    "endpoint (HTTP 404); check FUNDBOT_MODEL and OPENAI_BASE_URL.")
        if f.kind == "bad_request":
            said = f": {f.detail}" if f.detail else ""
            return f"The language model refused the request (HTTP {f.status}){said}"
        return f"The language model sent a reply we could not read ({f.detail})."

    def _scrub(self, text: str) -> str:
        if len(self._key.value) >= 8:  # a placeholder like "x" would blank out real words
            text = text.replace(self._key.value, "***")
        for pattern in _SECRET_PATTERNS:
            text = pattern.sub("***", text)
        return text


# ------------------------------------------------------------------ helpers


def _classify_status(err: openai.APIStatusError) -> _Failure:
    status = err.status_code
    detail = _server_message(err.body)
    if status == 429:
        return _Failure("rate_limit", True, status, detail, _retry_after(err.response.headers))
    if status in (401, 403):
        return _Failure("auth", False, status, detail)
    if status == 408:
        return _Failure("timeout", True, status, detail)
    if status == 409 or status >= 500:
        return _Failure("server", True, status, detail, _retry_after(err.response.headers))
    return _Failure("bad_request", False, status, detail)


def _server_message(body: object) -> str:
    """The server's own explanation (e.g. context length exceeded), trimmed."""
    msg = body.get("message") if isinstance(body, dict) else body
    if not isinstance(msg, str):
        return ""
    msg = " ".join(msg.split())
    return msg[:300] + ("…" if len(msg) > 300 else "")


def _retry_after(headers: Any) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, Retry-After seconds or HTTP date."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            parsed = email.utils.parsedate_tz(value)
            if parsed is None:
                continue
            seconds = email.utils.mktime_tz(parsed) - time.time()
        if math.isnan(seconds) or seconds < 0:  # garbage or in the past
            return 0.0
        return seconds
    return None


def _tool_choice(choice: str) -> Any:
    """'auto' / 'none' / 'required' pass through; any other string names the tool to force."""
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _origin(url: str) -> str:
    """scheme://host[:port] only: a base URL may carry credentials or tokens in its path/query."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "the configured endpoint"
    return f"{parts.scheme}://{host}{port}" if parts.scheme else "the configured endpoint"
