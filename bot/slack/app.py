"""Builds the Bolt app and serves it over HTTP (`/slack/events`, uvicorn) or Socket Mode."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import uvicorn
from slack_bolt import App
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.slack.access import Access
from bot.slack.dedupe import Claims
from bot.slack.inbox import HEADER, Inbox, InboxItem, attach, inbox_of
from bot.slack.listeners import register
from bot.slack.responder import Responder
from bot.slack.safety import SealedClient
from bot.slack.worker import Dispatcher, Quiet
from states.machine import Deps
from states.ports import StoreError

log = logging.getLogger(__name__)
# Bolt reads SLACK_BOT_TOKEN from the environment even when handed a client carrying that same
# token, then warns "`token` will be unused" at every start: noise, so that one line is dropped.
logging.getLogger("slack_bolt.App").addFilter(lambda r: "will be unused" not in r.getMessage())

EVENTS_PATH = "/slack/events"
DEFAULT_API_URL = "https://slack.com/api/"


def create_app(config: Any, deps: Deps) -> tuple[App, Dispatcher]:
    """The Bolt app with every listener, and the worker pool its listeners feed.

    `config` is bot.config.Config (slack_* fields, allowed_users/channels, workers).
    Calls auth.test once to learn the bot's own user id.
    """
    # Every Web API call goes through the seal (bot.slack.safety): escaping in one place.
    client = SealedClient(token=config.slack_bot_token,
                          base_url=_api_url(config.slack_api_url))
    client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))
    socket_mode = bool(config.slack_app_token)
    app = App(
        client=client,  # carries the bot token
        signing_secret=config.slack_signing_secret or "",
        request_verification_enabled=not socket_mode,
        # Listeners only claim the event and queue it, so running them before the response
        # keeps arrival order and still acknowledges in milliseconds.
        process_before_response=True,
        # Bolt resets the level of the logger named after the app on every request: not our
        # "fundbot" logger, whose children (fundbot.turn...) would follow it.
        name="fundbot-slack",
    )
    dispatcher = Dispatcher(workers=config.workers, quiet=Quiet())
    claims = Claims(deps.store)
    inbox = None
    if hasattr(deps.store, "inbox_put"):  # the durable inbox (bot/slack/inbox.py)
        inbox = Inbox(deps.store, lease_s=getattr(config, "inbox_lease_s", 30.0),
                      capacity=config.workers, quiet=dispatcher.quiet)
    responder = Responder(deps, client, dispatcher, claims, inbox,
                          streaming=getattr(config, "slack_stream", True))
    app.use(_Sealed(client))  # Bolt's per-request client, and say/say_stream/set_status with it
    app.use(_deduplicate(claims, inbox))  # before the assistant middleware: it sees everything
    register(app, responder, Access.of(config.allowed_users, config.allowed_channels,
                                       getattr(config, "allowed_bots", None),
                                       getattr(config, "allow_external", False),
                                       getattr(config, "reviewers", None)))
    if inbox is not None:
        inbox.dispatch = lambda item: _redispatch(app, inbox, item)
        inbox.give_up = responder.give_up
        attach(app, inbox)
        dispatcher.on_shutdown(inbox.stop, inbox.close)
        inbox.start()
    return app, dispatcher


def _redispatch(app: App, inbox: Inbox, item: InboxItem) -> None:
    """An inbox item into Bolt as Slack delivered it, marked as ours. Its signature was checked
    when it arrived; mode socket_mode tells Bolt not to check it again (it may be minutes old)."""
    app.dispatch(BoltRequest(body=json.loads(item.body), mode="socket_mode",
                             headers={HEADER: inbox.token}))


class _Sealed(Middleware):
    """Bolt builds a plain WebClient for every request; listeners and Bolt's helpers get the
    app's sealed one instead, so everything they post passes the seal too. A class, not a
    function: Bolt calls it without building keyword arguments (the ack path stays short)."""

    def __init__(self, client: SealedClient):
        self.client = client

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse | None:  # noqa: A002
        req.context["client"] = self.client
        for helper in ("say", "complete", "fail"):  # if built already, built on the plain one
            req.context.pop(helper, None)
        return next()


def _deduplicate(claims: Claims, inbox: Inbox | None = None):
    """Middleware on the ack path. An Events API delivery goes into the durable inbox and is
    acknowledged; the inbox's pump brings it back (marked) to be handled. Without an inbox (or
    with the store failing) a retry of an event this process already has is acknowledged, not
    handled, and retries after a restart are stopped by the durable claim (Claims.claim)."""

    def deduplicate(body: dict, next_: Any, request: Any) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and inbox is not None:
            if inbox.is_ours(request.headers):
                return next_()
            if inbox.accept(body) is not None:
                return BoltResponse(status=200, body="")
        if event_id and claims.seen(event_id):
            retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
            log.info("event %s already received (retry %s); acknowledging only", event_id, retry)
            return BoltResponse(status=200, body="")
        return next_()

    return deduplicate


def _api_url(url: str | None) -> str:
    url = url or DEFAULT_API_URL
    return url if url.endswith("/") else url + "/"


# --------------------------------------------------------------------------- HTTP
#
# uvicorn (h11) serves a small ASGI app. Idle and slow clients cost a socket each, not a
# thread: no request holds a thread while its bytes trickle in. A connection must send its
# headers within HEADER_TIMEOUT_S and its body within BODY_TIMEOUT_S, bodies over MAX_BODY
# are refused with 413 from the Content-Length alone, h11 caps a header block at 16 KB, and
# MAX_CONNECTIONS bounds sockets (far above what idle clients need to stay harmless, since
# they are dropped at the header time-out). The signature is checked on the raw bytes before
# anything is parsed; a malformed request gets 400 or 401, never 500.

MAX_BODY = 1_000_000  # bytes; Slack's payloads are a few KB
HEADER_TIMEOUT_S = 10.0  # from accept to a complete header block
BODY_TIMEOUT_S = 10.0  # from the headers to the last byte of the body
MAX_CONNECTIONS = 2000  # open sockets at once; uvicorn answers 503 past it
BOLT_THREADS = 8  # threads for requests Bolt answers itself (interactivity, url_verification)


class _H11(H11Protocol):
    """uvicorn's h11 protocol with a header read time-out: uvicorn times out idle keep-alive
    connections, not one that never finishes a request's headers (slowloris), on a fresh
    connection or after a first request (new bytes cancel its keep-alive timer)."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._header_timer.cancel()
        self._arm_header_timer()  # the next request's headers are due in time too

    def _arm_header_timer(self) -> None:
        waiting_after = self.cycle  # None on a fresh connection: no request yet
        self._header_timer = self.loop.call_later(
            HEADER_TIMEOUT_S, lambda: self._header_timeout(waiting_after))

    def _header_timeout(self, waiting_after: object) -> None:
        if self.cycle is waiting_after and not self.transport.is_closing():
            self.transport.close()  # no complete request headers in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._header_timer.cancel()
        super().connection_lost(exc)


