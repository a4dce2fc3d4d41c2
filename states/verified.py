"""Verified queries in a turn: reviewed examples for the understand prompt, and a direct answer.

A question is compared with the library's questions after its names are masked (the resolver's
entities become <company>, <gp>, <fund>) and its words are mapped to a small vocabulary of
intents ("put into", "deployed", "invested" all read as `invest`; "how many" as `count`).
Retrieval is BM25 (bm25s) over those intent words. A direct answer needs more than similarity:

- the same intent words exactly (a different metric, time window, grouping, ordering or number
  does not match; words outside the vocabulary must be equal too);
- the same kinds and count of names, and every name that differs is a literal of the SQL
  (a slot: its value, or its key compared with an id column), so it can be swapped;
- a question with a relative time window ("this year") whose SQL holds dates is never run
  again verbatim: those dates were right on the day it was verified;
- the swapped SQL passes the guard against today's catalogue; a query whose SQL no longer does
  (or that fails when run) is flagged broken in the library and never used until re-verified.

Then the verified SQL runs with the new names and the turn skips the SQL-writing LLM call.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp

from states.context import TurnContext
from states.guard import DIALECT, check
from states.ports import Entity, QueryError, Slot, VerifiedLibrary, VerifiedQuery

TOP_K = 3  # examples offered to the understand prompt

# Multi-word phrases first (longest first), then single words. "" drops the words: they say
# nothing about what is asked ("so far", "right now": the newest data is the default anyway).
# "today" stays: "invested today" is a window, not the default.
PHRASES: dict[tuple[str, ...], str] = {
    ("how", "many"): "count", ("number", "of"): "count", ("put", "into"): "invest",
    ("put", "in"): "invest", ("this", "year"): "this_year", ("last", "year"): "last_year",
    ("this", "quarter"): "this_quarter", ("last", "quarter"): "last_quarter",
    ("this", "month"): "this_month", ("last", "month"): "last_month",
    ("year", "to", "date"): "this_year", ("so", "far"): "", ("to", "date"): "",
    ("right", "now"): "", ("at", "the", "moment"): "", ("in", "total"): "",
    ("as", "of", "now"): "", ("most", "recent"): "latest",
    ("still", "operating"): "status", ("still", "active"): "status",
}

_SYNONYMS = {
    "invest": "invest invested investing investment investments invests put puts putting deploy "
              "deployed deploying deploys spend spent spending backed back backing wrote write "
              "deal deals check checks",
    "value": "worth value valued valuation valuations fair mark marked marks nav valuable",
    "proceeds": "proceeds realized realised realize realise",
    "return": "return returns returned",
    "exit": "exit exits exited sold sell sale sales",
    "count": "count number",
    "first": "first earliest initial initially",
    "latest": "latest newest",
    "top": "top most largest biggest highest best max maximum",
    "bottom": "least smallest lowest worst min minimum fewest",
    "avg": "average mean avg typical",
    "group": "each per every by breakdown broken split",
    "lead": "lead led leads leading",
    "sector": "sector sectors industry industries vertical verticals",
    "hq": "headquartered headquarters hq based located where",
    "founded": "founded founding established started incorporated",
    "when": "when date dates",
    "moic": "multiple multiples moic tvpi",
    "committed": "committed commitment commitments raised raise",
    "person": "who whom gp gps partner partners",
    "company": "company companies startup startups business businesses",
    "fund": "fund funds vehicle vehicles",
    "hold": "hold holds holding holdings held",
    "status": "status operating active alive",
    "round": "round rounds",
}
_FILLER = """
a an the of in into to for on at with from and or what whats how much did do does done we our
ours us i me my you your is was are were be been being has have had so tell please show give
can could would will know let up total overall altogether combined amount money cash dollars
dollar usd capital stake position ever all s which currently current now presently
make made get
"""
WORDS: dict[str, str] = {w: concept for concept, ws in _SYNONYMS.items() for w in ws.split()}
WORDS.update(dict.fromkeys(_FILLER.split(), ""))
_NUMBERS = {w: str(i) for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}
RELATIVE = {"this_year", "last_year", "this_quarter", "last_quarter", "this_month", "last_month"}
_WORD = re.compile(r"ent_[a-z]+|[a-z0-9]+")
_DATE_LITERAL = re.compile(r"'\d{4}-\d{2}-\d{2}'|\bDATE\s*'", re.IGNORECASE)


# ------------------------------------------------------------------ question -> intent


def mask(question: str, entities: list[Entity]) -> str:
    """The question with each resolved name replaced by ent_<kind>."""
    text = question
    for e in sorted(entities, key=lambda e: -len(e.mention)):
        if e.mention:
            text = re.sub(rf"(?<!\w){re.escape(e.mention)}(?!\w)", f" ent_{e.kind} ", text,
                          flags=re.IGNORECASE)
    return text


def _stem(w: str) -> str:
    if w.startswith("ent_") or w.isdigit() or len(w) <= 4:
        return w
    for suffix, repl in (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            return w[: -len(suffix)] + repl
    return w


def intent_words(question: str, entities: list[Entity]) -> list[str]:
    """The masked question as intent words, in order (with repeats), for retrieval and match."""
    raw = [_NUMBERS.get(w, w) for w in _WORD.findall(mask(question, entities).lower()
                                                     .replace("'", ""))]
    out: list[str] = []
    i = 0
    longest = max(len(p) for p in PHRASES)
    while i < len(raw):
        for n in range(min(longest, len(raw) - i), 1, -1):
            concept = PHRASES.get(tuple(raw[i:i + n]))
            if concept is not None:
                if concept:
                    out.append(concept)
                i += n
                break
        else:
            w = raw[i]
            concept = WORDS.get(w, WORDS.get(_stem(w), _stem(w)))
            if concept:
                out.append(concept)
            i += 1
    return out


def intent(question: str, entities: list[Entity]) -> frozenset[str]:
    return frozenset(intent_words(question, entities))


# ------------------------------------------------------------------ SQL slots and swaps


def _key_literal(node: exp.Literal) -> bool:
    """A number or string compared with an id column (company_id = 17, fund_id IN (2, 3))."""
    parent = node.parent
    if isinstance(parent, exp.Tuple):
        parent = parent.parent
    if not isinstance(parent, (exp.EQ, exp.In)):
        return False
    other = parent.this if isinstance(parent, exp.In) else (
        parent.expression if parent.this is node else parent.this)
    return isinstance(other, exp.Column) and other.name.lower().endswith("_id")


def _parse(sql: str) -> exp.Expr | None:
    try:
        return sqlglot.parse_one(sql, read=DIALECT)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError):
        return None


def slots_for(sql: str, entities: list[Entity]) -> list[Slot]:
    """The question's names as slots; those whose value or key is a literal of `sql` swap."""
    tree = _parse(sql)
    strings: set[str] = set()
    keys: set[str] = set()
    for node in (tree.find_all(exp.Literal) if tree is not None else []):
        if node.is_string:
            strings.add(node.this)
        if _key_literal(node):
            keys.add(node.this)
    return [Slot(kind=e.kind, value=e.value, key=e.key, mention=e.mention, table=e.table,
                 column=e.column,
                 swappable=e.value in strings or (e.key is not None and str(e.key) in keys))
            for e in entities]


