"""A scripted OpenAI-compatible Chat Completions server on 127.0.0.1, for tests and benchmarks.

It speaks real HTTP so the real `openai` client (retries, parsing, timeouts) is what gets tested.

    with FakeOpenAI() as fake:
        fake.enqueue_tool_call("SELECT 1")
        fake.enqueue_text("Done.")
        llm = OpenAIChat(api_key="sk-test", base_url=fake.base_url)
        ...
        assert fake.requests[0].body["messages"][0]["role"] == "system"

Replies come from the queue first, then from `responder(request_json)`, else a 500 whose body
says "fake: no scripted reply" so a missing script is obvious in the failure.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

NO_REPLY = "fake: no scripted reply"

# ------------------------------------------------------------------------ replies


@dataclass
class Reply:
    """One scripted HTTP answer.

    With `message` set, the server wraps it in a full chat.completion (id, model echoed from the
    request, usage estimated unless given). Otherwise `body` is sent verbatim: dict/list as
    JSON, str/bytes as they are.
    """

    status: int = 200
    message: dict[str, Any] | None = None
    finish_reason: str = "stop"
    usage: dict[str, int] | None = None
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    delay: float = 0.0


_call_ids = itertools.count(1)


def text(content: str | None, *, finish_reason: str = "stop", delay: float = 0.0,
         usage: dict[str, int] | None = None) -> Reply:
    """An assistant message with plain text (a clarifying question, an answer)."""
    return Reply(message={"role": "assistant", "content": content, "refusal": None},
                 finish_reason=finish_reason, delay=delay, usage=usage)


def tool_calls(calls: list[tuple[str, dict[str, Any] | str]], *, content: str | None = None,
               delay: float = 0.0, usage: dict[str, int] | None = None) -> Reply:
    """An assistant message calling tools; each call is (name, arguments dict or raw JSON text)."""
    made = []
    for name, args in calls:
        arguments = args if isinstance(args, str) else json.dumps(args)
        made.append({"id": f"call_fake_{next(_call_ids)}", "type": "function",
                     "function": {"name": name, "arguments": arguments}})
    return Reply(message={"role": "assistant", "content": content, "refusal": None,
                          "tool_calls": made},
                 finish_reason="tool_calls", delay=delay, usage=usage)


def tool_call(sql: str, name: str = "sql_query", *, delay: float = 0.0,
              usage: dict[str, int] | None = None) -> Reply:
    """The model calling `sql_query(sql=...)`."""
    return tool_calls([(name, {"sql": sql})], delay=delay, usage=usage)


def error(status: int, body: Any = None, headers: dict[str, str] | None = None, *,
          delay: float = 0.0) -> Reply:
    """An HTTP error in OpenAI's error-envelope shape unless `body` is given."""
    if body is None:
        kinds = {400: "invalid_request_error", 401: "invalid_request_error",
                 404: "invalid_request_error", 429: "rate_limit_exceeded"}
        body = {"error": {"message": f"fake: HTTP {status}",
                          "type": kinds.get(status, "server_error"),
                          "param": None, "code": None}}
    return Reply(status=status, body=body, headers=dict(headers or {}), delay=delay)


def raw(body: bytes | str, status: int = 200, *, content_type: str = "application/json",
        delay: float = 0.0) -> Reply:
    """Bytes sent as they are: truncated JSON, HTML from a proxy, an empty body."""
    return Reply(status=status, body=body.encode() if isinstance(body, str) else body,
                 content_type=content_type, delay=delay)


def json_body(obj: Any, status: int = 200, *, delay: float = 0.0) -> Reply:
    """Any JSON object sent verbatim (empty choices, odd finish reasons, huge replies)."""
    return Reply(status=status, body=obj, delay=delay)


Responder = Callable[[dict[str, Any]], "Reply | str | dict[str, Any] | None"]

# ----------------------------------------------------------------------- requests


@dataclass
class RecordedRequest:
    """What the server received. The Authorization header is kept only as a flag and a hash."""

    method: str
    path: str
    body: Any  # parsed JSON, or None
    headers: dict[str, str] = field(repr=False)  # lower-cased names; no authorization
    has_auth: bool = False
    auth_sha256: str = ""  # sha256 of the header value, to compare against a known key

    @property
    def messages(self) -> list[dict[str, Any]]:
        return (self.body or {}).get("messages", []) if isinstance(self.body, dict) else []

    def auth_matches(self, api_key: str) -> bool:
        return self.auth_sha256 == _sha(f"Bearer {api_key}")


