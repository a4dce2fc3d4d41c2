"""The finite-state machine, declared once as data, and the driver that runs one turn.

The machine decides what may follow; the state modules decide what happened. The
driver is an explicit loop: ``event = handler(ctx); ctx.trigger(event)``.
"""

from __future__ import annotations

import copy
import enum
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from transitions import Machine, MachineError

from states import clarify, debug, execute, interpret, replace, understand, verify
from states.context import TurnContext
from states.ports import (
    CURRENT_TURN,
    LLM,
    Conversation,
    Limits,
    Pending,
    Store,
    StoreError,
    Trace,
    Turn,
    TurnResult,
    VerifiedLibrary,
    Warehouse,
)

log = logging.getLogger("fundbot.turn")  # one INFO line per turn; its steps at DEBUG
# transitions logs each state's callbacks at INFO, several lines a turn; our turn line says it
logging.getLogger("transitions.core").setLevel(logging.WARNING)


class S(enum.StrEnum):
    UNDERSTAND = "understand"
    CLARIFY = "clarify"
    EXECUTE = "execute"
    DEBUG = "debug"
    INTERPRET = "interpret"
    VERIFY = "verify"
    REPLACE = "replace"
    ANSWERED = "answered"
    FAILED = "failed"


# trigger, source, dest, guard (a TurnContext method). Order matters: for one trigger
# and source, transitions takes the first row whose guard passes.
TRANSITIONS: list[tuple[str, S, S, str | None]] = [
    ("sql", S.UNDERSTAND, S.EXECUTE, None),
    ("ask", S.UNDERSTAND, S.CLARIFY, "can_clarify"),
    ("ask", S.UNDERSTAND, S.FAILED, None),  # clarification rounds spent
    ("refuse", S.UNDERSTAND, S.ANSWERED, None),  # out of scope: a polite answer, no SQL
    ("fail", S.UNDERSTAND, S.FAILED, None),
    ("reply", S.CLARIFY, S.UNDERSTAND, None),
    ("rows", S.EXECUTE, S.INTERPRET, None),
    ("empty", S.EXECUTE, S.DEBUG, "can_debug_empty"),
    ("empty", S.EXECUTE, S.INTERPRET, None),
    ("error", S.EXECUTE, S.DEBUG, "can_debug"),
    ("error", S.EXECUTE, S.FAILED, None),  # debug attempts spent
    ("sql", S.DEBUG, S.EXECUTE, None),
    ("keep", S.DEBUG, S.INTERPRET, None),  # the model says the empty result is right
    ("fail", S.DEBUG, S.FAILED, None),
    ("done", S.INTERPRET, S.VERIFY, None),
    ("ok", S.VERIFY, S.ANSWERED, None),
    ("reject", S.VERIFY, S.INTERPRET, "can_reinterpret"),  # once, told what failed
    ("reject", S.VERIFY, S.REPLACE, None),  # the rows themselves, summary withheld
    ("done", S.REPLACE, S.ANSWERED, None),
]

TERMINAL = {S.ANSWERED, S.FAILED}

HANDLERS = {
    S.UNDERSTAND: understand.run,
    S.CLARIFY: clarify.run,
    S.EXECUTE: execute.run,
    S.DEBUG: debug.run,
    S.INTERPRET: interpret.run,
    S.VERIFY: verify.run,
    S.REPLACE: replace.run,
}


class Flow:
    """The machine's model: its current state and the guards, which read the turn's context.

    Kept apart from TurnContext because transitions binds trigger methods (sql, fail...)
    onto its model, and those names are the context's fields.
    """

    state: str

    def __init__(self, ctx: TurnContext) -> None:
        self.ctx = ctx

    def can_debug(self) -> bool:
        return self.ctx.debug_attempts < self.ctx.deps.limits.debug_attempts

    def can_debug_empty(self) -> bool:
        return not self.ctx.empty_debugged and self.can_debug()

    def can_reinterpret(self) -> bool:
        return self.ctx.verify_rounds <= verify.REINTERPRET_ROUNDS

    def can_clarify(self) -> bool:
        pending = self.ctx.conv.pending
        return (pending.rounds if pending else 0) < self.ctx.deps.limits.clarify_rounds


def _config(initial: S) -> dict:
    return {
        "states": [s.value for s in S],
        "transitions": [
            {"trigger": t, "source": src.value, "dest": dst.value,
             **({"conditions": guard} if guard else {})}
            for t, src, dst, guard in TRANSITIONS
        ],
        "initial": initial.value,
        "auto_transitions": False,
        "ignore_invalid_triggers": False,
    }