def _pairs(slots: list[Slot], entities: list[Entity]) -> list[tuple[Slot, Entity]] | None:
    """Slots paired with the new names of the same kind, in question order; None if they do
    not pair up or a name that is not a slot of the SQL would change."""
    if Counter(s.kind for s in slots) != Counter(e.kind for e in entities):
        return None
    pairs = []
    for kind in {s.kind for s in slots}:
        old = [s for s in slots if s.kind == kind]
        new = [e for e in entities if e.kind == kind]
        if {str(s.key) for s in old} == {str(e.key) for e in new}:  # same names, maybe reordered
            by_key = {str(e.key): e for e in new}
            new = [by_key[str(s.key)] for s in old]
        for s, e in zip(old, new, strict=True):
            if str(s.key) != str(e.key) and not s.swappable:
                return None
            pairs.append((s, e))
    return pairs


def swap(sql: str, slots: list[Slot], entities: list[Entity]) -> str | None:
    """`sql` written for `slots`, rewritten for `entities`; None when they cannot be swapped."""
    pairs = _pairs(slots, entities)
    if pairs is None:
        return None
    changes = [(s, e) for s, e in pairs if str(s.key) != str(e.key) or s.value != e.value]
    if not changes:
        return sql
    values = {s.value: e.value for s, e in changes}
    keys = {str(s.key): e.key for s, e in changes if s.key is not None and e.key is not None}
    tree = _parse(sql)
    if tree is None:
        return None

    def replace(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Literal):
            return node
        if _key_literal(node) and node.this in keys:
            new = keys[node.this]
            return exp.Literal.string(str(new)) if node.is_string else exp.Literal.number(new)
        if node.is_string and node.this in values:
            return exp.Literal.string(values[node.this])
        return node

    return tree.transform(replace).sql(dialect=DIALECT)


def time_relative(query: VerifiedQuery) -> bool:
    """Asked with "this year" / "last quarter" and answered with fixed dates: not reusable."""
    words = set(intent_words(query.question, _entities(query.slots)))
    return bool(words & RELATIVE) and bool(_DATE_LITERAL.search(query.sql))


