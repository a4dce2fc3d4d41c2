"""Run cases through the real core (`states.machine.run_turn`) and score every turn.

Each case runs in its own thread id of the store, with "today" pinned, its turns in order;
cases run concurrently on a thread pool. The reference SQL runs through the same warehouse
(guard, sandbox, row cap) so both sides are capped alike, and the important values and the
reference answer are derived from it when the case does not carry them (from the acceptable
query the prediction matched). Stored values are re-derived on every run: a case whose
stored values no longer match the data is marked stale.

A turn passes when its outcome is the expected one, its result matches a reference (on the
main warehouse and on every seeded variant, when variants are given) and its answer is
right: it states the important values and no figure in it is unbacked by the data.
"""

from __future__ import annotations

import base64
import statistics
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date
from typing import Any

from bot.chart import chart_for_result
from eval import metrics as M
from eval import stats
from eval.cases import DEFAULT_TODAY, Case, TurnSpec
from eval.progress import Progress
from states.dialects import transpile
from states.machine import Deps, run_turn
from states.ports import LLM, Limits, QueryError, QueryResult, Store, TurnResult, Warehouse
from states.prompts import jsonable

SHOWN_ROWS = 10  # result rows kept per turn in the report, to show beside the chart

# Metrics averaged over cases in the summary and per tag (fractions 0-1).
QUALITY = ("table_recall", "column_recall", "table_precision", "column_precision",
           "value_recall", "answer_value_recall", "execution_accuracy", "answer_accuracy",
           "rouge1", "rouge2", "rougeL")
# Turn-level classification metrics.
CLASSIFICATION = ("outcome_accuracy", "clarification_precision", "clarification_recall",
                  "refusal_precision", "refusal_recall")


# Metrics whose 95 % interval the summary gives (summary.ci95.<metric>).
INTERVAL_METRICS = ("pass_rate", "execution_accuracy", "answer_accuracy")


def per_case(cases: list[dict[str, Any]], metric: str) -> list[float]:
    """One value per case for a summary metric (pass: 0/1), skipping cases without it."""
    if metric == "pass_rate":
        return [float(c["passed"]) for c in cases]
    return [float(v) for c in cases if (v := c["metrics"].get(metric)) is not None]


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
            and M.same_number(float(old), float(new)))
        if not same:
            out.append(f"stored {old!r}, the data gives {new!r}")
    return out


def reference_answer_for(spec: TurnSpec, ref: Reference) -> str:
    """The reference answer from a reference result: the case's template, else a plain
    listing of the important values."""
    from eval.gold import plain_answer, reference_answer

    if spec.answer_template:
        return reference_answer(spec, ref.columns, ref.rows)
    return plain_answer(spec, ref.columns, ref.rows)


@dataclass
class Expected:
    """What a turn's references say, for every acceptable query."""

    refs: list[Reference]
    answers: list[str]  # the reference answer from each reference

    @property
    def error(self) -> str:
        return "; ".join(r.error for r in self.refs if r.error)


def expected_for(spec: TurnSpec, warehouse: Warehouse) -> Expected | None:
    if not spec.sqls:
        return None
    refs = [reference_result(warehouse, sql) for sql in spec.sqls]
    answers = []
    for i, ref in enumerate(refs):
        if i == 0 and spec.answer and not spec.answer_template:
            answers.append(spec.answer)  # a hand-written reference answer
        elif ref.error:
            answers.append(spec.answer or "")
        else:
            try:
                answers.append(reference_answer_for(spec, ref))
            except KeyError:  # an alternative without the template's columns
                from eval.gold import plain_answer

                answers.append(plain_answer(spec, ref.columns, ref.rows))
    return Expected(refs, answers)


def _match(spec: TurnSpec, columns: list[str], rows: list[tuple], refs: list[Reference],
           sqls: list[str]) -> int | None:
    """Index of the first reference the result matches, else None."""
    for i, (ref, sql) in enumerate(zip(refs, sqls, strict=True)):
        if not ref.error and M.execution_match(columns, rows, ref.columns, ref.rows,
                                               ordered=M.is_ordered(sql),
                                               value_columns=spec.value_columns):
            return i
    return None


