"""Run cases through the real core (`states.machine.run_turn`) and score every turn.

Each case runs in its own thread id of the store, with "today" pinned, its turns in order;
cases run concurrently on a thread pool. The reference SQL runs through the same warehouse
(guard, sandbox, row cap) so both sides are capped alike, and the important values are
re-derived from it: a case whose stored values no longer match the data is marked stale.
"""

from __future__ import annotations

import statistics
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from typing import Any

from eval import metrics as M
from eval.cases import DEFAULT_TODAY, Case, TurnSpec
from eval.progress import Progress
from states.dialects import transpile
from states.machine import Deps, run_turn
from states.ports import LLM, Limits, QueryError, QueryResult, Store, TurnResult, Warehouse

# Metrics averaged over cases in the summary and per tag (fractions 0-1).
QUALITY = ("table_recall", "column_recall", "value_recall", "answer_value_recall",
           "execution_accuracy", "rouge1", "rouge2", "rougeL")
# Turn-level classification metrics.
CLASSIFICATION = ("outcome_accuracy", "clarification_precision", "clarification_recall",
                  "refusal_precision", "refusal_recall")


@dataclass
class Reference:
    columns: list[str]
    rows: list[tuple]
    error: str = ""


def outcome_of(r: TurnResult) -> str:
    """answer | clarify | refuse | fail, as a case's `expect` names them."""
    if r.state == "clarify":
        return "clarify"
    if r.state == "answered":
        return "refuse" if r.refused else "answer"
    return "refuse" if r.error_kind == "refused" else "fail"


def reference_result(warehouse: Warehouse, sql: str) -> Reference:
    """The reference SQL's result (written in DuckDB SQL, run in the warehouse's dialect)."""
    try:
        res: QueryResult = warehouse.execute(transpile(sql, warehouse.catalog.dialect))
    except QueryError as exc:
        return Reference([], [], f"{exc.kind}: {exc.message}")
    return Reference(list(res.columns), list(res.rows))


def stale_values(spec: TurnSpec, ref: Reference) -> list[str]:
    """How the stored important values differ from those of the current data ([] if not)."""
    if ref.error:
        return [f"reference SQL failed: {ref.error}"]
    now = M.derive_values(ref.columns, ref.rows, spec.value_columns,
                          ordered=M.is_ordered(spec.sql or ""))
    if len(now) != len(spec.values):
        return [f"stored {len(spec.values)} values, the data gives {len(now)}: {now[:10]}"]
    out = []
    for old, new in zip(spec.values, now, strict=False):
        same = (isinstance(old, str) and isinstance(new, str) and old == new) or (
            not isinstance(old, str) and not isinstance(new, str)
            and M._close(float(old), float(new), rel=1e-9, abs_=1e-9))
        if not same:
            out.append(f"stored {old!r}, the data gives {new!r}")
    return out


def score_turn(spec: TurnSpec, r: TurnResult, ref: Reference | None, catalog,
               seconds: float) -> dict[str, Any]:
    """One turn's record: what happened, and its metrics where the turn defines them."""
    outcome = outcome_of(r)
    rec: dict[str, Any] = {
        "question": spec.question, "expect": spec.expect, "outcome": outcome, "state": r.state,
        "ok": outcome == spec.expect, "sql": r.sql, "answer": r.answer,
        "clarification": r.clarification, "options": list(r.options),
        "columns": list(r.columns), "row_count": len(r.rows), "truncated": r.truncated,
        "llm_calls": r.llm_calls, "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens, "seconds": round(seconds, 4),
        "error_kind": r.error_kind, "trace_id": r.trace_id,
        "reference_sql": spec.sql, "reference_answer": spec.answer,
    }
    said = r.answer if outcome in ("answer", "refuse") else (r.clarification or r.answer)
    if spec.expect == "answer":
        pred_sql = r.sql if outcome == "answer" else None
        rec_sql = M.sql_recall(pred_sql, spec.sql, catalog)
        answered = outcome == "answer"
        cols, rows = (r.columns, r.rows) if answered else ([], [])
        value, missed = M.value_recall(spec.values, cols, rows)
        answer_value, _ = M.value_recall(spec.values, text=said if answered else None)
        match = None
        if ref is not None and not ref.error:
            match = answered and M.execution_match(
                r.columns, r.rows, ref.columns, ref.rows, ordered=M.is_ordered(spec.sql or ""))
        rec.update(
            table_recall=rec_sql.table_recall, column_recall=rec_sql.column_recall,
            missing_tables=rec_sql.missing_tables, missing_columns=rec_sql.missing_columns,
            value_recall=value, answer_value_recall=answer_value,
            missing_values=missed, execution_match=match,
            reference_error=ref.error if ref else "",
            stale=stale_values(spec, ref) if ref else [],
        )
    if spec.expect == "clarify" and spec.options:
        rec["options_ok"] = set(spec.options) <= set(r.options)
    if spec.answer and spec.expect in ("answer", "refuse"):
        rec.update(M.rouge(said, spec.answer) or {})
    return rec


