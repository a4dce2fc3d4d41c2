"""Schema pruning: the tables a question needs, so prompts stay small as the catalogue grows.

A small catalogue is sent whole. A large one is scored against the question (table names,
the analyst's keywords from the catalogue docs, column names, descriptions), the tables of
resolved names are always kept, and the tables that join the best matches (a column named
after another table's key, like investments.company_id -> companies.company_id) come next,
because a question rarely names the fact table that links what it does name.
"""

from __future__ import annotations

import bisect
import math
import re
import threading

from states.cache import per_catalog
from states.ports import Catalog, Entity

MAX_TABLES = 8  # above this many tables, only the most relevant are sent
SEEDS = 4  # best-scoring tables picked before their join partners

_WORD = re.compile(r"[a-z0-9]+")
_WORD_SQL = re.compile(r"[a-z0-9_]+")
_SUFFIXES = ("ments", "ment", "ings", "ing", "ions", "ion", "ed", "es", "s")
_STOP = frozenset("""a an and are as at be by did do does for from has have how in is it its
many much of on or our the their this to was we were what when which who with""".split())



def stem(word: str) -> str:
    """A crude English stem: enough to meet "invested" with "investments"."""
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(text.lower().replace("_", " ")) if w not in _STOP}


def _meets(a: str, b: str) -> bool:
    if a == b:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 4 and long.startswith(short.rstrip("e"))


@per_catalog
def _index(catalog: Catalog) -> Index:
    """Stems of each table's parts, where each stem occurs, and the join graph."""
    parts = {
        name: {
            "name": stems(name),
            "keywords": stems(" ".join(doc.keywords)),
            "columns": stems(" ".join(doc.columns)),
            "description": stems(doc.description),
        }
        for name, doc in catalog.tables.items()
    }
    keys = _keys(catalog)
    links: dict[str, set[str]] = {name: set() for name in catalog.tables}
    parents: dict[str, set[str]] = {name: set() for name in catalog.tables}
    for name, doc in catalog.tables.items():
        for col in doc.columns:
            for other, key in keys.items():
                if other != name and key.endswith("_id") and (col == key or
                                                             col.endswith("_" + key)):
                    links[name].add(other)
                    links[other].add(name)
                    parents[name].add(other)
    return Index(parts, links, parents)


class Index:
    """A catalogue's words for pruning: which (table, part) each stem occurs in, the stems
    sorted (for prefix look-ups) and by their form without a final 'e' (for the other way),
    and each question word's matches once worked out."""

    def __init__(self, parts: dict[str, dict[str, set[str]]], links: dict[str, set[str]],
                 parents: dict[str, set[str]]):
        self.parts, self.links, self.parents = parts, links, parents
        self.where: dict[str, list[tuple[str, str]]] = {}
        for table, p in parts.items():
            for part, words in p.items():
                for w in words:
                    self.where.setdefault(w, []).append((table, part))
        self.sorted = sorted(self.where)
        self.by_stripped: dict[str, list[str]] = {}
        for w in self.sorted:
            if len(w) >= 4:
                self.by_stripped.setdefault(w.rstrip("e"), []).append(w)
        self._hits: dict[str, dict[str, list[str]]] = {}
        self._lock = threading.Lock()

    def hits(self, q: str) -> dict[str, list[str]]:
        """{table: [parts]} whose words meet `q` (see _meets), parts in PART_WEIGHTS order."""
        found = self._hits.get(q)
        if found is None:
            found = {}
            for w in self._meeting(q):
                for table, part in self.where[w]:
                    found.setdefault(table, set()).add(part)
            found = {t: [p for p in PART_WEIGHTS if p in ps] for t, ps in found.items()}
            with self._lock:
                if len(self._hits) > 50_000:  # a bound, not a policy: a process sees few words
                    self._hits.clear()
                self._hits[q] = found
        return found

    def _meeting(self, q: str) -> set[str]:
        out = {q} if q in self.where else set()
        if len(q) >= 4:  # longer (or as long) words that start with q (less a final 'e')
            head = q.rstrip("e")
            i = bisect.bisect_left(self.sorted, head)
            while i < len(self.sorted) and self.sorted[i].startswith(head):
                if len(self.sorted[i]) >= len(q):
                    out.add(self.sorted[i])
                i += 1
        for k in range(len(q) + 1):  # shorter words of 4+ letters that q starts with
            for w in self.by_stripped.get(q[:k], ()):
                if len(w) < len(q):
                    out.add(w)
        return out


