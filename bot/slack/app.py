"""Builds the Bolt app and serves it over HTTP (`/slack/events`) or Socket Mode."""

from __future__ import annotations

import io
import json
import logging
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.middleware import Middleware
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier

from bot.slack.access import Access
from bot.slack.dedupe import Claims
from bot.slack.listeners import register
from bot.slack.responder import Responder
from bot.slack.safety import SealedClient
from bot.slack.worker import Dispatcher, Quiet
from states.machine import Deps

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
DEFAULT_API_URL = "https://slack.com/api/"
HTTP_THREADS = 32  # request threads; each only verifies, claims and queues, so few suffice


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
        name="fundbot",
    )
    dispatcher = Dispatcher(workers=config.workers, quiet=Quiet())
    claims = Claims(deps.store)
    responder = Responder(deps, client, dispatcher, claims,
                          streaming=getattr(config, "slack_stream", True))
    app.use(_Sealed(client))  # Bolt's per-request client, and say/say_stream/set_status with it
    app.use(_deduplicate(claims))  # before the assistant middleware, so it sees everything
    register(app, responder, Access.of(config.allowed_users, config.allowed_channels,
                                       getattr(config, "allowed_bots", None),
                                       getattr(config, "allow_external", False)))
    return app, dispatcher


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


def _deduplicate(claims: Claims):
    """Middleware: a retry of an event this process already has is acknowledged, not handled.
    Retries after a restart pass here and are stopped by the durable claim (Claims.claim)."""

    def deduplicate(body: dict, next_: Any, request: Any) -> BoltResponse | None:
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
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


class _PooledWSGIServer(WSGIServer):
    """Requests on a fixed set of threads: no thread per request, so per-thread resources
    (the store's SQLite connections) stay bounded however many events arrive."""

    request_queue_size = 256  # bursts of events arrive at once

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._pool = ThreadPoolExecutor(max_workers=HTTP_THREADS, thread_name_prefix="fundbot-http")

    quiet: Quiet | None = None  # told about every request, from accept to response

    def process_request(self, request: Any, client_address: Any) -> None:
        self._pool.submit(self._handle, request, client_address)

    def _handle(self, request: Any, client_address: Any) -> None:
        try:
            if self.quiet is None:
                self.finish_request(request, client_address)
            else:
                with self.quiet.busy():
                    self.finish_request(request, client_address)
        except Exception:  # one bad request must not take the server down
            log.exception("HTTP request from %s failed", client_address[0])
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class HttpServer:
    """Bolt behind a pooled stdlib WSGI server: POST /slack/events, GET /healthz.

    With the signing secret, Events API deliveries are acknowledged as soon as their
    signature checks out, and Bolt handles them right after on one intake thread, in arrival
    order. Slack wants the 200 within 3 s; a burst should not queue each ack behind Bolt's
    middleware for all the others. Everything else (interactivity, url_verification) gets
    Bolt's own response.
    """

    def __init__(self, app: App, host: str = "0.0.0.0", port: int = 3000,
                 signing_secret: str | None = None, quiet: Quiet | None = None):
        bolt = SlackRequestHandler(app, path=EVENTS_PATH)
        verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self._intake = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fundbot-intake")

        def wsgi(environ: dict, start_response: Any) -> Any:
            path, method = environ.get("PATH_INFO"), environ.get("REQUEST_METHOD")
            if path == "/healthz":
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b"ok"]
            if verifier is None or method != "POST" or path != EVENTS_PATH:
                return bolt(environ, start_response)
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            headers = _headers(environ)
            if not verifier.is_valid(body, headers.get("x-slack-request-timestamp", ""),
                                     headers.get("x-slack-signature", "")):
                start_response("401 Unauthorized", [("Content-Type", "application/json")])
                return [b'{"error": "invalid request"}']
            if _is_event_callback(headers, body):
                self._intake.submit(_dispatch, app, body, headers, quiet)
                start_response("200 OK", [("Content-Type", "text/plain")])
                return [b""]
            environ["wsgi.input"] = io.BytesIO(body)  # read once above; Bolt reads it again
            return bolt(environ, start_response)

        self._server = make_server(host, port, wsgi, server_class=_PooledWSGIServer,
                                   handler_class=_QuietHandler)
        self._server.quiet = quiet
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        host = self._server.server_address[0]
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}{EVENTS_PATH}"

    def start(self) -> HttpServer:
        """Serve on a background thread."""
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05}, name="fundbot-http",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop accepting; events already acknowledged still reach Bolt."""
        self._server.shutdown()
        self._intake.shutdown(wait=True)
        self._server.server_close()


def _headers(environ: dict) -> dict[str, str]:
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
               if k.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = environ[key]
    return headers


def _is_event_callback(headers: dict[str, str], body: bytes) -> bool:
    if "json" not in headers.get("content-type", ""):
        return False  # interactivity payloads are form-encoded and want Bolt's answer
    try:
        return json.loads(body).get("type") == "event_callback"
    except (ValueError, AttributeError):
        return False


def _dispatch(app: App, body: bytes, headers: dict[str, str], quiet: Quiet | None) -> None:
    if quiet is not None:
        quiet.wait()
    try:
        app.dispatch(BoltRequest(body=body.decode("utf-8"), headers=headers))
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
