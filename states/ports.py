"""The core's contracts with the world: data it passes around and the ports it is handed.

Nothing here does I/O. `bot/` implements the ports (OpenAI client, DuckDB executor,
SQLite store); tests and eval hand in fakes.
"""

from __future__ import annotations

import dataclasses
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

# --------------------------------------------------------------------------- LLM


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text as the model sent it; parsing is the caller's job


@dataclass
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class LLMReply:
    content: str | None
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    model: str = ""
    finish_reason: str | None = None


class LLMError(Exception):
    """A chat completion that could not be had. kind: rate_limit, timeout, server,
    connection, auth, bad_request, bad_response, content_filter."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class LLM(Protocol):
    model: str

    def complete(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None = None,
                 tool_choice: str | None = None) -> LLMReply: ...


# --------------------------------------------------------------------- warehouse


@dataclass
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False  # more rows existed than the cap
    elapsed_ms: float = 0.0


class QueryError(Exception):
    """A SQL statement that yielded no rows. kind: refused (guard), parse, binder,
    runtime, timeout."""

    def __init__(self, kind: str, message: str, sql: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.sql = sql


@dataclass
class ColumnDoc:
    name: str
    type: str
    description: str = ""


@dataclass
class TableDoc:
    name: str
    description: str = ""
    columns: dict[str, ColumnDoc] = field(default_factory=dict)  # keyed by lower-case name
    keywords: list[str] = field(default_factory=list)  # words people use for it ("worth")


@dataclass
class Catalog:
    """What the warehouse holds and what an analyst knows about it."""

    tables: dict[str, TableDoc]  # keyed by lower-case table name
    rules: list[str] = field(default_factory=list)  # analyst rules, plain sentences
    as_of: str = ""  # ISO date the data is current to ("data as of")
    audience: str = ""  # who asks ("a venture fund's general partners"); "" = anyone
    dialect: str = "duckdb"  # the SQL the warehouse speaks (sqlglot name): duckdb, spark...

    def columns_by_table(self) -> dict[str, set[str]]:
        return {t: set(doc.columns) for t, doc in self.tables.items()}


@dataclass
class Entity:
    """A name in the question resolved against the warehouse's value dictionaries."""

    kind: str  # "gp", "company" or "fund"
    mention: str  # the words in the question
    value: str  # the canonical value (full name, legal name, fund name)
    table: str = ""
    column: str = ""
    key: Any = None  # primary key value, when known
    key_column: str = ""  # the column `key` is a value of (companies.company_id)


@dataclass
class Ambiguity:
    kind: str
    mention: str
    candidates: list[Entity]


# The turn being answered (its trace id), set by the machine for the turn's duration: a
# warehouse may tag its queries with it (Spark job tags) so a whole turn can be cancelled.
CURRENT_TURN: ContextVar[str] = ContextVar("fundbot_current_turn", default="")


class Warehouse(Protocol):
    catalog: Catalog

    def execute(self, sql: str) -> QueryResult:
        """Guard, then run read-only in the sandbox; raises QueryError."""
        ...

    def resolve(self, text: str) -> tuple[list[Entity], list[Ambiguity]]:
        """Deterministic entity resolution against the value dictionaries."""
        ...


# ------------------------------------------------------------------ conversation


@dataclass
class Turn:
    question: str
    state: str  # final state: answered, clarify, failed
    sql: str | None = None
    answer: str | None = None
    columns: list[str] = field(default_factory=list)
    row_count: int = 0
    trace_id: str = ""
    at: str = ""  # ISO timestamp


@dataclass
class Pending:
    """A clarifying question the thread is waiting on."""

    question: str  # the user's original question
    prompt: str  # what we asked
    options: list[str] = field(default_factory=list)
    rounds: int = 1  # clarification rounds spent on this question
    kind: str = "llm"  # "entity" (deterministic) or "llm"
    mention: str = ""  # for entity clarifications: the ambiguous words
    facts: list[str] = field(default_factory=list)  # answers gathered so far
    settled: dict[str, str] = field(default_factory=dict)  # ambiguous mention -> chosen value
    asker: str | None = None  # who asked (a front end's user id): only they may answer by text


@dataclass
class Conversation:
    thread_id: str
    status: str = "idle"  # idle | clarify | busy
    pending: Pending | None = None
    history: list[Turn] = field(default_factory=list)
    version: int = 0  # bumped by the store on every save

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Conversation:
        pending = d.get("pending")
        return cls(
            thread_id=d["thread_id"],
            status=d.get("status", "idle"),
            pending=Pending(**pending) if pending else None,
            history=[Turn(**t) for t in d.get("history", [])],
            version=d.get("version", 0),
        )


# ------------------------------------------------------------------------- trace


@dataclass
class Step:
    state: str
    ms: float
    event: str = ""
    detail: str = ""


@dataclass
class SqlAttempt:
    sql: str
    ok: bool
    error_kind: str = ""
    error: str = ""
    rows: int = 0
    ms: float = 0.0


@dataclass
class LLMCall:
    purpose: str  # understand, debug, interpret
    ms: float
    prompt_tokens: int = 0
    completion_tokens: int = 0
    prompt_chars: int = 0
    error: str = ""


