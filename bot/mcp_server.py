"""`fundbot mcp`: the whole state machine for other agents, over the Model Context Protocol.

Tools (all read-only on the warehouse): ask, run_sql, list_tables, describe_table, feedback.
Resources: fundbot://catalog, fundbot://diagram, fundbot://trace/{trace_id}.
Transports: stdio (default) or streamable HTTP (loopback unless told otherwise; a bearer token
is required off loopback). See docs/MCP.md.
"""

# No `from __future__ import annotations`: the tools are closures whose input schemas carry the
# configured limits, and the SDK reads their annotations at registration.

import base64
import dataclasses
import hmac
import json
import logging
import math
import re
import threading
import time
import uuid
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Literal

import limits
import uvicorn
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import CallToolResult, ContentBlock, ImageContent, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from bot.chart import Chart, chart_for_result
from bot.cli import jsonable
from bot.config import Config, ConfigError
from bot.slack.access import Access
from states.machine import Deps, mermaid, run_turn
from states.ports import Catalog, QueryError, TableDoc, TurnResult

log = logging.getLogger(__name__)

LOCAL = "local"  # the client over stdio, or over loopback HTTP when no token is set
SINGLE_CLIENT = "agent"  # the client holding FUNDBOT_MCP_TOKEN when it names no clients
LOOPBACK = ("127.0.0.1", "localhost", "::1")
DEFAULT_PORT = 8765
MIN_TOKEN_CHARS = 16
MAX_SQL_CHARS = 20_000
MAX_COMMENT_CHARS = 2000  # what the Slack feedback modal keeps
MAX_BODY_BYTES = 1 << 20  # an HTTP request larger than this is refused (413) before parsing
THREAD_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
TRACE_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_CLIENT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

READ_ONLY = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=True,
                            openWorldHint=False)
# ask moves the thread's conversation on, so calling it twice is not calling it once
READ_ONLY_TURN = ToolAnnotations(readOnlyHint=True, destructiveHint=False, idempotentHint=False,
                                 openWorldHint=False)


# ------------------------------------------------------------------------ outputs


class AskResult(BaseModel):
    """One turn of the machine, as the tool returns it."""

    # TurnResult fields added later (a `verified` flag, timings) pass through untouched.
    model_config = ConfigDict(extra="allow")

    thread_id: str = Field(description="pass it to ask again to follow up or answer a "
                                       "clarification")
    state: Literal["answered", "clarify", "failed"]
    answer: str | None = Field(description="the answer in plain language (also why it failed)")
    sql: str | None = Field(description="the SQL that produced the rows")
    columns: list[str]
    rows: list[list[Any]] = Field(description="the first rows of the result (see row_count)")
    row_count: int = Field(description="rows the query returned, before the cap on `rows`")
    truncated: bool = Field(description="more rows exist than are shown")
    clarification: str | None = Field(description="the question fundbot asks back")
    options: list[str] = Field(description="choices for the clarification; answer with one")
    as_of: str = Field(description="the date the data is current to")
    trace_id: str = Field(description="for feedback and the fundbot://trace/{trace_id} resource")
    error_kind: str | None = None
    refused: bool = False


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    row_count: int = Field(description="rows the query returned, before the cap on `rows`")
    truncated: bool


class ColumnInfo(BaseModel):
    name: str
    type: str
    description: str


class TableInfo(BaseModel):
    name: str
    description: str
    keywords: list[str]
    columns: list[ColumnInfo]


class TableSummary(BaseModel):
    name: str
    description: str
    columns: list[str]


class TableList(BaseModel):
    tables: list[TableSummary]
    as_of: str
    rules: list[str] = Field(description="what an analyst knows about reading the data")


class FeedbackResult(BaseModel):
    trace_id: str
    value: Literal["up", "down"]
    saved: bool


def table_info(doc: TableDoc) -> TableInfo:
    return TableInfo(name=doc.name, description=doc.description, keywords=list(doc.keywords),
                     columns=[ColumnInfo(name=c.name, type=c.type, description=c.description)
                              for c in doc.columns.values()])


def catalog_json(catalog: Catalog) -> str:
    """The fundbot://catalog resource: every table and column with its documentation."""
    return json.dumps({"as_of": catalog.as_of, "rules": catalog.rules,
                       "tables": [table_info(t).model_dump() for t in catalog.tables.values()]},
                      ensure_ascii=False, indent=1)


def capped(rows: list[tuple], cap: int) -> list[list[Any]]:
    return [jsonable(list(r)) for r in rows[:cap]]


def ask_output(result: TurnResult, thread_id: str, cap: int) -> dict[str, Any]:
    """Every TurnResult field as JSON, rows capped, under the client's own thread id."""
    data = jsonable({f.name: getattr(result, f.name) for f in dataclasses.fields(result)
                     if f.name != "rows"})
    data.update(thread_id=thread_id, rows=capped(result.rows, cap), row_count=len(result.rows),
                truncated=result.truncated or len(result.rows) > cap)
    return AskResult.model_validate(data).model_dump(mode="json")