def _sha(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _estimate_tokens(value: Any) -> int:
    # ~4 characters a token is close enough for budgets and benchmarks.
    size = len(value) if isinstance(value, str) else len(json.dumps(value, default=str))
    return max(1, size // 4)


# ------------------------------------------------------------------------- server


class FakeOpenAI:
    """The server; starts on construction, stops on close() or leaving the `with` block."""

    def __init__(self, responder: Responder | None = None, *, latency: float = 0.0,
                 api_key: str | None = None, model: str = "fake-model"):
        self.responder = responder
        self.latency = latency  # seconds added to every call, for benchmarks
        self.model = model  # listed by /v1/models; completions echo the requested model
        self.requests: list[RecordedRequest] = []
        self._expected_auth = _sha(f"Bearer {api_key}") if api_key is not None else None
        self._queue: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._server.daemon_threads = True
        self._server.fake = self  # type: ignore[attr-defined]
        self.port: int = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"fake-openai-{self.port}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"FakeOpenAI(base_url={self.base_url!r}, queued={len(self._queue)}, " \
               f"requests={len(self.requests)})"

    # ----------------------------------------------------------------- scripting

    def enqueue(self, reply: Reply) -> FakeOpenAI:
        with self._lock:
            self._queue.append(reply)
        return self

    def enqueue_tool_call(self, sql: str, name: str = "sql_query", *, delay: float = 0.0
                          ) -> FakeOpenAI:
        return self.enqueue(tool_call(sql, name, delay=delay))

    def enqueue_text(self, content: str | None, *, delay: float = 0.0) -> FakeOpenAI:
        return self.enqueue(text(content, delay=delay))

    def enqueue_error(self, status: int, body: Any = None, headers: dict[str, str] | None = None,
                      *, delay: float = 0.0) -> FakeOpenAI:
        return self.enqueue(error(status, body, headers, delay=delay))

    def enqueue_raw(self, body: bytes | str, status: int = 200, *,
                    content_type: str = "application/json", delay: float = 0.0) -> FakeOpenAI:
        return self.enqueue(raw(body, status, content_type=content_type, delay=delay))

    def enqueue_json(self, obj: Any, status: int = 200, *, delay: float = 0.0) -> FakeOpenAI:
        return self.enqueue(json_body(obj, status, delay=delay))

    def enqueue_delay(self, seconds: float, then: Reply | None = None) -> FakeOpenAI:
        """Wait `seconds` before answering with `then` (default: a short text reply)."""
        return self.enqueue(replace(then or text("ok"), delay=seconds))

    @property
    def pending(self) -> int:
        """Scripted replies not yet served."""
        with self._lock:
            return len(self._queue)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of chat completion requests, in order."""
        return [r.body for r in self.chat_requests]

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()  # wakes delayed replies
        self._server.shutdown()
        self._server.server_close()
        # Keep-alive connections would otherwise keep being served by their threads.
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------- serving

    def _next_reply(self, body: Any) -> Reply:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.responder is not None:
            got = self.responder(body if isinstance(body, dict) else {})
            if isinstance(got, Reply):
                return got
            if isinstance(got, str):
                return text(got)
            if isinstance(got, dict):
                return json_body(got)
        return error(500, {"error": {"message": NO_REPLY, "type": "server_error",
                                     "param": None, "code": None}})

    def _completion(self, reply: Reply, request: dict[str, Any]) -> dict[str, Any]:
        message = copy.deepcopy(reply.message) or {}
        produced = message.get("content") or ""
        for call in message.get("tool_calls") or []:
            produced += call["function"]["arguments"]
        usage = reply.usage
        if usage is None:
            prompt = _estimate_tokens(request.get("messages", []))
            completion = _estimate_tokens(produced)
            usage = {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}
        with self._lock:
            n = len(self.requests)
        return {
            "id": f"chatcmpl-fake-{n}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model") or self.model,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": reply.finish_reason}],
            "usage": usage,
            "system_fingerprint": "fp_fake",
        }

    def _models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.model, "object": "model",
                                            "created": 0, "owned_by": "fake"}]}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real service; benchmarks depend on it
    server_version = "FakeOpenAI/1"
    # Headers and body go out in two writes; with Nagle on, each call stalls ~40 ms.
    disable_nagle_algorithm = True

    @property
    def fake(self) -> FakeOpenAI:
        return self.server.fake  # type: ignore[attr-defined]

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake._conns.add(self.connection)

    def finish(self) -> None:
        with self.fake._lock:
            self.fake._conns.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet tests; the recorded requests are the log

    def do_GET(self) -> None:
        if self._check_auth(self._record(None)):
            return
        if self.path.rstrip("/").endswith("/models"):
            self._send(200, self.fake._models())
        else:
            self._send(404, {"error": {"message": f"fake: no route GET {self.path}",
                                       "type": "invalid_request_error"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else b""
        try:
            body = json.loads(data) if data else None
        except ValueError:
            body = None
        if self._check_auth(self._record(body)):
            return
        if not self.path.rstrip("/").endswith("/chat/completions"):
            self._send(404, {"error": {"message": f"fake: no route POST {self.path}",
                                       "type": "invalid_request_error"}})
            return
        if not isinstance(body, dict):
            self._send(400, {"error": {"message": "fake: request body is not a JSON object",
                                       "type": "invalid_request_error"}})
            return
        reply = self.fake._next_reply(body)
        wait = self.fake.latency + reply.delay
        if wait > 0 and self.fake._stop.wait(wait):
            return  # shutting down
        if reply.message is not None:
            payload: Any = self.fake._completion(reply, body)
        else:
            payload = reply.body
        self._send(reply.status, payload, reply.headers, reply.content_type)

    def _record(self, body: Any) -> RecordedRequest:
        auth = self.headers.get("Authorization")
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() != "authorization"}
        rec = RecordedRequest(method=self.command, path=self.path, body=body, headers=headers,
                              has_auth=auth is not None, auth_sha256=_sha(auth) if auth else "")
        with self.fake._lock:
            self.fake.requests.append(rec)
        return rec

    def _check_auth(self, rec: RecordedRequest) -> bool:
        """Answer 401 when the fake was told which key to expect and got another; True if so."""
        expected = self.fake._expected_auth
        if expected is None or rec.auth_sha256 == expected:
            return False
        self._send(401, {"error": {"message": "Incorrect API key provided.",
                                   "type": "invalid_request_error", "code": "invalid_api_key"}})
        return True

    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json") -> None:
        if isinstance(payload, bytes):
            data = payload
        elif isinstance(payload, str):
            data = payload.encode()
        elif payload is None:
            data = b""
        else:
            data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-request-id", f"req_fake_{len(self.fake.requests)}")
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
            self.wfile.flush()
        except OSError:
            # The client gave up (timeout) or the fake is closing: nothing to answer.
            self.close_connection = True
