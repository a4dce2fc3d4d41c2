"""understand: question -> one SQL string, a clarifying question, or a polite refusal.

Names are resolved against the warehouse's value dictionaries before any LLM call; a name
with several candidates goes straight to clarify (no LLM call).
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

import sqlglot
from sqlglot import exp

from states import verified
from states.context import TurnContext
from states.guard import MAX_SQL_CHARS
from states.ports import Entity, LLMError, LLMReply
from states.prompts import (
    OUT_OF_SCOPE,
    facts_block,
    history_messages,
    system_prompt,
)
from states.pruning import relevant_tables, tables_named

# The model is untrusted input: its tool calls are bounded before they are parsed.
MAX_ARGUMENT_CHARS = MAX_SQL_CHARS * 2 + 1000  # JSON escaping can double the SQL's length
MAX_TOOL_CALLS = 4  # tool calls of one reply looked at

_SQL_START = re.compile(
    r"^\s*(select|with|from|insert|update|delete|merge|drop|create|alter|truncate|attach|detach|"
    r"copy|export|import|install|load|pragma|set|reset|call|vacuum|checkpoint)\b",
    re.IGNORECASE,
)

_SQL_PUNCTUATION = re.compile(r"[();='\"]")


def run(ctx: TurnContext) -> str:
    text = ctx.text.strip()
    limits = ctx.deps.limits
    if not text:
        return ctx.fail("empty", "Ask me a question about the data, for example which tables "
                        "there are or a total for last year.")
    if len(ctx.text) > limits.max_question_chars:
        return ctx.fail("too_long", f"That message is {len(ctx.text):,} characters long; I take "
                        f"questions of up to {limits.max_question_chars:,}. Please ask it "
                        "more briefly.")
    if ctx.conv.status != "clarify":
        pasted = _pasted_sql(ctx.question, ctx.deps.warehouse.catalog.dialect)
        if pasted is not None:
            return pasted(ctx)

    t0 = time.perf_counter()
    entities, ambiguities = ctx.deps.warehouse.resolve(ctx.question)
    settled = ctx.conv.pending.settled if ctx.conv.pending else {}
    ctx.facts = list(ctx.conv.pending.facts) if ctx.conv.pending else []
    open_ambiguities = []
    for amb in ambiguities:
        chosen = settled.get(amb.mention.lower())
        match = [c for c in amb.candidates if c.value == chosen]
        if match:
            entities.append(Entity(**{**match[0].__dict__, "mention": amb.mention}))
        else:
            open_ambiguities.append(amb)
    ctx.entities, ctx.ambiguities = entities, open_ambiguities
    ctx.time("resolve", t0)

    if open_ambiguities:
        amb = open_ambiguities[0]
        names = [c.value for c in amb.candidates]
        ctx.clarification = (f"Which {amb.mention} do you mean: "
                             f"{', '.join(names[:-1])} or {names[-1]}?")
        ctx.options = names
        ctx.clarify_kind, ctx.clarify_mention = "entity", amb.mention
        return "ask"

    event = verified.consult(ctx)  # a verified query may answer without the SQL-writing call
    if event is not None:
        return event

    t0 = time.perf_counter()
    messages = build_messages(ctx)
    ctx.time("prompt", t0)
    try:
        reply = ctx.call_llm("understand", messages, tools=[ctx.sql_tool])
        sql, problem = sql_from_reply(reply)
        if problem and not reply.content:
            # one corrective round: tell the model what was wrong with its tool call
            messages.append({"role": "user", "content": f"Your reply was not usable: {problem} "
                             "Call sql_query with a JSON object like {\"sql\": \"SELECT ...\"}."})
            reply = ctx.call_llm("understand", messages, tools=[ctx.sql_tool])
            sql, problem = sql_from_reply(reply)
    except LLMError as exc:
        return ctx.fail("llm", llm_trouble(exc), detail=f"{exc.kind}: {exc.message}")
    if sql:
        ctx.sql, ctx.chart_hint = sql, chart_hint(reply)
        return "sql"
    content = (reply.content or "").strip()
    if content.upper().startswith(OUT_OF_SCOPE):
        ctx.answer = content[len(OUT_OF_SCOPE):].strip() or "I can only answer questions about " \
            "the data."
        ctx.refused = True
        return "refuse"
    if content and not problem:
        ctx.clarification = content[:2000]
        ctx.clarify_kind = "llm"
        return "ask"
    return ctx.fail("llm", "The language model sent a reply I could not use "
                    f"({problem or 'empty reply'}). Please ask again.", detail=problem or "")


def build_messages(ctx: TurnContext) -> list[dict[str, Any]]:
    catalog = ctx.deps.warehouse.catalog
    previous = next((t.sql for t in reversed(ctx.conv.history) if t.sql), None)
    tables = relevant_tables(catalog, ctx.question, ctx.entities,
                             keep=tables_named(previous, catalog))
    facts = facts_block(ctx.entities, ctx.facts)
    # examples were written by users: they go with the question, not into the system prompt
    examples = verified.examples_block(ctx.examples)
    user = ctx.question + "".join(f"\n\n{part}" for part in (facts, examples) if part)
    return [
        {"role": "system", "content": system_prompt(catalog, tables, ctx.today)},
        *history_messages(ctx.conv.history, ctx.deps.limits.history_turns),
        {"role": "user", "content": user},
    ]


def sql_from_reply(reply: LLMReply) -> tuple[str | None, str | None]:
    """The SQL of the first usable sql_query call, else (None, what was wrong)."""
    if not reply.tool_calls:
        return None, None if reply.content else "no tool call and no text"
    problems = []
    for call in reply.tool_calls[:MAX_TOOL_CALLS]:
        if call.name != "sql_query":
            problems.append(f"unknown tool {call.name[:60]!r}")
            continue
        if len(call.arguments or "") > MAX_ARGUMENT_CHARS:  # before parsing: never load it
            problems.append(f"sql_query arguments were {len(call.arguments):,} characters; "
                            f"the SQL limit is {MAX_SQL_CHARS:,}: write a shorter query")
            continue
        try:
            args = json.loads(call.arguments or "{}")
        except (ValueError, RecursionError):
            problems.append("sql_query arguments were not valid JSON")
            continue
        sql = args.get("sql") if isinstance(args, dict) else None
        if isinstance(sql, str) and len(sql) > MAX_SQL_CHARS:
            problems.append(f"the SQL was {len(sql):,} characters; the limit is "
                            f"{MAX_SQL_CHARS:,}: write a shorter query")
            continue
        if isinstance(sql, str) and sql.strip():
            return sql.strip(), None
        problems.append("sql_query was called without a 'sql' string")
    return None, "; ".join(problems)


def chart_hint(reply: LLMReply) -> str | None:
    """The model's suggestion of a chart (sql_query's optional `chart`); the rules decide."""
    for call in reply.tool_calls:
        if call.name == "sql_query":
            try:
                hint = json.loads(call.arguments or "{}").get("chart")
            except (ValueError, AttributeError):
                return None
            return hint if hint in ("line", "bar", "none") else None
    return None


def llm_trouble(exc: LLMError) -> str:
    """A short, human message for an LLM fault, with what to try next."""
    hint = {
        "rate_limit": "It is rate-limiting us; try again in a minute.",
        "timeout": "It did not answer in time; try again shortly.",
        "connection": "I could not reach it; check that the endpoint is up.",
        "auth": "It refused our credentials; an admin should check OPENAI_API_KEY.",
        "content_filter": "Its content filter stopped the reply; try rephrasing.",
    }.get(exc.kind, "Try again shortly.")
    return f"I could not get an answer from the language model ({exc.kind}). {hint}"


def _command_is_sql(text: str) -> bool:
    """sqlglot parses text it does not know as a Command ("Create a list of our fintech
    companies"); only a short or SQL-punctuated one (LOAD httpfs, CALL f()) is SQL."""
    return len(text.split()) <= 2 or bool(_SQL_PUNCTUATION.search(text))


def _pasted_sql(text: str, dialect: str = "duckdb"):
    """A handler for SQL pasted as the question, or None when the text is not SQL."""
    if not _SQL_START.match(text):
        return None
    try:
        statements = [s for s in sqlglot.parse(text, read=dialect) if s is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return None  # English that happens to start with "select" or "with"
    if not statements:
        return None
    first = statements[0]
    is_query = isinstance(first, exp.Query) and len(statements) == 1
    if is_query and (not isinstance(first, exp.Select) or first.find(exp.From)):
        def run_pasted(ctx: TurnContext) -> str:
            ctx.sql = text.strip()
            return "sql"
        return run_pasted
    if is_query or (len(statements) == 1 and isinstance(first, exp.Command)
                    and not _command_is_sql(text)):
        return None
    kind = first.key.upper() if len(statements) == 1 else "several statements"

    def refuse(ctx: TurnContext) -> str:
        return ctx.fail("refused", f"That looks like SQL that is not a single read-only query "
                        f"({kind}). I only run one SELECT at a time over the warehouse; "
                        "ask in words, or paste a SELECT.")
    return refuse