@dataclass
class Trace:
    trace_id: str
    thread_id: str
    question: str
    started_at: str
    steps: list[Step] = field(default_factory=list)
    sql_attempts: list[SqlAttempt] = field(default_factory=list)
    llm_calls: list[LLMCall] = field(default_factory=list)
    final_state: str = ""
    answer: str = ""
    error: str = ""
    # verify: per answer checked, {"round", "answer", "checks": [{figure, kind, verdict,
    # support}], "verdict"}
    verify: list[dict[str, Any]] = field(default_factory=list)
    verified_query: int | None = None  # the verified query whose SQL answered the turn

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Trace:
        return cls(
            **{k: v for k, v in d.items() if k not in ("steps", "sql_attempts", "llm_calls")},
            steps=[Step(**s) for s in d.get("steps", [])],
            sql_attempts=[SqlAttempt(**s) for s in d.get("sql_attempts", [])],
            llm_calls=[LLMCall(**c) for c in d.get("llm_calls", [])],
        )


class StoreError(Exception):
    """The state store could not be used; `message` is one line naming the store and the fix.
    kind: busy (locked too long), corrupt, io, full, readonly, closed, unreachable, schema."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


class Store(Protocol):
    """Raises StoreError. A store may also offer `turn_lock(thread_id)`, a context manager
    that serialises one thread's turns across threads and processes (run_turn holds it)."""

    def load(self, thread_id: str) -> Conversation:
        """The thread's conversation, or a new idle one."""
        ...

    def save(self, conversation: Conversation) -> None: ...

    def save_trace(self, trace: Trace) -> None: ...


# ------------------------------------------------------------------------ limits


@dataclass
class Limits:
    """Every bound the bot keeps, with safe defaults; bot/config.py reads overrides from env."""

    query_timeout_s: float = 10.0  # per DuckDB query, enforced by interrupt
    memory_limit: str = "1GB"  # DuckDB memory_limit
    threads: int = 2  # DuckDB threads
    max_rows: int = 1000  # rows returned by a query (one more is fetched to see truncation)
    llm_rows: int = 50  # rows shown to the LLM in interpret/debug
    max_question_chars: int = 4000
    llm_timeout_s: float = 60.0
    llm_retries: int = 3
    debug_attempts: int = 3
    clarify_rounds: int = 2
    history_turns: int = 4  # previous turns of the thread sent as context
    max_result_bytes: int = 10_000_000  # bytes of rows a query may return (rows are cut there)
    sql_workers: int = 2  # warm SQL worker processes (bot/sqlpool.py)
    max_completion_tokens: int = 2000  # sent with every chat completion request


# ------------------------------------------------------------------ turn result


@dataclass
class TurnResult:
    """What one message to the bot produced; the CLI, Slack and eval render this."""

    thread_id: str
    state: str  # answered | clarify | failed
    answer: str | None = None
    sql: str | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    truncated: bool = False
    clarification: str | None = None
    options: list[str] = field(default_factory=list)
    trace_id: str = ""
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings_ms: dict[str, float] = field(default_factory=dict)
    error_kind: str | None = None  # failed turns: empty, too_long, llm, sql, clarify, internal
    # declined as asked: a question outside the data (state answered, no SQL), or a request
    # that is not acceptable (pasted SQL that is not one read-only query, empty, too long)
    refused: bool = False
    as_of: str = ""
    verified_query: int | None = None  # answered with this verified query's SQL
    # verified: every figure checked against the data; revised: so, on the second try;
    # replaced: the summary was withheld and the result's values posted; "": not checked
    verification: str = ""
    question: str = ""  # the question answered (the original one when a reply resolved it)
    chart_hint: str | None = None  # the model's chart suggestion; bot/chart.py's rules decide
    warning: str | None = None  # the answer stands, but something went wrong (e.g. not saved)


# ------------------------------------------------------------- verified queries


@dataclass
class Slot:
    """A name a verified query was written for; `swappable` when its value or key is a
    literal of the SQL, so the query also serves another name of the same kind."""

    kind: str
    value: str
    key: Any = None
    mention: str = ""
    table: str = ""
    column: str = ""
    swappable: bool = False


@dataclass
class VerifiedQuery:
    """A reviewed question -> SQL pair. status: proposed, verified, retired. `broken` says
    why its SQL stopped working against the warehouse; a broken query is never used."""

    id: int
    question: str
    sql: str
    slots: list[Slot] = field(default_factory=list)
    status: str = "proposed"
    source: str = ""  # feedback (a thumbs-up) or operator (fundbot verified add)
    trace_id: str = ""  # the turn it came from
    answer: str = ""  # the answer that turn gave, for the reviewer
    proposed_by: str = ""
    proposed_at: str = ""
    verified_by: str = ""
    verified_at: str = ""
    retired_by: str = ""
    retired_at: str = ""
    broken: str = ""
    updated_at: str = ""

    @property
    def usable(self) -> bool:
        return self.status == "verified" and not self.broken

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VerifiedQuery:
        return cls(**{**d, "slots": [Slot(**s) for s in d.get("slots") or []]})


class VerifiedLibrary(Protocol):
    """Where verified queries are kept (the store implements it)."""

    def propose_verified(self, query: VerifiedQuery) -> VerifiedQuery:
        """Insert (id assigned); the same question and SQL again returns the existing row."""
        ...

    def get_verified(self, query_id: int) -> VerifiedQuery | None: ...

    def list_verified(self, status: str | None = None) -> list[VerifiedQuery]: ...

    def review_verified(self, query_id: int, status: str, by: str) -> VerifiedQuery:
        """Set the status (verified or retired) as reviewer `by`; verifying clears `broken`."""
        ...

    def flag_verified(self, query_id: int, reason: str) -> None:
        """Mark the query broken: it is no longer used until a reviewer verifies it again."""
        ...