class HttpServer:
    """Bolt behind uvicorn: POST /slack/events, GET /healthz, GET /readyz.

    With the signing secret, Events API deliveries are written to the durable inbox
    (bot/slack/inbox.py) as soon as their signature checks out and then acknowledged; the
    inbox's pump hands them to Bolt in arrival order (without an inbox, one intake thread
    does). Slack wants the 200 within 3 s; a burst should not queue each ack behind Bolt's
    middleware for all the others. Everything else (interactivity, url_verification) gets
    Bolt's own response, computed on a small thread pool.
    """

    def __init__(self, app: App, host: str = "0.0.0.0", port: int = 3000,
                 signing_secret: str | None = None, quiet: Quiet | None = None):
        self._app = app
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._quiet = quiet
        self._intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fundbot-intake")
        self._bolt = ThreadPoolExecutor(max_workers=BOLT_THREADS, thread_name_prefix="fundbot-bolt")
        self._sock = socket.create_server((host, port), backlog=1024, reuse_port=False)
        config = uvicorn.Config(self._asgi, interface="asgi3", http=_H11, loop="asyncio",
                                lifespan="off", proxy_headers=False,
                                log_config=None, access_log=False, server_header=False,
                                date_header=False, limit_concurrency=MAX_CONNECTIONS,
                                timeout_keep_alive=5, h11_max_incomplete_event_size=16 * 1024,
                                backlog=1024)
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def url(self) -> str:
        host = self._sock.getsockname()[0]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}{EVENTS_PATH}"

    def start(self) -> HttpServer:
        """Serve on a background thread; returns once it accepts connections."""
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._sock]}, name="fundbot-http",
                                        daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"the HTTP server could not start on port {self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop accepting; events already acknowledged still reach Bolt."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._intake.shutdown(wait=True)
        self._bolt.shutdown(wait=True)
        self._sock.close()

    # ---------------------------------------------------------------- the ASGI app

    async def _asgi(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/healthz":  # the process serves
            return await _respond(send, 200, b"ok", "text/plain")
        if path == "/readyz":  # and can take work: its store answers, it is not stopping
            loop = asyncio.get_running_loop()
            ready, why = await loop.run_in_executor(self._bolt, readiness, self._app)
            return await _respond(send, 200 if ready else 503, why.encode(), "text/plain")
        if path != EVENTS_PATH:
            return await _respond(send, 404, b"not found", "text/plain")
        if method != "POST":
            return await _respond(send, 405, b"method not allowed", "text/plain")
        headers = _asgi_headers(scope)
        length = headers.get("content-length", "")
        if length and (not length.isdigit() or int(length) > MAX_BODY):
            return await _respond(send, 413, b'{"error": "body too large"}')
        status, body = await _read_body(receive, MAX_BODY, BODY_TIMEOUT_S)
        if status:
            return await _respond(send, status, b'{"error": "body too large or too slow"}')
        # Only now is there work for this process: background jobs wait for it (Quiet), not
        # for clients that are still trickling bytes in.
        if self._quiet is None:
            return await self._answer(scope, headers, body, send)
        with self._quiet.busy():
            return await self._answer(scope, headers, body, send)

    async def _answer(self, scope: dict, headers: dict[str, str], body: bytes,
                      send: Any) -> None:
        if self._verifier is not None and not _signed(self._verifier, body, headers):
            return await _respond(send, 401, b'{"error": "invalid request"}')
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return await _respond(send, 400, b'{"error": "the body is not UTF-8"}')
        payload = _payload(headers, text)
        if payload is None:
            return await _respond(send, 400, b'{"error": "malformed payload"}')
        if self._verifier is not None and payload.get("type") == "event_callback":
            inbox = inbox_of(self._app)  # written to the store before the 200 (off the loop)
            accepted = None if inbox is None else await asyncio.get_running_loop(
                ).run_in_executor(self._bolt, inbox.accept, text)
            if accepted is None:  # no inbox, or the store failed: handle it here, as before
                self._intake.submit(_dispatch, self._app, text, headers, self._quiet)
            return await _respond(send, 200, b"", "text/plain")
        request = BoltRequest(body=text, query=scope.get("query_string", b"").decode("latin-1"),
                              headers=headers)
        loop = asyncio.get_running_loop()
        try:
            response = await loop.run_in_executor(self._bolt, self._app.dispatch, request)
        except Exception:  # Bolt answers errors itself; this is a last resort
            log.exception("Bolt failed on a request")
            return await _respond(send, 400, b'{"error": "bad request"}')
        await send({"type": "http.response.start", "status": response.status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                                for k, vs in response.headers.items() for v in vs]})
        await send({"type": "http.response.body", "body": (response.body or "").encode()})