def ask_content(output: dict[str, Any], chart: Chart | None = None) -> list[ContentBlock]:
    """What a client that reads only content blocks sees: the structured result as JSON text
    (as the MCP spec asks of tools with structured output), then the chart, when the result
    deserves one, as a PNG image block after a text block with its description."""
    blocks: list[ContentBlock] = [TextContent(type="text",
                                              text=json.dumps(output, ensure_ascii=False))]
    if chart is not None:
        blocks += [TextContent(type="text", text=f"Chart: {chart.alt}"),
                   ImageContent(type="image", mime_type="image/png",
                                data=base64.b64encode(chart.png).decode("ascii"))]
    return blocks


# ------------------------------------------------------------- identity and access


def parse_tokens(raw: str) -> dict[str, str]:
    """FUNDBOT_MCP_TOKEN as {token: client name}: one token (client "agent"), or
    comma-separated name:token pairs so that each client has its own threads."""
    tokens: dict[str, str] = {}
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        name, sep, token = part.partition(":")
        if not sep:
            name, token = SINGLE_CLIENT, part
        if not _CLIENT_NAME.fullmatch(name):
            raise ConfigError("FUNDBOT_MCP_TOKEN: a client name is 1-64 letters, digits, '.', "
                              "'_' or '-' (format: TOKEN, or name:TOKEN,name2:TOKEN2)")
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"FUNDBOT_MCP_TOKEN: each token needs at least {MIN_TOKEN_CHARS} "
                              f"characters (client {name!r})")
        if name in tokens.values() or token in tokens:
            raise ConfigError(f"FUNDBOT_MCP_TOKEN: client {name!r} or its token appears twice")
        tokens[token] = name
    return tokens


class StaticTokens:
    """The SDK's TokenVerifier for the tokens in FUNDBOT_MCP_TOKEN."""

    def __init__(self, tokens: dict[str, str]):
        self._tokens = tokens

    def __repr__(self) -> str:  # never print the tokens
        return f"StaticTokens(clients={sorted(self._tokens.values())})"

    async def verify_token(self, token: str) -> AccessToken | None:
        found = None
        for known, name in self._tokens.items():  # compare with every token, in constant time
            if hmac.compare_digest(known.encode(), token.encode()):
                found = name
        return AccessToken(token="", client_id=found, scopes=[]) if found else None


class Gate:
    """Who is calling, whether they may, and whether they are calling too often."""

    def __init__(self, rate: str, access: Access | None):
        self.rate_text = rate
        try:
            self.rate = limits.parse(rate)
        except ValueError as exc:
            raise ConfigError(f"FUNDBOT_MCP_RATE must look like 60/minute or 5/second, "
                              f"not {rate!r}") from exc
        self.access = access  # None over stdio: whoever runs the process is the operator
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def enter(self, error: type[Exception] = ToolError) -> str:
        """The calling client's name; raises `error` with a clear message if it may not call."""
        token = get_access_token()
        client = token.client_id if token else LOCAL
        # An MCP client is not in a channel: the rules Slack applies to a DM apply.
        if self.access is not None and not self.access.allows(client, "", is_dm=True):
            raise error(f"client {client!r} may not use fundbot here: it is not on "
                        "FUNDBOT_ALLOWED_USERS (ask the operator)")
        if not self._limiter.hit(self.rate, client):
            reset = self._limiter.get_window_stats(self.rate, client).reset_time
            wait = max(1, math.ceil(reset - time.time()))
            raise error(f"rate limit: client {client!r} made more than {self.rate_text} tool "
                        f"calls (FUNDBOT_MCP_RATE); try again in {wait} s")
        return client


def at_most(chars: int) -> dict[str, Any]:
    """The bound as the schema shows it; check_length enforces it with a one-line message."""
    return {"maxLength": chars}


def check_length(what: str, value: str, limit: int, setting: str = "") -> None:
    if len(value) > limit:
        raise ToolError(f"{what} too long: {len(value):,} characters, the limit is {limit:,}"
                        + (f" ({setting})" if setting else ""))


def thread_key(client: str, thread_id: str) -> str:
    """The store's key: a thread belongs to the client that opened it, by construction."""
    return f"mcp:{client}:{thread_id}"


class ThreadLocks:
    """One turn at a time per thread; a lock lives while someone holds or waits on it."""

    def __init__(self) -> None:
        self._locks: weakref.WeakValueDictionary[str, threading.Lock] = (
            weakref.WeakValueDictionary())
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, key: str) -> Iterator[None]:
        with self._guard:
            lock = self._locks.get(key)
            if lock is None:
                lock = self._locks[key] = threading.Lock()
        with lock:
            yield