def build_machine(model: object, initial: S = S.UNDERSTAND) -> Machine:
    """Attach the fundbot machine to ``model`` (which provides the guard methods)."""
    return Machine(model=model, **_config(initial))


def mermaid() -> str:
    """The machine as a Mermaid state diagram, drawn by transitions' mermaid engine."""
    from transitions.extensions import GraphMachine

    class _Model:  # the guards are only named in the drawing, never called
        pass

    model = _Model()
    GraphMachine(model=model, graph_engine="mermaid", show_conditions=True,
                 title="fundbot", **_config(S.UNDERSTAND))
    drawing = model.get_graph().draw(None)
    # drop the highlight styling of the "current" state: a static diagram has none
    return "\n".join(line for line in drawing.splitlines()
                     if not line.strip().startswith(("classDef", "Class "))).strip() + "\n"


@dataclass
class Deps:
    """What the core is handed: its ports and its bounds."""

    llm: LLM
    warehouse: Warehouse
    store: Store
    limits: Limits = field(default_factory=Limits)
    today: date | None = None
    library: VerifiedLibrary | None = None  # verified queries (states/verified.py); None: off


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def run_turn(deps: Deps, thread_id: str, text: str, user: str | None = None,
             trace_id: str | None = None,
             progress: Callable[[str], None] | None = None) -> TurnResult:
    """Answer one message in a thread. Never raises for bad input or outside faults.

    The store's turn lock (when it has one) holds the thread from load to final save, so two
    workers or processes never interleave one thread's turns. `trace_id` names the turn's
    trace (the Slack inbox passes one derived from the event, to recognise a finished turn).
    `progress`, if given, is told each state's name as the state starts (Slack shows them)."""
    lock = getattr(deps.store, "turn_lock", None)
    try:
        with lock(thread_id) if lock is not None else nullcontext():
            return _run_turn(deps, thread_id, text, user, trace_id, progress)
    except StoreError as err:  # the store is unusable: say so in one line, answer nothing
        log.error("%s", err.message)
        return TurnResult(thread_id=thread_id, state="failed", error_kind="store",
                          answer="I can't reach my conversation store, so I didn't answer: "
                                 f"{err.message}")


def _run_turn(deps: Deps, thread_id: str, text: str, user: str | None,
              trace_id: str | None,
              progress: Callable[[str], None] | None = None) -> TurnResult:
    t_start = time.perf_counter()
    conv = deps.store.load(thread_id)
    load_ms = (time.perf_counter() - t_start) * 1000
    trace = Trace(trace_id=trace_id or uuid.uuid4().hex[:16], thread_id=thread_id,
                  question=text if len(text) <= 2000 else text[:2000] + "…", started_at=_now())
    resuming = conv.status == "clarify" and conv.pending is not None
    waiting = copy.deepcopy(conv.pending) if resuming else None
    ctx = TurnContext(deps=deps, conv=conv, text=text, trace=trace, user=user,
                      question=conv.pending.question if resuming else text)
    if conv.status not in ("idle", "clarify"):
        trace.error = f"previous turn ended in state {conv.status!r} without finishing"
    ctx.timings["store"] = round(load_ms, 3)  # store reads and writes, for the benchmarks
    flow = Flow(ctx)
    build_machine(flow, S.CLARIFY if resuming else S.UNDERSTAND)
    turn = CURRENT_TURN.set(trace.trace_id)  # the warehouse tags this turn's queries with it
    try:
        _drive(flow, progress)
    except Exception as exc:  # a bug must not leave the thread stuck
        ctx.fail("internal", "Something went wrong on my side while answering. "
                 "Please ask again; if it keeps happening, tell the fundbot maintainers "
                 f"(trace {trace.trace_id}).", detail=f"{type(exc).__name__}: {exc}")
        flow.state = S.FAILED.value
    finally:
        CURRENT_TURN.reset(turn)
    result = _finish(ctx, S(flow.state), t_start, waiting)
    log.info("turn thread=%s state=%s ms=%.0f calls=%d trace=%s%s", thread_id, result.state,
             result.timings_ms.get("total", 0), result.llm_calls, result.trace_id,
             f" error={result.error_kind}" if result.error_kind else "")
    return result