PART_WEIGHTS = {"name": 3.0, "keywords": 3.0, "columns": 1.0, "description": 0.3}
LINK_WEIGHT = 2.0  # per picked table a candidate joins
PARENT_WEIGHT = 3.0  # a table a picked one references (its names, its sectors...)


def _keys(catalog: Catalog) -> dict[str, str]:
    """Each table's own id column: its first column, when no other table starts with it, or
    when the table is named for it (companies.company_id, not company_kpis.company_id)."""
    by_first: dict[str, list[str]] = {}
    for name, doc in catalog.tables.items():
        first = next(iter(doc.columns), "")
        if first.endswith("_id"):
            by_first.setdefault(first, []).append(name)
    keys = {}
    for col, owners in by_first.items():
        if len(owners) > 1:
            owners = [o for o in owners if stem(o) == stem(col[:-3])]
        if len(owners) == 1:
            keys[owners[0]] = col
    return keys


def tables_named(sql: str | None, catalog: Catalog) -> list[str]:
    """Catalogue tables a SQL text names (a cheap look, for keeping a follow-up's context)."""
    words = set(_WORD_SQL.findall((sql or "").lower()))
    return [name for name in catalog.tables if name in words]


def relevant_tables(catalog: Catalog, question: str, entities: list[Entity],
                    max_tables: int = MAX_TABLES, keep: list[str] | None = None) -> list[str]:
    """Tables worth showing the model: all of a small catalogue, else the best matches.

    ``keep`` names tables that must stay (those the thread's previous SQL used, so a
    follow-up like "and in 2025?" still sees them).
    """
    names = list(catalog.tables)
    if len(names) <= max_tables:
        return names
    index = _index(catalog)
    parts, links, parents = index.parts, index.links, index.parents
    must = [t for t in dict.fromkeys([*(e.table.lower() for e in entities if e.table),
                                      *(k.lower() for k in keep or [])]) if t in parts]
    order = {n: i for i, n in enumerate(names)}
    scores = dict.fromkeys(names, 0.0)
    for q in stems(question):
        hits = index.hits(q)
        # a word most tables' columns share ("year", "company_id") tells little: weigh
        # column and description matches by rarity; a table's name or keyword always counts
        rarity = math.log((len(names) + 1) / max(1, len(hits))) / math.log(len(names) + 1)
        for name, matched in hits.items():
            strong = [PART_WEIGHTS[m] for m in matched if m in ("name", "keywords")]
            scores[name] += max(strong) if strong else max(
                PART_WEIGHTS[m] for m in matched) * rarity
    for name in must:
        scores[name] += 10.0
    ranked = sorted(names, key=lambda n: (-scores[n], n))
    picked = list(dict.fromkeys(must + [n for n in ranked if scores[n] > 0][:SEEDS]))[:max_tables]
    if not picked:  # nothing matched: the most connected tables are the likeliest facts
        picked = sorted(names, key=lambda n: (-len(links[n]), n))[:SEEDS]
    # then greedily: a table's own score, plus for each picked table it joins, plus for being
    # what a picked table references (the dimension holding the names a partner reads)

    def priority(n: str, chosen: set[str]) -> float:
        referenced = any(n in parents[c] for c in chosen)
        return (scores[n] + LINK_WEIGHT * len(links[n] & chosen)
                + (PARENT_WEIGHT if referenced else 0.0))

    while len(picked) < max_tables:
        chosen = set(picked)
        best = max((n for n in names if n not in chosen),
                   key=lambda n: (priority(n, chosen), -order[n]))
        if priority(best, chosen) <= 0:
            break
        picked.append(best)
    return sorted(picked)