# ------------------------------------------------------------------------ server


def build_server(config: Config, deps: Deps, *, http: bool = False, host: str = LOOPBACK[0],
                 port: int = DEFAULT_PORT) -> MCPServer:
    """The MCP server for `deps`. Over HTTP, FUNDBOT_MCP_TOKEN and the allow-lists apply."""
    tokens = parse_tokens(config.mcp_token) if http else {}
    auth = {}
    if tokens:
        # Only the bearer check is used: no OAuth routes are served without a provider and
        # without resource_server_url, so the issuer URL is never shown to anyone.
        auth = {"auth": AuthSettings(issuer_url=f"http://{host_in_url(host)}:{port}",
                                     resource_server_url=None),
                "token_verifier": StaticTokens(tokens)}
    access = Access.of(config.allowed_users, config.allowed_channels) if http else None
    gate = Gate(config.mcp_rate, access)
    locks = ThreadLocks()
    limits_ = deps.limits
    cap = limits_.llm_rows  # rows per result: what the model also sees; page with LIMIT/OFFSET
    store: Any = deps.store  # get_trace and save_feedback: both stores have them (as Slack uses)
    catalog = deps.warehouse.catalog

    server = MCPServer(
        "fundbot", title="fundbot",
        instructions=("Answers questions about a venture fund's portfolio with checked SQL over "
                      "its warehouse. Prefer `ask`; when it returns state 'clarify', call `ask` "
                      "again with the same thread_id and one of the options."),
        log_level="WARNING", **auth)

    def own_trace(client: str, trace_id: str, error: type[Exception]) -> Any:
        trace = store.get_trace(trace_id)
        if trace is None or not trace.thread_id.startswith(thread_key(client, "")):
            raise error(f"no trace {trace_id!r} for this client")
        return trace

    @server.tool(annotations=READ_ONLY_TURN, title="Ask fundbot",
                 description="Ask a question about the fund's portfolio in plain English: fundbot "
                             "writes, checks and runs the SQL and answers, or asks back (state "
                             "'clarify': call ask again with that thread_id and your choice).")
    def ask(
        question: Annotated[str, Field(min_length=1, description="the question, or the answer "
                                       "to fundbot's clarifying question",
                                       json_schema_extra=at_most(limits_.max_question_chars))],
        thread_id: Annotated[str | None, Field(description=(
            "the thread_id of an earlier ask, to follow up or answer its clarification; "
            "omit to start a new conversation"), json_schema_extra={"pattern": THREAD_PATTERN})
        ] = None,
    ) -> Annotated[CallToolResult, AskResult]:
        client = gate.enter()
        check_length("question", question, limits_.max_question_chars, "FUNDBOT_MAX_QUESTION_CHARS")
        thread = thread_id or f"mcp-{uuid.uuid4().hex[:12]}"
        key = thread_key(client, thread)
        with locks.hold(key):
            if thread_id is not None:
                conv = deps.store.load(key)
                if not re.fullmatch(THREAD_PATTERN, thread_id) or (
                        not conv.version and not conv.history):
                    raise ToolError(f"unknown thread {thread_id[:64]!r}: call ask without "
                                    "thread_id to start a conversation")
            result = run_turn(deps, key, question, user=f"mcp:{client}")
        output = ask_output(result, thread, cap)
        return CallToolResult(content=ask_content(output, chart_for_result(result)),
                              structured_content=output)

    @server.tool(annotations=READ_ONLY, title="Run read-only SQL",
                 description="Run one read-only SELECT over the fund's warehouse (DuckDB dialect) "
                             "through fundbot's SQL guard and sandbox, when you already know the "
                             "SQL; see list_tables and describe_table.")
    def run_sql(sql: Annotated[str, Field(min_length=1, description="one SELECT statement",
                                          json_schema_extra=at_most(MAX_SQL_CHARS))]
                ) -> SqlResult:
        gate.enter()
        check_length("sql", sql, MAX_SQL_CHARS)
        try:
            res = deps.warehouse.execute(sql)
        except QueryError as exc:
            raise ToolError(f"{exc.kind}: {exc.message}") from None
        return SqlResult(columns=list(res.columns), rows=capped(res.rows, cap),
                         row_count=len(res.rows), truncated=res.truncated or len(res.rows) > cap)

    @server.tool(annotations=READ_ONLY, title="List tables",
                 description="List the warehouse's tables with what each holds and the analyst's "
                             "rules for reading them; start here before writing SQL.")
    def list_tables() -> TableList:
        gate.enter()
        return TableList(tables=[TableSummary(name=t.name, description=t.description,
                                              columns=[c.name for c in t.columns.values()])
                                 for t in catalog.tables.values()],
                         as_of=catalog.as_of, rules=list(catalog.rules))

    @server.tool(annotations=READ_ONLY, title="Describe a table",
                 description="Describe one table: each column's type and meaning, with the "
                             "caveats an analyst knows.")
    def describe_table(name: Annotated[str, Field(min_length=1, max_length=200,
                                                  description="a name from list_tables")]
                       ) -> TableInfo:
        gate.enter()
        doc = catalog.tables.get(name.strip().lower())
        if doc is None:
            raise ToolError(f"no table {name[:200]!r}; tables: {', '.join(sorted(catalog.tables))}")
        return table_info(doc)

    @server.tool(annotations=READ_ONLY, title="Rate an answer",
                 description="Record a thumbs up or down, with an optional comment, on an answer "
                             "fundbot gave you (by its trace_id); it is reviewed like Slack "
                             "feedback.")
    def feedback(
        trace_id: Annotated[str, Field(pattern=TRACE_PATTERN, description="from ask")],
        value: Literal["up", "down"],
        comment: Annotated[str | None, Field(description="what was right or wrong",
                                             json_schema_extra=at_most(MAX_COMMENT_CHARS))
                           ] = None,
    ) -> FeedbackResult:
        client = gate.enter()
        check_length("comment", comment or "", MAX_COMMENT_CHARS)
        own_trace(client, trace_id, ToolError)
        store.save_feedback(trace_id, f"mcp:{client}", value,
                            comment=(comment or "").strip() or None)
        return FeedbackResult(trace_id=trace_id, value=value, saved=True)

    @server.resource("fundbot://catalog", name="catalog", mime_type="application/json",
                     description="Every table and column with its documentation, the analyst's "
                                 "rules and the data's as-of date.")
    def catalog_resource() -> str:
        gate.enter(ResourceError)
        return catalog_json(catalog)

    @server.resource("fundbot://diagram", name="state-diagram", mime_type="text/plain",
                     description="The state machine every question goes through, as Mermaid.")
    def diagram_resource() -> str:
        gate.enter(ResourceError)
        return mermaid()

    @server.resource("fundbot://trace/{trace_id}", name="trace", mime_type="application/json",
                     description="Every step of one of your turns: states, SQL attempts and "
                                 "errors, LLM calls with tokens and milliseconds.")
    def trace_resource(trace_id: str) -> str:
        client = gate.enter(ResourceError)
        trace = own_trace(client, trace_id, ResourceError)
        data = trace.to_dict()
        data["thread_id"] = data["thread_id"].removeprefix(thread_key(client, ""))
        return json.dumps(jsonable(data), ensure_ascii=False, indent=1)

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return server