def _drive(flow: Flow, progress: Callable[[str], None] | None = None) -> None:
    ctx = flow.ctx
    while S(flow.state) not in TERMINAL:
        state = S(flow.state)
        if progress is not None:
            progress(state.value)
        t0 = time.perf_counter()
        event = HANDLERS[state](ctx)
        ms = (time.perf_counter() - t0) * 1000
        ctx.add_step(state.value, ms, event or "wait")
        log.debug("thread=%s step=%s event=%s ms=%.1f", ctx.conv.thread_id, state.value,
                  event or "wait", ms)
        if event is None:  # clarify: the thread waits for the user
            return
        try:
            flow.trigger(event)
        except MachineError as exc:  # a handler asked for a move the machine forbids
            raise RuntimeError(f"illegal transition {event!r} from {state.value}") from exc
        t1 = time.perf_counter()
        try:  # every step recorded, so a crash leaves a trail; a failed write costs only that
            ctx.deps.store.save_trace(ctx.trace)
        except StoreError as err:
            log.warning("trace step not saved: %s", err.message)
        ctx.time("store", t1)


# Failures that say nothing about the open question: the thread keeps waiting on it.
KEEPS_CLARIFICATION = {"empty", "too_long", "llm", "internal"}


def _finish(ctx: TurnContext, state: S, t_start: float, waiting: Pending | None) -> TurnResult:
    conv: Conversation = ctx.conv
    final = "clarify" if state == S.CLARIFY else state.value
    if state == S.FAILED and ctx.answer is None:  # a guard stopped the turn
        if ctx.clarification:
            ctx.error_kind, ctx.answer = "clarify", clarify.exhausted_message(ctx)
            ctx.clarification, ctx.options = None, []
        else:
            ctx.error_kind, ctx.answer = "sql", debug.exhausted_message(ctx)
    if final == "failed" and waiting is not None and ctx.error_kind in KEEPS_CLARIFICATION:
        conv.status, conv.pending = "clarify", waiting  # as it was before this message
    elif final != "clarify":
        conv.status, conv.pending = "idle", None
    result = ctx.result
    conv.history.append(Turn(
        question=ctx.question, state=final, sql=ctx.sql, answer=ctx.answer or ctx.clarification,
        columns=list(result.columns) if result else [], row_count=len(result.rows) if result else 0,
        trace_id=ctx.trace.trace_id, at=_now(),
    ))
    del conv.history[:-50]  # the thread keeps its recent past; traces keep everything
    ctx.trace.final_state = final
    ctx.trace.answer = ctx.answer or ctx.clarification or ""
    t1 = time.perf_counter()
    warning = _final_save(ctx.deps.store, ctx.trace, conv)
    ctx.time("store", t1)
    # measured after the last save, so "own" counts every write the turn makes
    total_ms = (time.perf_counter() - t_start) * 1000
    timings = dict(ctx.timings)
    timings["llm"] = round(sum(c.ms for c in ctx.trace.llm_calls), 3)
    timings["total"] = round(total_ms, 3)
    timings["own"] = round(total_ms - timings["llm"], 3)
    if warning and ctx.answer:  # every edge shows the answer; so the warning goes with it
        ctx.answer = f"{ctx.answer}\n\n⚠️ {warning}"
    elif warning and ctx.clarification:
        ctx.clarification = f"{ctx.clarification}\n\n⚠️ {warning}"
    return TurnResult(
        thread_id=conv.thread_id, state=final, answer=ctx.answer, sql=ctx.sql,
        columns=list(result.columns) if result else [], rows=list(result.rows) if result else [],
        truncated=bool(result and result.truncated), clarification=ctx.clarification,
        options=list(ctx.options), trace_id=ctx.trace.trace_id,
        llm_calls=len(ctx.trace.llm_calls),
        prompt_tokens=sum(c.prompt_tokens for c in ctx.trace.llm_calls),
        completion_tokens=sum(c.completion_tokens for c in ctx.trace.llm_calls),
        timings_ms=timings, error_kind=ctx.error_kind, refused=ctx.refused,
        as_of=ctx.deps.warehouse.catalog.as_of, verification=ctx.verification,
        question=ctx.question, chart_hint=ctx.chart_hint,
        verified_query=ctx.trace.verified_query,
        warning=warning,
    )


def _final_save(store: Store, trace: Trace, conv: Conversation) -> str | None:
    """Save the trace and the conversation, trying once more if the store fails; if it still
    fails, the answer is delivered anyway and the returned warning says what was lost."""
    for attempt in (1, 2):
        try:
            store.save_trace(trace)
            store.save(conv)
            return None
        except StoreError as err:
            log.warning("final save failed (attempt %d): %s", attempt, err.message)
            error = err
    return ("This answer could not be saved, so a follow-up question won't know about it "
            f"({error.message})")
