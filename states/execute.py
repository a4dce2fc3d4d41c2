"""execute: run the SQL through the warehouse (guard, then sandbox); rows or a typed error."""

from __future__ import annotations

import time

from states import verified
from states.context import TurnContext
from states.ports import QueryError, SqlAttempt


def run(ctx: TurnContext) -> str:
    assert ctx.sql, "execute needs SQL"
    t0 = time.perf_counter()
    try:
        result = ctx.deps.warehouse.execute(ctx.sql)
    except QueryError as exc:
        ms = (time.perf_counter() - t0) * 1000
        ctx.time("guard", t0)
        ctx.error, ctx.result = exc, None
        verified.failed(ctx, exc)  # a verified query that fails is flagged, not trusted
        ctx.trace.sql_attempts.append(SqlAttempt(
            sql=ctx.sql, ok=False, error_kind=exc.kind, error=exc.message[:2000], ms=round(ms, 3)))
        return "error"
    ms = (time.perf_counter() - t0) * 1000
    ctx.timings["duckdb"] = round(ctx.timings.get("duckdb", 0.0) + result.elapsed_ms, 3)
    ctx.timings["guard"] = round(ctx.timings.get("guard", 0.0) + ms - result.elapsed_ms, 3)
    ctx.error, ctx.result = None, result
    ctx.trace.sql_attempts.append(SqlAttempt(sql=ctx.sql, ok=True, rows=len(result.rows),
                                             ms=round(ms, 3)))
    return "rows" if result.rows else "empty"
