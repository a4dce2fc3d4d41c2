"""A Slack Web API emulator on 127.0.0.1 that records every call, and a signed-event sender.

Point the bot's WebClient at `FakeSlack.api_url` (SLACK_API_URL). The emulator keeps channel
messages so chat.update and conversations.replies behave, serves the file upload URL it hands
out, and can be told to fail a method. `SlackSender` posts events and interactivity payloads
to the app as Slack does: form or JSON bodies signed with the v0 HMAC of the signing secret.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from slack_sdk.signature import SignatureVerifier

BOT_USER_ID = "UBOT0001"
BOT_ID = "BBOT0001"
TEAM_ID = "T0FUND01"


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage") or "upload" for the file POST
    args: dict[str, Any]
    token: str | None = None
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    """The Web API subset fundbot uses. Start with `with FakeSlack() as slack:` or start()."""

    def __init__(self, token: str = "xoxb-test-token"):
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[str, list[dict]] = {}  # channel -> messages, in post order
        self.uploads: dict[str, bytes] = {}  # file_id -> uploaded bytes
        self.alt_texts: dict[str, str | None] = {}  # file_id -> alt_txt given for it
        self.files: dict[str, dict] = {}  # file_id -> completed file (title, channel, thread)
        self.users: dict[str, dict] = {}
        self.home_views: dict[str, dict] = {}  # user -> the Home tab view last published
        self._failures: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """What SLACK_API_URL should be (the WebClient's base_url)."""
        return self.base_url + "/api/"

    # ---------------------------------------------------------------- scripting

    def fail_next(self, method: str, error: str = "internal_error") -> None:
        """Make the next call of `method` answer {"ok": false, "error": error}."""
        with self._lock:
            self._failures.setdefault(method, []).append(error)

    def add_user(self, user_id: str, name: str, real_name: str = "") -> None:
        self.users[user_id] = {"id": user_id, "name": name, "real_name": real_name or name,
                               "profile": {"real_name": real_name or name,
                                           "display_name": name},
                               "tz": "America/New_York", "is_bot": False}

    # ---------------------------------------------------------------- inspection

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def methods(self) -> list[str]:
        with self._lock:
            return [c.method for c in self.calls]

    def thread(self, channel: str, thread_ts: str) -> list[dict]:
        """Messages in a thread (the parent first), as they stand now."""
        with self._lock:
            return [dict(m) for m in self.messages.get(channel, [])
                    if m["ts"] == thread_ts or m.get("thread_ts") == thread_ts]

    def bot_replies(self, channel: str, thread_ts: str) -> list[dict]:
        return [m for m in self.thread(channel, thread_ts) if m.get("bot_id") == BOT_ID]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Poll until predicate() is truthy; returns its value or raises AssertionError."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out after {timeout}s; calls so far: {self.methods()}")
            with self._cond:
                self._cond.wait(min(remaining, 0.05))

    def wait_calls(self, method: str, n: int = 1, timeout: float = 10.0) -> list[Call]:
        """Wait until `method` has been called at least n times; returns those calls."""
        return self.wait_for(lambda: (c := self.calls_to(method)) and len(c) >= n and c, timeout)

    # ---------------------------------------------------------------- the API

    def handle(self, method: str, args: dict[str, Any], token: str | None) -> dict[str, Any]:
        with self._cond:
            self.calls.append(Call(method, args, token))
            self._cond.notify_all()
            failures = self._failures.get(method)
            if failures:
                return {"ok": False, "error": failures.pop(0)}
        if token != self.token:
            return {"ok": False, "error": "invalid_auth" if token else "not_authed"}
        fn = _METHODS.get(method)
        if fn is None:
            return {"ok": False, "error": "unknown_method"}
        with self._cond:
            result = fn(self, args)
            self._cond.notify_all()
            return result

    def record_upload(self, file_id: str, data: bytes) -> bool:
        with self._cond:
            self.calls.append(Call("upload", {"file_id": file_id, "length": len(data)}))
            known = file_id in self.uploads
            if known:
                self.uploads[file_id] = data
            self._cond.notify_all()
            return known

    def _next_ts(self) -> str:
        return f"{1_700_000_000 + next(self._ts)}.{next(self._ids):06d}"

    def _find(self, channel: str, ts: str) -> dict | None:
        for message in self.messages.get(channel, []):
            if message["ts"] == ts:
                return message
        return None


# Each method runs under the emulator's lock with the merged query/form/JSON arguments.