def holds_on_variants(spec: TurnSpec, sql: str, variants: list[Warehouse]) -> bool:
    """Whether the predicted SQL matches a reference on every seeded variant warehouse."""
    for wh in variants:
        refs = [reference_result(wh, s) for s in spec.sqls]
        try:
            res = wh.execute(sql)
        except QueryError:
            return False
        if _match(spec, list(res.columns), list(res.rows), refs, spec.sqls) is None:
            return False
    return True


def score_turn(spec: TurnSpec, r: TurnResult, ref: Reference | Expected | None, catalog,
               seconds: float, variants: list[Warehouse] | None = None,
               known: list[Any] | None = None) -> dict[str, Any]:
    """One turn's record: what happened, and its metrics where the turn defines them."""
    expected = ref if isinstance(ref, Expected) or ref is None else Expected(
        [ref], [spec.answer or ""])
    outcome = outcome_of(r)
    rec: dict[str, Any] = {
        "question": spec.question, "expect": spec.expect, "outcome": outcome, "state": r.state,
        "ok": outcome == spec.expect, "sql": r.sql, "answer": r.answer,
        "clarification": r.clarification, "options": list(r.options),
        "columns": list(r.columns), "row_count": len(r.rows), "truncated": r.truncated,
        "llm_calls": r.llm_calls, "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens, "seconds": round(seconds, 4),
        "error_kind": r.error_kind, "trace_id": r.trace_id, "verification": r.verification,
        "reference_sql": spec.sql, "reference_answer": spec.answer,
        "rows": jsonable([list(row) for row in r.rows[:SHOWN_ROWS]]),
    }
    if outcome == "answer":
        chart = chart_for_result(r)
        if chart is not None:  # report.write moves the PNG into its own file beside the report
            rec["chart"] = {"kind": chart.spec.kind, "alt": chart.alt,
                            "png_base64": base64.b64encode(chart.png).decode("ascii")}
    said = r.answer if outcome in ("answer", "refuse") else (r.clarification or r.answer)
    reference_text = spec.answer
    if spec.expect == "answer" and expected is not None:
        answered = outcome == "answer"
        cols, rows = (list(r.columns), list(r.rows)) if answered else ([], [])
        hit = _match(spec, cols, rows, expected.refs, spec.sqls) if answered else None
        k = hit or 0
        chosen, sql = expected.refs[k], spec.sqls[k]
        reference_text = expected.answers[k]
        derived = M.derive_values(chosen.columns, chosen.rows, spec.value_columns,
                                  ordered=M.is_ordered(sql)) if not chosen.error else []
        values = spec.values if (spec.values and k == 0) else derived
        rec_sql = M.sql_recall(r.sql if answered else None, sql, catalog)
        value, missed = M.value_recall(values, cols, rows)
        check = M.check_answer(said if answered else "", spec.question, values,
                               chosen.columns, chosen.rows,
                               [*(known or []), *M.sql_literals(sql)])
        match = None
        if not expected.error:
            match = hit is not None
            if match and variants:
                match = holds_on_variants(spec, r.sql or "", variants)
        rec.update(
            reference_sql=sql, reference_answer=reference_text, values=values,
            reference_columns=list(chosen.columns),
            table_recall=rec_sql.table_recall, column_recall=rec_sql.column_recall,
            table_precision=rec_sql.table_precision,
            column_precision=rec_sql.column_precision,
            missing_tables=rec_sql.missing_tables, missing_columns=rec_sql.missing_columns,
            value_recall=value, answer_value_recall=check.value_recall if answered else (
                0.0 if values else None),
            missing_values=missed, answer_missing_values=check.missed,
            unbacked_figures=check.unbacked,
            answer_ok=answered and check.ok,
            execution_match=match, matched_reference=hit,
            reference_error=expected.error,
            stale=stale_values(spec, expected.refs[0]) if spec.values else [],
        )
    if spec.expect == "clarify" and spec.options:
        rec["options_ok"] = set(spec.options) <= set(r.options)
    if reference_text and spec.expect in ("answer", "refuse"):
        rec.update(M.rouge(said, reference_text) or {})
    return rec


