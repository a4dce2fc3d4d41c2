"""In-process fakes of the core's ports, recording what they were asked (like llm's MockModel)."""

from __future__ import annotations

import copy
import json
from collections import deque
from typing import Any

from states.ports import (
    Ambiguity,
    Catalog,
    ColumnDoc,
    Conversation,
    Entity,
    LLMError,
    LLMReply,
    QueryError,
    QueryResult,
    TableDoc,
    ToolCall,
    Trace,
    Usage,
)


class ScriptedLLM:
    """Replays queued replies; records every request in ``history``."""

    model = "scripted"

    def __init__(self) -> None:
        self.queue: deque[LLMReply | LLMError] = deque()
        self.history: list[dict[str, Any]] = []

    def sql(self, sql: str, name: str = "sql_query") -> ScriptedLLM:
        args = json.dumps({"sql": sql})
        self.queue.append(LLMReply(content=None, tool_calls=[ToolCall("c1", name, args)],
                                   usage=Usage(100, 20), finish_reason="tool_calls"))
        return self

    def raw_tool(self, name: str, arguments: str) -> ScriptedLLM:
        self.queue.append(LLMReply(content=None, tool_calls=[ToolCall("c1", name, arguments)],
                                   usage=Usage(100, 20)))
        return self

    def text(self, content: str) -> ScriptedLLM:
        self.queue.append(LLMReply(content=content, usage=Usage(80, 10), finish_reason="stop"))
        return self

    def error(self, kind: str, message: str = "scripted failure") -> ScriptedLLM:
        self.queue.append(LLMError(kind, message))
        return self

    def complete(self, messages, tools=None, tool_choice=None) -> LLMReply:
        self.history.append({"messages": copy.deepcopy(messages), "tools": tools})
        if not self.queue:
            raise AssertionError("ScriptedLLM: no reply queued for this call")
        item = self.queue.popleft()
        if isinstance(item, LLMError):
            raise item
        return item


def fund_catalog() -> Catalog:
    cols = {
        "general_partners": ["gp_id", "first_name", "last_name", "full_name"],
        "companies": ["company_id", "company_name", "sector"],
        "investments": ["investment_id", "fund_id", "company_id", "lead_gp_id", "amount_usd",
                        "investment_date"],
        "valuations": ["valuation_id", "fund_id", "company_id", "valuation_date",
                       "fair_value_usd"],
    }
    return Catalog(
        tables={t: TableDoc(t, f"the {t}", {c: ColumnDoc(c, "VARCHAR", f"{c} doc") for c in cs})
                for t, cs in cols.items()},
        rules=["Use the newest valuation unless a date is named."],
        as_of="2026-09-30",
    )


ADAMS = [Entity("gp", "Adam", "Adam Brooks", "general_partners", "full_name", 1),
         Entity("gp", "Adam", "Adam Levin", "general_partners", "full_name", 2)]


class FakeWarehouse:
    """Answers SQL from a table of canned results; resolves a few known names."""

    def __init__(self, results: dict[str, QueryResult | QueryError] | None = None) -> None:
        self.catalog = fund_catalog()
        self.results = results or {}
        self.executed: list[str] = []

    def execute(self, sql: str) -> QueryResult:
        self.executed.append(sql)
        item = self.results.get(sql)
        if item is None:
            raise QueryError("binder", f"no canned result for {sql!r}", sql)
        if isinstance(item, QueryError):
            raise item
        return item

    def resolve(self, text: str) -> tuple[list[Entity], list[Ambiguity]]:
        low = text.lower()
        entities, ambiguities = [], []
        if "databricks" in low:
            entities.append(Entity("company", "databricks", "Databricks, Inc.", "companies",
                                   "company_name", 7))
        if "adam brooks" in low:
            entities.append(ADAMS[0])
        elif "adam levin" in low:
            entities.append(ADAMS[1])
        elif "adam" in low:
            ambiguities.append(Ambiguity("gp", "Adam", list(ADAMS)))
        return entities, ambiguities


class MemoryStore:
    """Keeps conversations as JSON, so a save/load round trip is as strict as SQLite's."""

    def __init__(self) -> None:
        self.conversations: dict[str, str] = {}
        self.traces: dict[str, Trace] = {}

    def load(self, thread_id: str) -> Conversation:
        raw = self.conversations.get(thread_id)
        return Conversation.from_dict(json.loads(raw)) if raw else Conversation(thread_id)

    def save(self, conversation: Conversation) -> None:
        conversation.version += 1
        self.conversations[conversation.thread_id] = json.dumps(conversation.to_dict(),
                                                                default=str)

    def save_trace(self, trace: Trace) -> None:
        self.traces[trace.trace_id] = Trace.from_dict(json.loads(json.dumps(trace.to_dict())))