def _auth_test(s: FakeSlack, a: dict) -> dict:
    return {"ok": True, "url": "https://fund.slack.com/", "team": "Fund", "user": "fundbot",
            "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID}


def _post_message(s: FakeSlack, a: dict) -> dict:
    channel = a.get("channel")
    if not channel:
        return {"ok": False, "error": "channel_not_found"}
    if not (a.get("text") or a.get("blocks") or a.get("attachments")):
        return {"ok": False, "error": "no_text"}
    message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": s._next_ts(),
               "text": a.get("text", ""), "blocks": _json(a.get("blocks")) or [],
               "attachments": _json(a.get("attachments")) or []}
    if a.get("thread_ts"):
        message["thread_ts"] = a["thread_ts"]
    s.messages.setdefault(channel, []).append(message)
    return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}


def _update(s: FakeSlack, a: dict) -> dict:
    message = s._find(a.get("channel", ""), a.get("ts", ""))
    if message is None:
        return {"ok": False, "error": "message_not_found"}
    for key in ("text", "blocks", "attachments"):
        if key in a:
            message[key] = _json(a[key]) if key != "text" else a[key]
    message["edited"] = True
    message.pop("streaming", None)  # an update finishes a stream that never stopped
    return {"ok": True, "channel": a["channel"], "ts": a["ts"], "text": message.get("text", "")}


def _post_ephemeral(s: FakeSlack, a: dict) -> dict:
    if not a.get("channel") or not a.get("user"):
        return {"ok": False, "error": "channel_not_found"}
    return {"ok": True, "message_ts": s._next_ts()}


def _ok(s: FakeSlack, a: dict) -> dict:
    return {"ok": True}


def _set_status(s: FakeSlack, a: dict) -> dict:
    # Since 2026-03 this works in channel threads too, with chat:write (Slack's changelog
    # "Set status method scope update"); an older workspace is emulated with fail_next.
    if not a.get("channel_id") or not a.get("thread_ts") or "status" not in a:
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True}


def _suggested_prompts(s: FakeSlack, a: dict) -> dict:
    # thread_ts is optional: without it the prompts pin to the app's Messages tab.
    if not a.get("channel_id") or not isinstance(_json(a.get("prompts")), list):
        return {"ok": False, "error": "invalid_arguments"}
    return {"ok": True}


# ---- chat streaming: a message that grows (startStream, appendStream) until stopStream.
# The emulator keeps the streamed markdown in `text`, each task card's latest state in
# `tasks` (id -> chunk), and on stop sets `blocks` to the text as a markdown block followed by
# the blocks stopStream brought, which is how the finished message reads.


def _grow(message: dict, a: dict) -> None:
    message["text"] += a.get("markdown_text") or ""
    for chunk in _json(a.get("chunks")) or []:
        if chunk.get("type") == "markdown_text":
            message["text"] += chunk.get("text", "")
        elif chunk.get("type") == "task_update":
            message["tasks"][chunk["id"]] = chunk
            message["task_log"].append((chunk["id"], chunk.get("status")))


def _start_stream(s: FakeSlack, a: dict) -> dict:
    channel = a.get("channel", "")
    if not channel or not a.get("thread_ts"):
        return {"ok": False, "error": "invalid_arguments"}
    if not channel.startswith("D") and not (a.get("recipient_user_id")
                                            and a.get("recipient_team_id")):
        return {"ok": False, "error": "missing_recipient_user_id"}  # required in channels
    message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": s._next_ts(),
               "thread_ts": a["thread_ts"], "text": "", "blocks": [], "attachments": [],
               "streaming": True, "tasks": {}, "task_log": []}
    _grow(message, a)
    s.messages.setdefault(channel, []).append(message)
    return {"ok": True, "channel": channel, "ts": message["ts"]}


def _append_stream(s: FakeSlack, a: dict) -> dict:
    message = s._find(a.get("channel", ""), a.get("ts", ""))
    if message is None:
        return {"ok": False, "error": "message_not_found"}
    if not message.get("streaming"):
        return {"ok": False, "error": "message_not_in_streaming_state"}
    _grow(message, a)
    return {"ok": True, "channel": a["channel"], "ts": a["ts"]}


def _stop_stream(s: FakeSlack, a: dict) -> dict:
    result = _append_stream(s, a)
    if not result["ok"]:
        return result
    message = s._find(a["channel"], a["ts"])
    message["streaming"] = False
    message["blocks"] = [{"type": "markdown", "text": message["text"]},
                         *(_json(a.get("blocks")) or [])]
    return {"ok": True, "channel": a["channel"], "ts": a["ts"], "message": message}


