"""debug: hand the failing SQL and its error (or an empty result) back to the model for a fix.

The bound on attempts is a guard on the machine's transitions, not a counter here.
"""

from __future__ import annotations

from states.context import TurnContext
from states.ports import LLMError
from states.prompts import clip
from states.understand import build_messages, llm_trouble, sql_from_reply

KEEP = "KEEP"
DEBUG_SQL_CHARS = 4000  # of each earlier attempt shown again: the prompt stays bounded
DEBUG_ATTEMPTS_SHOWN = 4


def run(ctx: TurnContext) -> str:
    ctx.debug_attempts += 1
    empty = ctx.error is None and ctx.result is not None and not ctx.result.rows
    if empty:
        ctx.empty_debugged = True
    messages = build_messages(ctx)
    for attempt in ctx.trace.sql_attempts[-DEBUG_ATTEMPTS_SHOWN:]:
        messages.append({"role": "assistant",
                         "content": f"```sql\n{clip(attempt.sql, DEBUG_SQL_CHARS)}\n```"})
        if attempt.ok and attempt.rows == 0:
            messages.append({"role": "user", "content": (
                "That query ran but returned no rows. If the question implies rows should exist "
                "(a name spelled differently from the data, a date filter too narrow, a wrong "
                "join), call sql_query with a corrected query. If no rows is the right answer, "
                f"reply with the single word {KEEP}.")})
        elif not attempt.ok:
            messages.append({"role": "user", "content": (
                f"That query failed ({attempt.error_kind}): {clip(attempt.error, 1000)}\n"
                "Call sql_query with a corrected query.")})
    try:
        reply = ctx.call_llm("debug", messages, tools=[ctx.sql_tool])
    except LLMError as exc:
        return ctx.fail("llm", llm_trouble(exc), detail=f"{exc.kind}: {exc.message}")
    sql, problem = sql_from_reply(reply)
    if empty and (sql is None and (reply.content or "").strip().upper().startswith(KEEP)
                  or sql == ctx.sql):
        return "keep"
    if sql:
        ctx.sql = sql
        return "sql"
    return ctx.fail("sql", exhausted_message(ctx, problem or "the model offered no corrected "
                                             "query"))


def exhausted_message(ctx: TurnContext, reason: str | None = None) -> str:
    """What the user reads when no working SQL could be had: what went wrong, the last SQL."""
    last = ctx.trace.sql_attempts[-1] if ctx.trace.sql_attempts else None
    what = reason or (f"{last.error_kind}: {last.error}" if last and not last.ok else "unknown")
    tries = len(ctx.trace.sql_attempts)
    msg = (f"I could not get a working query for this ({tries} "
           f"attempt{'s' if tries != 1 else ''}). Last problem: {what[:500]}")
    if last:
        msg += f"\nLast SQL tried:\n```sql\n{last.sql[:3000]}\n```"
    return msg + "\nTry naming the fund, company or period more precisely."