def _case_metrics(turns: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("table_recall", "column_recall", "table_precision", "column_precision",
                "value_recall", "answer_value_recall", "rouge1", "rouge2", "rougeL"):
        out[key] = M.mean(t.get(key) for t in turns)
    matches = [t["execution_match"] for t in turns if t.get("execution_match") is not None]
    out["execution_accuracy"] = (sum(matches) / len(matches)) if matches else None
    answers = [t["answer_ok"] for t in turns if "answer_ok" in t]
    out["answer_accuracy"] = (sum(answers) / len(answers)) if answers else None
    return out


def run_case(case: Case, deps: Deps, thread_id: str,
             on_turn: Callable[[int, Expected | None], None] | None = None,
             variants: list[Warehouse] | None = None) -> dict[str, Any]:
    """Send a case's turns to the core in one thread and score them."""
    turns: list[dict[str, Any]] = []
    error = ""
    known: list[Any] = [deps.warehouse.catalog.as_of] if deps.warehouse.catalog.as_of else []
    if deps.today:
        known.append(deps.today)
    try:
        for i, spec in enumerate(case.turns):
            expected = expected_for(spec, deps.warehouse)
            if on_turn:
                on_turn(i, expected)
            t0 = time.perf_counter()
            r = run_turn(deps, thread_id, spec.question, user="eval")
            seconds = time.perf_counter() - t0
            turns.append(score_turn(spec, r, expected, deps.warehouse.catalog, seconds,
                                    variants, known))
    except Exception as exc:  # noqa: BLE001 - a harness bug must cost one case, not the run
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}"
    metrics = _case_metrics(turns)
    if error:  # the turns that never ran score zero where they would have scored
        for spec in case.turns[len(turns):]:
            if spec.expect == "answer":
                for k in ("table_recall", "column_recall", "execution_accuracy",
                          "answer_accuracy"):
                    metrics[k] = 0.0
    last = next((t for t in reversed(turns) if t.get("sql")), turns[-1] if turns else {})
    stale = [s for t in turns for s in t.get("stale", [])]
    return {
        "id": case.id, "tags": case.tags, "expect": case.expect,
        "outcome": "/".join(t["outcome"] for t in turns) or "error",
        "outcome_ok": bool(turns) and not error and all(t["ok"] for t in turns),
        "passed": bool(turns) and not error and all(
            t["ok"] and t.get("execution_match") is not False and t.get("answer_ok", True)
            for t in turns),
        "metrics": metrics,
        "sql": last.get("sql"), "reference_sql": last.get("reference_sql"),
        "answer": (turns[-1].get("answer") or turns[-1].get("clarification")) if turns else None,
        "reference_answer": (turns[-1].get("reference_answer") if turns else None)
        or case.turns[-1].answer or case.turns[-1].clarification,
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
    s["ci95"] = {m: stats.interval(per_case(cases, m)) for m in INTERVAL_METRICS}
    repeated = [c["repeats"] for c in cases if c.get("repeats")]
    if repeated:
        s["flip_rate"] = statistics.fmean(r["flip_rate"] for r in repeated)
        s["flipped_cases"] = sum(r["flip_rate"] > 0 for r in repeated)
    s["failed_turns"] = sum(t["outcome"] == "fail" for t in turns)
    s["errors"] = sum(bool(c["error"]) for c in cases)
    s["stale_cases"] = sum(bool(c["stale"]) for c in cases)
    s.update(verify_summary(turns))
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


def verify_summary(turns: list[dict[str, Any]]) -> dict[str, Any]:
    """How often verify rejected an answer's first draft, how often it withheld the summary,
    and how often the withheld turn's result (the values posted instead) was right."""
    checked = [t for t in turns if t.get("verification")]
    rejected = [t for t in checked if t["verification"] in ("revised", "replaced")]
    replaced = [t for t in checked if t["verification"] == "replaced"]
    right = [t for t in replaced if t.get("execution_match") is not None]
    return {
        "verify_checked": len(checked),
        "verify_rejected": len(rejected) / len(checked) if checked else None,
        "verify_replaced": len(replaced) / len(checked) if checked else None,
        "verify_replacement_right": (sum(bool(t["execution_match"]) for t in right) / len(right)
                                     if right else None),
    }


def by_tag(cases: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    tags = sorted({t for c in cases for t in c["tags"]})
    return {tag: summarize([c for c in cases if tag in c["tags"]]) for tag in tags}


def run_cases(cases: list[Case], warehouse: Warehouse, store: Store,
              llm_for: Callable[[Case], LLM], *, limits: Limits | None = None,
              today: date | None = None, concurrency: int = 4,
              progress: Progress | None = None, run_id: str | None = None,
              variants: list[Warehouse] | None = None, repeat: int = 1,
              interrupted: list[bool] | None = None
              ) -> tuple[list[dict[str, Any]], float]:
    """Run every case (concurrently) and return (case records in input order, wall seconds).

    `llm_for(case)` gives the model a case talks to: one shared client, or the case's own
    GoldLLM; a model with a `turn` attribute is told which turn is being asked (and one
    with `expected_answer` / `expected` the reference answer / results, for replays).
    With `repeat` > 1 each case runs that many times (in threads of their own); the record
    is the first run's, with `repeats` giving every run's pass and the case's flip rate.
    On Ctrl-C the queued cases are cancelled, the running ones finish, and `interrupted[0]`
    is set True.
    """
    run_id = run_id or uuid.uuid4().hex[:8]
    limits = limits or Limits()
    repeat = max(1, repeat)

    def one(case: Case, k: int) -> dict[str, Any]:
        llm = llm_for(case)
        deps = Deps(llm=llm, warehouse=warehouse, store=store, limits=limits,
                    today=case.today or today or DEFAULT_TODAY)

        def on_turn(i: int, expected: Expected | None) -> None:
            if hasattr(llm, "turn"):
                llm.turn = i
            if hasattr(llm, "expected_answer"):
                llm.expected_answer = expected.answers[0] if expected else None
            if hasattr(llm, "expected"):
                llm.expected = expected

        suffix = f"-r{k}" if repeat > 1 else ""
        return run_case(case, deps, f"eval-{run_id}-{case.id}{suffix}", on_turn, variants)

    t0 = time.perf_counter()
    runs: dict[int, list[dict[str, Any] | None]] = {i: [None] * repeat
                                                    for i in range(len(cases))}
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="eval")
    futures = {pool.submit(one, case, k): (i, k)
               for k in range(repeat) for i, case in enumerate(cases)}
    try:
        for fut in as_completed(futures):
            i, k = futures[fut]
            rec = fut.result()
            runs[i][k] = rec
            if progress and k == 0:
                progress.advance(ok=rec["passed"])
    except KeyboardInterrupt:
        if interrupted is not None:
            interrupted[:] = [True]
        pool.shutdown(wait=True, cancel_futures=True)  # the running cases finish
        for fut, (i, k) in futures.items():
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                runs[i][k] = fut.result()
    finally:
        pool.shutdown(wait=True)
    if progress:
        progress.close()
    records = []
    for i in range(len(cases)):
        done = [r for r in runs[i] if r is not None]
        if runs[i][0] is None:
            continue
        rec = runs[i][0]
        if repeat > 1:
            passed = [r["passed"] for r in done]
            n_pass = sum(passed)
            rec["repeats"] = {"runs": len(passed), "passed": passed,
                              "pass_share": n_pass / len(passed),
                              "flip_rate": min(n_pass, len(passed) - n_pass) / len(passed)}
        records.append(rec)
    return records, time.perf_counter() - t0