# ------------------------------------------------------------------------ running


def host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def transport_security(host: str, allowed_hosts: list[str]) -> TransportSecuritySettings:
    """DNS-rebinding protection: loopback names, plus the Host names given on the command line."""
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*"]
    origins = ["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"]
    for name in allowed_hosts:
        with_port = name.rsplit(":", 1)[-1].isdigit() and not name.endswith("]")
        hosts += [name] if with_port else [name, f"{name}:*"]
        for scheme in ("http", "https"):
            origins += [f"{scheme}://{name}"] + ([] if with_port else [f"{scheme}://{name}:*"])
    return TransportSecuritySettings(enable_dns_rebinding_protection=True,
                                     allowed_hosts=hosts, allowed_origins=origins)


def check_http(config: Config, host: str, allowed_hosts: list[str]) -> None:
    """Off loopback, a token and an explicit list of Host names are required."""
    if host in LOOPBACK:
        return
    if not config.mcp_token:
        raise ConfigError(f"serving MCP on {host} (not loopback) needs FUNDBOT_MCP_TOKEN; "
                          "see docs/MCP.md")
    if not allowed_hosts:
        raise ConfigError(f"serving MCP on {host} needs --allowed-hosts: the host names "
                          "clients use to reach it (e.g. fundbot.example.com)")


def serve(config: Config, deps: Deps, *, http: bool = False, host: str = LOOPBACK[0],
          port: int = DEFAULT_PORT, allowed_hosts: list[str] | None = None) -> None:
    """Run until stdin closes (stdio) or SIGINT/SIGTERM (HTTP)."""
    allowed_hosts = allowed_hosts or []
    if http:
        check_http(config, host, allowed_hosts)
    server = build_server(config, deps, http=http, host=host, port=port)
    deps.warehouse.resolve("")  # build the value dictionaries now, not on the first question
    if not http:
        server.run("stdio")
        return
    app = server.streamable_http_app(host=host, max_request_body_size=MAX_BODY_BYTES,
                                     transport_security=transport_security(host, allowed_hosts))
    log.warning("fundbot MCP server on http://%s:%d/mcp", host_in_url(host), port)
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_keep_alive=30,
                limit_concurrency=100)