def _views_publish(s: FakeSlack, a: dict) -> dict:
    view = _json(a.get("view")) or {}
    if not a.get("user_id") or view.get("type") != "home":
        return {"ok": False, "error": "invalid_arguments"}
    s.home_views[a["user_id"]] = view
    return {"ok": True, "view": {**view, "id": f"V{next(s._ids):08d}"}}


def _replies(s: FakeSlack, a: dict) -> dict:
    channel, ts = a.get("channel", ""), a.get("ts", "")
    found = [m for m in s.messages.get(channel, []) if m["ts"] == ts or m.get("thread_ts") == ts]
    if not found:
        return {"ok": False, "error": "thread_not_found"}
    return {"ok": True, "messages": found, "has_more": False}


def _conversation_info(s: FakeSlack, a: dict) -> dict:
    channel = a.get("channel", "")
    return {"ok": True, "channel": {"id": channel, "name": channel.lower(),
                                    "is_im": channel.startswith("D"),
                                    "is_channel": channel.startswith("C")}}


def _users_info(s: FakeSlack, a: dict) -> dict:
    user = s.users.get(a.get("user", ""))
    return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}


def _upload_url(s: FakeSlack, a: dict) -> dict:
    if not a.get("filename") or not a.get("length"):
        return {"ok": False, "error": "invalid_arguments"}
    file_id = f"F{next(s._ids):08d}"
    s.uploads[file_id] = b""
    s.alt_texts[file_id] = a.get("alt_txt")
    return {"ok": True, "file_id": file_id, "upload_url": f"{s.base_url}/upload/{file_id}"}


def _complete_upload(s: FakeSlack, a: dict) -> dict:
    files = _json(a.get("files")) or []
    done = []
    for f in files:
        if f.get("id") not in s.uploads:
            return {"ok": False, "error": "file_not_found"}
        record = {"id": f["id"], "title": f.get("title"), "channel": a.get("channel_id"),
                  "thread_ts": a.get("thread_ts"), "content": s.uploads[f["id"]],
                  "alt_txt": s.alt_texts.get(f["id"])}
        s.files[f["id"]] = record
        done.append({"id": f["id"], "title": f.get("title")})
    return {"ok": True, "files": done}


def _views_open(s: FakeSlack, a: dict) -> dict:
    if not a.get("trigger_id"):
        return {"ok": False, "error": "invalid_trigger_id"}
    view = _json(a.get("view")) or {}
    return {"ok": True, "view": {**view, "id": f"V{next(s._ids):08d}"}}


_METHODS: dict[str, Callable[[FakeSlack, dict], dict]] = {
    "auth.test": _auth_test,
    "chat.postMessage": _post_message,
    "chat.update": _update,
    "chat.postEphemeral": _post_ephemeral,
    "assistant.threads.setStatus": _set_status,
    "assistant.threads.setSuggestedPrompts": _suggested_prompts,
    "assistant.threads.setTitle": _ok,
    "conversations.replies": _replies,
    "conversations.info": _conversation_info,
    "users.info": _users_info,
    "files.getUploadURLExternal": _upload_url,
    "files.completeUploadExternal": _complete_upload,
    "views.open": _views_open,
    "views.publish": _views_publish,
    "chat.startStream": _start_stream,
    "chat.appendStream": _append_stream,
    "chat.stopStream": _stop_stream,
}