async def _read_body(receive: Any, limit: int, timeout_s: float) -> tuple[int, bytes]:
    """(0, body), or (413, b"") past `limit` bytes, or (408, b"") past `timeout_s`."""
    chunks: list[bytes] = []
    size = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            message = await asyncio.wait_for(receive(), timeout=max(deadline - loop.time(), 0))
        except TimeoutError:
            return 408, b""
        if message["type"] == "http.disconnect":
            return 408, b""  # nobody is left to read the answer
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return 413, b""
        chunks.append(chunk)
        if not message.get("more_body"):
            return 0, b"".join(chunks)


def _signed(verifier: SignatureVerifier, body: bytes, headers: dict[str, str]) -> bool:
    timestamp = headers.get("x-slack-request-timestamp", "")
    signature = headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or len(timestamp) > 12 or not signature:
        return False
    try:
        return verifier.is_valid(body, timestamp, signature)
    except (ValueError, TypeError, OverflowError):
        return False


def _payload(headers: dict[str, str], text: str) -> dict | None:
    """The request's JSON object (a JSON body, or a form's `payload`); {} for a form without
    one; None when it is malformed."""
    try:
        if "json" in headers.get("content-type", ""):
            value = json.loads(text)
        else:
            form = urllib.parse.parse_qs(text).get("payload")
            value = json.loads(form[0]) if form else {}
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


async def _respond(send: Any, status: int, body: bytes,
                   content_type: str = "application/json") -> None:
    headers = [(b"content-type", content_type.encode()),
               (b"content-length", str(len(body)).encode())]
    if status >= 400:  # the rest of a refused request is not read: end the connection
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def readiness(app: App) -> tuple[bool, str]:
    """For a load balancer's /readyz: False (with one line) while the store cannot take a
    delivery or the process is shutting down, so Slack's requests go to another replica."""
    inbox = inbox_of(app)
    if inbox is None:
        return True, "ready"
    if inbox.stopping:
        return False, "shutting down"
    try:
        counts = inbox.store.inbox_counts()
    except StoreError as err:
        return False, err.message
    return True, f"ready: {counts['queued']} queued, {counts['leased']} leased"


def _asgi_headers(scope: dict) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _dispatch(app: App, body: str, headers: dict[str, str], quiet: Quiet | None) -> None:
    if quiet is not None:
        quiet.wait()
    try:
        app.dispatch(BoltRequest(body=body, headers=headers))
    except Exception:  # Bolt turns listener errors into responses; this is a last resort
        log.exception("Bolt failed on an acknowledged event")


def serve(config: Any, deps: Deps) -> None:
    """Run until SIGINT/SIGTERM: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on PORT.

    On the way out, questions already accepted are answered before the process exits.
    """
    if not logging.getLogger().handlers:  # the CLI may not have set up logging
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    app, dispatcher = create_app(config, deps)
    deps.warehouse.resolve("")  # build the value dictionaries now, not on the first question
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if config.slack_app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        # One envelope at a time into Bolt, as the HTTP intake does, so a thread's messages
        # reach its queue in arrival order; listeners only acknowledge and enqueue.
        handler = SocketModeHandler(app, config.slack_app_token, concurrency=1)
        handler.connect()
        log.info("fundbot is connected to Slack over Socket Mode")
        stop.wait()
        handler.close()
    else:
        server = HttpServer(app, port=config.port, signing_secret=config.slack_signing_secret,
                            quiet=dispatcher.quiet).start()
        log.info("fundbot is listening on %s", server.url)
        stop.wait()
        server.stop()
    log.info("finishing %d queued question(s)", dispatcher.pending)
    dispatcher.shutdown(wait=True, timeout=60)