def _case_metrics(turns: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("table_recall", "column_recall", "value_recall", "answer_value_recall",
                "rouge1", "rouge2", "rougeL"):
        out[key] = M.mean(t.get(key) for t in turns)
    matches = [t["execution_match"] for t in turns if t.get("execution_match") is not None]
    out["execution_accuracy"] = (sum(matches) / len(matches)) if matches else None
    return out


def run_case(case: Case, deps: Deps, thread_id: str,
             on_turn: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Send a case's turns to the core in one thread and score them."""
    turns: list[dict[str, Any]] = []
    error = ""
    try:
        for i, spec in enumerate(case.turns):
            if on_turn:
                on_turn(i)
            t0 = time.perf_counter()
            r = run_turn(deps, thread_id, spec.question, user="eval")
            seconds = time.perf_counter() - t0
            ref = reference_result(deps.warehouse, spec.sql) if spec.sql else None
            turns.append(score_turn(spec, r, ref, deps.warehouse.catalog, seconds))
    except Exception as exc:  # noqa: BLE001 - a harness bug must cost one case, not the run
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    metrics = _case_metrics(turns)
    if error:  # the turns that never ran score zero where they would have scored
        for spec in case.turns[len(turns):]:
            if spec.expect == "answer":
                for k in ("table_recall", "column_recall", "execution_accuracy"):
                    metrics[k] = 0.0
    last = next((t for t in reversed(turns) if t.get("sql")), turns[-1] if turns else {})
    stale = [s for t in turns for s in t.get("stale", [])]
    return {
        "id": case.id, "tags": case.tags, "expect": case.expect,
        "outcome": "/".join(t["outcome"] for t in turns) or "error",
        "outcome_ok": bool(turns) and not error and all(t["ok"] for t in turns),
        "passed": bool(turns) and not error and all(
            t["ok"] and t.get("execution_match") is not False for t in turns),
        "metrics": metrics,
        "sql": last.get("sql"), "reference_sql": last.get("reference_sql"),
        "answer": (turns[-1].get("answer") or turns[-1].get("clarification")) if turns else None,
        "reference_answer": case.turns[-1].answer or case.turns[-1].clarification,
        "llm_calls": sum(t["llm_calls"] for t in turns),
        "prompt_tokens": sum(t["prompt_tokens"] for t in turns),
        "completion_tokens": sum(t["completion_tokens"] for t in turns),
        "seconds": round(sum(t["seconds"] for t in turns), 4),
        "today": deps.today.isoformat() if deps.today else None,
        "thread_id": thread_id, "stale": stale, "error": error, "turns": turns,
    }


def _percentile(xs: list[float], q: float) -> float | None:
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


def summarize(cases: list[dict[str, Any]]) -> dict[str, Any]:
    """Aggregates over case records: quality means, classification, cost and time."""
    s: dict[str, Any] = {"cases": len(cases)}
    for key in QUALITY:
        s[key] = M.mean(c["metrics"].get(key) for c in cases)
    turns = [t for c in cases for t in c["turns"]]
    s["outcome_accuracy"] = (sum(t["ok"] for t in turns) / len(turns)) if turns else None
    s["clarification_precision"], s["clarification_recall"] = M.precision_recall(
        (t["outcome"] == "clarify", t["expect"] == "clarify") for t in turns)
    s["refusal_precision"], s["refusal_recall"] = M.precision_recall(
        (t["outcome"] == "refuse", t["expect"] == "refuse") for t in turns)
    s["passed"] = sum(c["passed"] for c in cases)
    s["pass_rate"] = s["passed"] / len(cases) if cases else None
    s["failed_turns"] = sum(t["outcome"] == "fail" for t in turns)
    s["errors"] = sum(bool(c["error"]) for c in cases)
    s["stale_cases"] = sum(bool(c["stale"]) for c in cases)
    s["llm_calls"] = sum(c["llm_calls"] for c in cases)
    s["prompt_tokens"] = sum(c["prompt_tokens"] for c in cases)
    s["completion_tokens"] = sum(c["completion_tokens"] for c in cases)
    secs = sorted(c["seconds"] for c in cases)
    s["llm_calls_per_case"] = s["llm_calls"] / len(cases) if cases else None
    s["seconds_total"] = round(sum(secs), 3)
    s["seconds_mean"] = round(statistics.fmean(secs), 4) if secs else None
    s["seconds_p50"] = _percentile(secs, 50)
    s["seconds_p95"] = _percentile(secs, 95)
    return s


def by_tag(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    tags = sorted({t for c in cases for t in c["tags"]})
    return {tag: summarize([c for c in cases if tag in c["tags"]]) for tag in tags}


def run_cases(cases: list[Case], warehouse: Warehouse, store: Store,
              llm_for: Callable[[Case], LLM], *, limits: Limits | None = None,
              today: date | None = None, concurrency: int = 4,
              progress: Progress | None = None, run_id: str | None = None
              ) -> tuple[list[dict[str, Any]], float]:
    """Run every case (concurrently) and return (case records in input order, wall seconds).

    `llm_for(case)` gives the model a case talks to: one shared client, or the case's own
    GoldLLM; a model with a `turn` attribute is told which turn is being asked.
    """
    run_id = run_id or uuid.uuid4().hex[:8]
    limits = limits or Limits()

    def one(case: Case) -> dict[str, Any]:
        llm = llm_for(case)
        deps = Deps(llm=llm, warehouse=warehouse, store=store, limits=limits,
                    today=case.today or today or DEFAULT_TODAY)
        on_turn = (lambda i: setattr(llm, "turn", i)) if hasattr(llm, "turn") else None
        return run_case(case, deps, f"eval-{run_id}-{case.id}", on_turn)

    t0 = time.perf_counter()
    results: list[dict[str, Any] | None] = [None] * len(cases)
    with ThreadPoolExecutor(max_workers=max(1, concurrency),
                            thread_name_prefix="eval") as pool:
        futures = {pool.submit(one, case): i for i, case in enumerate(cases)}
        for fut in as_completed(futures):
            rec = fut.result()
            results[futures[fut]] = rec
            if progress:
                progress.advance(ok=rec["passed"])
    if progress:
        progress.close()
    return [r for r in results if r is not None], time.perf_counter() - t0