def _json(value: Any) -> Any:
    # Form-encoded calls carry blocks/attachments/files as JSON strings.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _make_handler(slack: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            pass

        def do_POST(self) -> None:
            parsed = urllib.parse.urlparse(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if parsed.path.startswith("/upload/"):
                ok = slack.record_upload(parsed.path.rsplit("/", 1)[1], body)
                self._send(200 if ok else 404, b"OK - %d" % len(body), "text/plain")
                return
            if not parsed.path.startswith("/api/"):
                self._send(404, b"not found", "text/plain")
                return
            method = parsed.path[len("/api/"):]
            args: dict[str, Any] = dict(urllib.parse.parse_qsl(parsed.query))
            ctype = self.headers.get("Content-Type", "")
            if "json" in ctype:
                args.update(json.loads(body or b"{}"))
            elif body:
                args.update(urllib.parse.parse_qsl(body.decode()))
            token = args.pop("token", None)
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer "):
                token = auth[len("Bearer "):]
            result = slack.handle(method, args, token)
            self._send(200, json.dumps(result).encode(), "application/json")

        do_GET = do_POST

        def _send(self, status: int, data: bytes, ctype: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


# ------------------------------------------------------------------ events in


@dataclass
class Delivery:
    status: int
    body: str
    seconds: float


class SlackSender:
    """Posts signed Events API and interactivity requests to the app, as Slack does."""

    def __init__(self, url: str, signing_secret: str, team_id: str = TEAM_ID):
        self.url = url  # e.g. http://127.0.0.1:PORT/slack/events
        self.secret = signing_secret
        self.team_id = team_id
        self._ids = itertools.count(1)
        self._ts = itertools.count(1)
        self._lock = threading.Lock()

    def next_ts(self) -> str:
        """A fresh message timestamp (Slack's `ts`), increasing."""
        with self._lock:
            return f"{1_800_000_000 + next(self._ts)}.000100"

    def event(self, event: dict, event_id: str | None = None) -> dict:
        """An event_callback envelope around `event`."""
        return {
            "token": "legacy-unused", "team_id": self.team_id, "api_app_id": "AFUNDBOT",
            "type": "event_callback", "event": event,
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:12].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": self.team_id, "user_id": BOT_USER_ID,
                                "is_bot": True}],
        }

    def mention(self, channel: str, user: str, text: str, ts: str | None = None,
                thread_ts: str | None = None, event_id: str | None = None) -> dict:
        ts = ts or self.next_ts()
        event = {"type": "app_mention", "user": user, "text": f"<@{BOT_USER_ID}> {text}",
                 "ts": ts, "channel": channel, "event_ts": ts}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.event(event, event_id)

    def message(self, channel: str, user: str, text: str, ts: str | None = None,
                thread_ts: str | None = None, channel_type: str = "channel",
                event_id: str | None = None, **extra: Any) -> dict:
        ts = ts or self.next_ts()
        event = {"type": "message", "user": user, "text": text, "ts": ts, "channel": channel,
                 "event_ts": ts, "channel_type": channel_type, **extra}
        if thread_ts:
            event["thread_ts"] = thread_ts
        return self.event(event, event_id)

    def post(self, payload: dict, *, retry_num: int | None = None, timestamp: int | None = None,
             signature: str | None = None, form: bool = False) -> Delivery:
        """POST a payload; JSON for events, `payload=` form for interactivity (form=True)."""
        if form:
            body = urllib.parse.urlencode({"payload": json.dumps(payload)})
            ctype = "application/x-www-form-urlencoded"
        else:
            body = json.dumps(payload)
            ctype = "application/json"
        ts = str(timestamp if timestamp is not None else int(time.time()))
        verifier = SignatureVerifier(self.secret)
        headers = {
            "Content-Type": ctype,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": signature or verifier.generate_signature(timestamp=ts, body=body),
        }
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        request = urllib.request.Request(self.url, data=body.encode(), headers=headers,
                                         method="POST")
        start = time.monotonic()
        try:
            with urllib.request.urlopen(request, timeout=10) as resp:
                return Delivery(resp.status, resp.read().decode(), time.monotonic() - start)
        except urllib.error.HTTPError as err:
            return Delivery(err.code, err.read().decode(), time.monotonic() - start)

    def click(self, *, user: str, channel: str, message: dict, action: dict,
              trigger_id: str = "trig-1") -> Delivery:
        """A block_actions payload for a click on `action` in `message` (as the emulator has it)."""
        payload = {
            "type": "block_actions", "team": {"id": self.team_id, "domain": "fund"},
            "user": {"id": user, "username": user, "team_id": self.team_id},
            "api_app_id": "AFUNDBOT", "token": "legacy-unused", "trigger_id": trigger_id,
            "container": {"type": "message", "message_ts": message["ts"], "channel_id": channel,
                          "is_ephemeral": False, "thread_ts": message.get("thread_ts")},
            "channel": {"id": channel, "name": channel.lower()},
            "message": message,
            "actions": [{**action, "action_ts": str(time.time())}],
        }
        return self.post(payload, form=True)

    def submit_view(self, *, user: str, view: dict, values: dict) -> Delivery:
        """A view_submission payload for `view` (as opened) with input `values`."""
        payload = {
            "type": "view_submission", "team": {"id": self.team_id, "domain": "fund"},
            "user": {"id": user, "username": user, "team_id": self.team_id},
            "api_app_id": "AFUNDBOT", "token": "legacy-unused", "trigger_id": "trig-2",
            "view": {**view, "state": {"values": values}},
        }
        return self.post(payload, form=True)
