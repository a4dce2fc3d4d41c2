"""One turn's working memory, shared by the state modules."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from states import prompts
from states.ports import (
    Ambiguity,
    Conversation,
    Entity,
    LLMCall,
    LLMError,
    LLMReply,
    QueryError,
    QueryResult,
    Step,
    Trace,
    VerifiedQuery,
)

if TYPE_CHECKING:
    from states.machine import Deps


# Failures that decline the request as given (asking again the same way will not help): with
# an out-of-scope question they are "refused" (TurnResult.refused, exit status 2).
REFUSALS = frozenset({"refused", "empty", "too_long"})


@dataclass
class TurnContext:
    deps: Deps
    conv: Conversation
    text: str  # the message as received
    trace: Trace
    question: str  # the question being answered (the original one when resuming)
    user: str | None = None
    entities: list[Entity] = field(default_factory=list)
    ambiguities: list[Ambiguity] = field(default_factory=list)
    facts: list[str] = field(default_factory=list)  # answers to clarifications
    sql: str | None = None
    result: QueryResult | None = None
    error: QueryError | None = None
    empty_debugged: bool = False
    debug_attempts: int = 0
    clarification: str | None = None
    options: list[str] = field(default_factory=list)
    clarify_kind: str = "llm"  # "entity" (deterministic) or "llm"
    clarify_mention: str = ""
    answer: str | None = None
    error_kind: str | None = None
    refused: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    verify_rounds: int = 0  # answers verify has checked this turn
    rejected: list[Any] = field(default_factory=list)  # verify.Check the last answer failed
    verification: str = ""  # verified | revised | replaced ("" when nothing was checked)
    chart_hint: str | None = None  # the model's suggestion (line, bar, none); the rules decide
    examples: list[VerifiedQuery] = field(default_factory=list)  # similar verified queries

    # --------------------------------------------------------------- helpers
    @property
    def today(self) -> date:
        return self.deps.today or date.today()

    @property
    def sql_tool(self) -> dict[str, Any]:
        """The sql_query tool in the warehouse's dialect."""
        return prompts.sql_tool(self.deps.warehouse.catalog.dialect)

    def add_step(self, state: str, ms: float, event: str, detail: str = "") -> None:
        self.trace.steps.append(Step(state=state, ms=round(ms, 3), event=event, detail=detail))
        self.timings[state] = round(self.timings.get(state, 0.0) + ms, 3)

    def time(self, part: str, since: float) -> None:
        """Add the time since ``since`` to a named part (resolve, prompt, guard...)."""
        ms = (time.perf_counter() - since) * 1000
        self.timings[part] = round(self.timings.get(part, 0.0) + ms, 3)

    def fail(self, kind: str, message: str, detail: str = "") -> str:
        self.error_kind = kind
        self.refused = kind in REFUSALS
        self.answer = message
        self.trace.error = detail or message
        return "fail"

    def call_llm(self, purpose: str, messages: list[dict[str, Any]],
                 tools: list[dict[str, Any]] | None = None) -> LLMReply:
        """One chat completion, recorded in the trace; LLMError propagates to the caller."""
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        t0 = time.perf_counter()
        try:
            reply = self.deps.llm.complete(messages, tools=tools)
        except LLMError as exc:
            self.trace.llm_calls.append(LLMCall(
                purpose=purpose, ms=round((time.perf_counter() - t0) * 1000, 3),
                prompt_chars=chars, error=f"{exc.kind}: {exc.message}"))
            raise
        self.trace.llm_calls.append(LLMCall(
            purpose=purpose, ms=round((time.perf_counter() - t0) * 1000, 3),
            prompt_tokens=reply.usage.prompt_tokens,
            completion_tokens=reply.usage.completion_tokens, prompt_chars=chars))
        return reply
