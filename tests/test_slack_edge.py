"""The HTTP edge under abuse: idle and slow clients, oversized and malformed requests.

A real Bolt app behind the real HttpServer (uvicorn) on 127.0.0.1, with one listener that
records mentions; raw sockets play the attacker, so every byte is the test's choice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import urllib.request

import pytest
from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.slack import app as slack_app
from bot.slack.app import MAX_BODY, HttpServer

SECRET = "edge-test-signing-secret"


@pytest.fixture
def edge():
    def authorize(**_: object) -> AuthorizeResult:  # no auth.test: this test has no Slack
        return AuthorizeResult(enterprise_id=None, team_id="T1", bot_user_id="U0", bot_id="B0",
                               bot_token="xoxb-edge-test")

    bolt = App(signing_secret=SECRET, authorize=authorize, process_before_response=True,
               client=WebClient(base_url="http://127.0.0.1:9/"))
    seen: list[str] = []
    arrived = threading.Event()

    @bolt.event("app_mention")
    def mention(event: dict) -> None:
        seen.append(event["text"])
        arrived.set()

    server = HttpServer(bolt, host="127.0.0.1", port=0, signing_secret=SECRET).start()
    server.seen, server.arrived = seen, arrived  # type: ignore[attr-defined]
    yield server
    server.stop()


def signed_event(text: str, event_id: str = "Ev1") -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"type": "event_callback", "event_id": event_id, "team_id": "T1",
                       "api_app_id": "A1", "event": {"type": "app_mention", "text": text,
                                                     "user": "U1", "channel": "C1",
                                                     "ts": "1.0"}}).encode()
    return body, sign(body)


def sign(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(SECRET.encode(), b"v0:" + ts.encode() + b":" + body, hashlib.sha256)
    return {"X-Slack-Request-Timestamp": ts, "Content-Type": "application/json",
            "X-Slack-Signature": "v0=" + digest.hexdigest()}


def raw(server: HttpServer, head: bytes, body: bytes = b"", timeout: float = 30) -> bytes:
    """Send bytes as they are; the status line and what follows, or b'' if closed."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data


def post(server: HttpServer, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(server.url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def status(response: bytes) -> int:
    return int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 0


def test_idle_and_slowloris_clients_do_not_silence_the_endpoint(edge):
    idle = [socket.create_connection(("127.0.0.1", edge.port)) for _ in range(200)]
    slow = []
    for _ in range(50):  # a request line and half a header block, never finished
        s = socket.create_connection(("127.0.0.1", edge.port))
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nX-Slack-Signature: v0=")
        slow.append(s)
    try:
        with urllib.request.urlopen(edge.url.replace("/slack/events", "/healthz"),
                                    timeout=30) as r:
            assert r.status == 200 and r.read() == b"ok"
        body, headers = signed_event("<@U0> hello")
        assert post(edge, body, headers) == 200
        assert edge.arrived.wait(30) and edge.seen == ["<@U0> hello"]
    finally:
        for s in idle + slow:
            s.close()


def test_a_connection_that_never_finishes_its_headers_is_closed(edge, monkeypatch):
    monkeypatch.setattr(slack_app, "HEADER_TIMEOUT_S", 0.3)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as s:
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")
        assert s.recv(1024) == b""  # closed by the server, no response


def test_headers_that_never_finish_after_a_first_request_are_cut_too(edge, monkeypatch):
    monkeypatch.setattr(slack_app, "HEADER_TIMEOUT_S", 0.3)
    with socket.create_connection(("127.0.0.1", edge.port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        first = b""
        while not first.endswith(b"ok"):
            first += s.recv(4096)
        assert first.startswith(b"HTTP/1.1 200")
        s.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        assert s.recv(1024) == b""


def test_a_body_that_trickles_gets_408(edge, monkeypatch):
    monkeypatch.setattr(slack_app, "BODY_TIMEOUT_S", 0.3)
    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    assert status(raw(edge, head, b"{\"type\":")) == 408


@pytest.mark.parametrize("length", [str(MAX_BODY + 1), "400000000", "9" * 30])
def test_oversized_bodies_get_413_before_they_are_read(edge, length):
    head = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n"
            "Content-Type: application/json\r\n\r\n").encode()
    # the body was never sent: not waited for (h11 itself refuses a 30-digit length: 400)
    assert status(raw(edge, head, b"{")) in ((400, 413) if len(length) > 20 else (413,))
    assert edge.seen == []


def test_a_chunked_body_over_the_limit_gets_413(edge):
    head = b"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunk = b"x" * 65536
    body = (b"%x\r\n" % len(chunk) + chunk + b"\r\n") * (MAX_BODY // len(chunk) + 2)
    assert status(raw(edge, head, body)) == 413


def test_a_signed_body_over_the_limit_is_refused(edge):
    body, headers = signed_event("x" * (10 * MAX_BODY))  # issue 10: a signed 10 MB was taken
    head = "POST /slack/events HTTP/1.1\r\nHost: x\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in headers.items()) + f"Content-Length: {len(body)}\r\n\r\n"
    assert status(raw(edge, head.encode(), body[:65536])) == 413 and edge.seen == []


@pytest.mark.parametrize("case", ["bad-utf8", "no-timestamp", "bad-timestamp",
                                  "no-signature", "huge-timestamp", "not-json",
                                  "bad-length", "two-lengths"])
def test_malformed_requests_get_400_or_401_never_500(edge, case):
    body, headers = signed_event("hi")
    if case == "bad-utf8":
        body = b'{"type": "event_callback", "x": "\xff\xfe"}'
        headers = sign(body)
    elif case == "no-timestamp":
        del headers["X-Slack-Request-Timestamp"]
    elif case == "bad-timestamp":
        headers["X-Slack-Request-Timestamp"] = "soon"
    elif case == "no-signature":
        del headers["X-Slack-Signature"]
    elif case == "huge-timestamp":
        headers["X-Slack-Request-Timestamp"] = "9" * 400
    elif case == "not-json":
        body = b"{not json"
        headers = sign(body)
    if case in ("bad-length", "two-lengths"):
        extra = "Content-Length: -5" if case == "bad-length" else \
            "Content-Length: 3\r\nContent-Length: 5"
        got = status(raw(edge, f"POST /slack/events HTTP/1.1\r\nHost: x\r\n{extra}\r\n\r\n"
                               .encode(), b"abc"))
    else:
        got = post(edge, body, headers)
    assert got in (400, 401), got
    assert edge.seen == []


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe\x00", b"[1, 2]", b"payload=%ff"])
def test_the_signature_is_checked_before_anything_is_parsed(edge, body):
    headers = sign(body)
    headers["X-Slack-Signature"] = "v0=" + "0" * 64
    assert post(edge, body, headers) == 401  # not 400: an unsigned body is never looked at