def _entities(slots: list[Slot]) -> list[Entity]:
    return [Entity(kind=s.kind, mention=s.mention, value=s.value, table=s.table,
                   column=s.column, key=s.key) for s in slots]


# --------------------------------------------------------------------------- retrieval


@dataclass
class Hit:
    query: VerifiedQuery
    score: float


class Index:
    """BM25 over the intent words of the usable verified questions."""

    def __init__(self, queries: list[VerifiedQuery]) -> None:
        self.queries = [q for q in queries if q.usable]
        self.words = [intent_words(q.question, _entities(q.slots)) for q in self.queries]
        self.intents = [frozenset(w) for w in self.words]
        import bm25s  # numpy and tqdm: loaded on the first turn, not by every fundbot command

        self._bm25 = bm25s.BM25()
        if self.queries:
            # an empty-word document would break bm25s' vocabulary; give it a placeholder
            self._bm25.index([w or ["<none>"] for w in self.words], show_progress=False)

    def search(self, question: str, entities: list[Entity], k: int = TOP_K) -> list[Hit]:
        """The k most similar usable queries (score > 0), best first."""
        words = intent_words(question, entities)
        if not self.queries or not words:
            return []
        scores = self._bm25.get_scores(words)
        order = sorted(range(len(self.queries)), key=lambda i: (-scores[i], self.queries[i].id))
        return [Hit(self.queries[i], float(scores[i])) for i in order[:k] if scores[i] > 0]

    def match(self, question: str, entities: list[Entity], hits: list[Hit]
              ) -> tuple[VerifiedQuery, str] | None:
        """(query, its SQL with the question's names) of the first hit that asks the same."""
        wanted = intent(question, entities)
        for hit in hits:
            q = hit.query
            if self.intents[self.queries.index(q)] != wanted or time_relative(q):
                continue
            sql = swap(q.sql, q.slots, entities)
            if sql is not None:
                return q, sql
        return None


_cache: dict[int, tuple[tuple, Index]] = {}
_cache_lock = threading.Lock()


def index_for(library: VerifiedLibrary) -> Index:
    """The index of the library's verified queries, rebuilt only when they changed."""
    queries = library.list_verified("verified")
    signature = tuple((q.id, q.updated_at, q.broken) for q in queries)
    with _cache_lock:
        cached = _cache.get(id(library))
        if cached and cached[0] == signature:
            return cached[1]
    index = Index(queries)
    with _cache_lock:
        _cache[id(library)] = (signature, index)
    return index


# ------------------------------------------------------------------------- in the turn


def consult(ctx: TurnContext) -> str | None:
    """Find examples for the prompt; "sql" when a verified query answers the turn directly."""
    library = ctx.deps.library
    if library is None:
        return None
    t0 = time.perf_counter()
    try:
        index = index_for(library)
        hits = index.search(ctx.question, ctx.entities)
        ctx.examples = [h.query for h in hits]
        found = None if ctx.facts else index.match(ctx.question, ctx.entities, hits)
        if found is not None:
            query, sql = found
            try:
                check(sql, ctx.deps.warehouse.catalog, ctx.deps.limits.max_rows)
            except QueryError as exc:
                library.flag_verified(query.id, f"{exc.kind}: {exc.message}"[:500])
                ctx.examples = [q for q in ctx.examples if q.id != query.id]
                return None
            ctx.sql = sql
            ctx.trace.verified_query = query.id
            ctx.empty_debugged = True  # reviewed SQL: an empty result is the answer, not a bug
            return "sql"
        return None
    finally:
        ctx.time("verified", t0)


def failed(ctx: TurnContext, error: QueryError) -> None:
    """The verified SQL failed against the warehouse: flag it; the turn goes on unverified."""
    library, query_id = ctx.deps.library, ctx.trace.verified_query
    if library is None or query_id is None:
        return
    library.flag_verified(query_id, f"{error.kind}: {error.message}"[:500])
    ctx.trace.verified_query = None


def examples_block(examples: list[VerifiedQuery]) -> str:
    """The similar verified queries as prompt text (empty when there are none)."""
    if not examples:
        return ""
    parts = ["Reviewed examples from this fund's verified queries (question, then the SQL a "
             "reviewer approved); follow their logic where the question asks the same thing:"]
    for q in examples:
        parts.append(f"Q: {q.question}\nSQL: {q.sql}")
    return "\n\n".join(parts)


def describe(query: VerifiedQuery) -> dict[str, Any]:
    """A query as shown by `fundbot verified show` and in JSON outputs."""
    return {**query.to_dict(), "intent": sorted(intent(query.question, _entities(query.slots))),
            "reusable": not time_relative(query)}
