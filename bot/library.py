"""The verified-query library at the edges: feedback proposes, reviewers verify, export gates.

Shared by the Slack listeners, `fundbot verified ...` and the MCP feedback tool, so each path
follows the same rules: a thumbs-up proposes the answer's question and SQL; only a named
reviewer verifies (and only SQL that runs against today's warehouse); a thumbs-down with a
comment on an answer that came from a verified query flags that query until it is reviewed.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from states.ports import QueryError, Trace, VerifiedLibrary, VerifiedQuery, Warehouse
from states.verified import slots_for

EXPORT_TAG = "verified"


class LibraryError(ValueError):
    """A library action that cannot be done; the message says why, in one line."""


def _question_of(store: Any, trace: Trace) -> str:
    """The question the turn answered: after a clarification the trace holds the reply, the
    conversation's turn the original question."""
    load = getattr(store, "load", None)
    if load is not None:
        for turn in reversed(load(trace.thread_id).history):
            if turn.trace_id == trace.trace_id:
                return turn.question
    return trace.question


def proposal_from_trace(store: Any, warehouse: Warehouse, trace_id: str,
                        user: str) -> VerifiedQuery | None:
    """Propose the question and SQL of an answered turn; None when the turn had no SQL answer
    or was itself answered from a verified query (that query is the library's already)."""
    trace = store.get_trace(trace_id)
    if trace is None or trace.final_state != "answered" or trace.verified_query is not None:
        return None
    sql = next((a.sql for a in reversed(trace.sql_attempts) if a.ok), None)
    if not sql:
        return None
    question = _question_of(store, trace)
    entities, _ = warehouse.resolve(question)
    return store.propose_verified(VerifiedQuery(
        id=0, question=question, sql=sql, slots=slots_for(sql, entities), status="proposed",
        source="feedback", trace_id=trace_id, answer=trace.answer[:2000], proposed_by=user))


def record_feedback(store: Any, warehouse: Warehouse, trace_id: str, user: str, vote: str,
                    comment: str | None = None) -> VerifiedQuery | None:
    """Save a vote; a thumbs-up proposes the turn's query (returned), a thumbs-down with a
    comment on a verified answer flags its verified query for review."""
    store.save_feedback(trace_id, user, vote, comment=comment)
    if vote in ("up", 1, "1", "+1"):
        return proposal_from_trace(store, warehouse, trace_id, user)
    if comment:
        trace = store.get_trace(trace_id)
        if trace is not None and trace.verified_query is not None:
            store.flag_verified(trace.verified_query,
                                f"disputed by {user}: {comment.strip()[:300]}")
    return None


def check_sql(warehouse: Warehouse, sql: str) -> None:
    """LibraryError unless the SQL runs against the warehouse now."""
    try:
        warehouse.execute(sql)
    except QueryError as exc:
        raise LibraryError(f"the SQL does not run against the warehouse: {exc.kind}: "
                           f"{exc.message}") from None


def verify(library: VerifiedLibrary, warehouse: Warehouse, query_id: int,
           by: str) -> VerifiedQuery:
    """Verify as reviewer `by`, after checking the SQL still runs."""
    q = library.get_verified(query_id)
    if q is None:
        raise LibraryError(f"no verified query {query_id}")
    check_sql(warehouse, q.sql)
    return library.review_verified(query_id, "verified", by)


def retire(library: VerifiedLibrary, query_id: int, by: str) -> VerifiedQuery:
    if library.get_verified(query_id) is None:
        raise LibraryError(f"no verified query {query_id}")
    return library.review_verified(query_id, "retired", by)


def add(library: VerifiedLibrary, warehouse: Warehouse, question: str, sql: str,
        by: str) -> VerifiedQuery:
    """An operator's own question and SQL, verified on entry with the operator as reviewer."""
    if not question.strip() or not sql.strip():
        raise LibraryError("a verified query needs a question and its SQL")
    check_sql(warehouse, sql)
    entities, _ = warehouse.resolve(question)
    q = library.propose_verified(VerifiedQuery(
        id=0, question=question.strip(), sql=sql.strip(),
        slots=slots_for(sql.strip(), entities), source="operator", proposed_by=by))
    return library.review_verified(q.id, "verified", by)


def check_all(library: VerifiedLibrary, warehouse: Warehouse) -> list[tuple[int, str]]:
    """Run every usable verified query; flag those that fail. [(id, reason)] newly flagged."""
    flagged = []
    for q in [q for q in library.list_verified("verified") if q.usable]:
        try:
            check_sql(warehouse, q.sql)
        except LibraryError as exc:
            library.flag_verified(q.id, str(exc))
            flagged.append((q.id, str(exc)))
    return flagged


# ------------------------------------------------------------------------ export


def _template(columns: list[str]) -> str:
    """A reference-answer template naming every result column the template syntax can."""
    fields = [f"{c}: {{{c}}}" for c in columns if c.isidentifier()]
    return "[[" + ", ".join(fields) + "]]" if fields else "{n_rows} rows"


def export_cases(library: VerifiedLibrary, warehouse: Warehouse, path: str | Path) -> int:
    """Write the usable verified queries as evaluation cases (eval/cases.jsonl format)."""
    from eval.cases import case_from_dict, dump_cases
    from eval.make_cases import derive

    cases = []
    for q in library.list_verified("verified"):
        if not q.usable:
            continue
        try:
            columns = warehouse.execute(q.sql).columns
        except QueryError:
            continue  # broken since its last use: `fundbot verified check` flags it
        case = case_from_dict({
            "id": f"verified-{q.id}", "tags": [EXPORT_TAG], "expect": "answer",
            "question": q.question, "sql": q.sql, "answer_template": _template(columns),
            # relative wording ("this year") is read as of the day the query was verified
            "today": (q.verified_at or q.proposed_at)[:10] or date.today().isoformat(),
            "notes": f"verified by {q.verified_by} at {q.verified_at}; trace {q.trace_id}",
        }, f"verified query {q.id}")
        if not derive(case, warehouse, update=True):  # fills values and answer from the data
            cases.append(case)
    dump_cases(cases, path)
    return len(cases)


def summary(q: VerifiedQuery) -> dict[str, Any]:
    """One line's worth of a query for `fundbot verified list --json`."""
    return {"id": q.id, "status": q.status, "question": q.question, "broken": q.broken,
            "verified_by": q.verified_by, "swappable": [s.kind for s in q.slots if s.swappable]}


def dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)
