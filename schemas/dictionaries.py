"""Value dictionaries: find GPs, companies and funds named in a question, deterministically.

Built once per process from the warehouse (`ValueDictionaries.from_connection`), then
`resolve(text)` returns the names it is sure of as Entity and the names that fit several rows
as Ambiguity, without calling an LLM. Two kinds of match over the question's words:

- exact: word sequences compared after normalisation (case, accents, punctuation,
  possessive 's, legal suffixes such as "Inc." or "GmbH" dropped; "Fund 3" and "Fund three"
  read as "Fund III");
- fuzzy (rapidfuzz `ratio`, strict cut-off) for typos and near spellings ("databriks"),
  skipping spans made of ordinary English words so that "what is our total committed
  capital" matches nothing.

Longer sequences go first; at each length, exact before fuzzy.

Each word is used by at most one match. A GP's first or last name alone is a partial alias; a
company's first distinctive word ("acme" for "Acme Robotics, Inc.") is too; a full name or
legal name beats a partial alias, and within one span the spec's first kind wins (so a lone
first name is a general partner, as the analyst rule says).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb
from rapidfuzz import fuzz, process
from sqlglot import exp

from states.ports import Ambiguity, Entity

FUZZY_CUTOFF = 88.0  # rapidfuzz ratio 0-100; below this typos are as likely as other words
TIE_MARGIN = 2.0  # fuzzy candidates this close to the best are equally likely: ask
MIN_FUZZY_CHARS = 5  # shorter spans match too many words by accident
MAX_FUZZY_WORDS = 3
MAX_CANDIDATES = 10  # an ambiguity lists at most this many choices (sorted by name)
MAX_TOKENS = 400  # longer input is cut: a question, not a document
# Names read per dictionary: a bound on what building them may pull from a shared cluster
# (the sample warehouse has ~140,000 companies at its 10M-row scale).
MAX_DICTIONARY_ROWS = 500_000



def _wordset(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Function words: never a name on their own, never the edge of a fuzzy span.
STOPWORDS = _wordset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves let lets may might must
shall per via vs versus also please thanks thank hi hello hey ok okay yes yeah
""")

# Ordinary words of questions about a fund, plus the generic words of company names: a span
# made only of these is never fuzzy-matched, and such a word is never a partial alias.
COMMON_WORDS = STOPWORDS | _wordset("""
invest invested investing investment investments investor investors fund funds funded funding
company companies portfolio portfolios value values valued valuation valuations worth total
totals committed commitment commitments capital amount amounts money cash dollar dollars usd
usd million millions billion billions thousand year years quarter quarters month months week
weeks day days today yesterday tomorrow current currently latest newest recent recently last
first second third fourth next previous top bottom best worst biggest largest smallest highest
lowest most least average mean median sum count number numbers many much show list give tell
find get compare comparison against growth grow grew return returns multiple moic irr tvpi dpi
exit exits exited sold sell sale sales acquisition acquired acquire ipo public private
write writeoff off shut down round rounds series seed stage early late lead led leading gp gps
partner partners general managing venture ventures deal deals check checks size sizes share
shares stake stakes ownership percent percentage pct owned own realized unrealized proceeds
cost basis fair mark marks marked date dates time since ago until between before after during
how what who which where why when sector sectors industry industries city cities country
countries headquarters hq founded founder founders status active new old open closed vintage
strategy committed called distributions distributed report summary overview breakdown trend
chart table rows data database sql query answer question help explain why please thanks
systems system labs lab health care medical clinic bio therapeutics genomics biosciences
software cloud works platforms platform analytics databases intelligence neural robotics
automation machines dynamics energy climate carbon power security shield defense secure home
foods social living freight logistics fleet mobility dev code stack build pay payments finance
ledger ai ml tech technologies technology solutions group holdings global international
network networks digital smart inc llc ltd corp corporation co company gmbh limited
invest fintech healthcare biotech enterprise consumer cybersecurity infrastructure tools
january february march april june july august september october november december monday
friday q1 q2 q3 q4 h1 h2 ytd yoy qoq annual annually quarterly monthly one two three four
five six seven eight nine ten twenty hundred percent dollars euro euros pounds all every each
across per overall firm firms team member members people person everyone anyone someone
did does doing done do make made making lose lost losing loss losses gain gains profit profits
good bad great better worse performing performance performed perform underperforming doing
put putting into out paid pay paying spend spent spending raise raised raising close closing
much more less than over under above below up down left still held hold holding holdings
right wrong same different other another such like just only even also again ever never
""")

# Trailing words of legal names dropped before matching ("Databricks, Inc." -> "databricks").
LEGAL_SUFFIXES = _wordset("""
inc incorporated llc ltd limited corp corporation co company gmbh ag sa sas sarl srl plc pte
pvt pty ab bv nv lp llp oy kk spa ug kg
""")
_LEGAL_PAIRS = {("b", "v"), ("n", "v"), ("s", "a"), ("s", "l"), ("l", "p")}

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "v": 5, "vi": 6, "vii": 7, "viii": 8, "ix": 9,
          "x": 10, "xi": 11, "xii": 12}
_NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                 "nine", "ten", "eleven", "twelve"]
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|&")


def _fold(word: str) -> str:
    """Lower case, accents dropped, possessive 's and apostrophes dropped."""
    w = unicodedata.normalize("NFKD", word.lower())
    w = "".join(ch for ch in w if not unicodedata.combining(ch))
    w = re.sub(r"['’]s$", "", w)
    return "and" if w == "&" else w.replace("'", "").replace("’", "")


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Normalised words of `text` with their character spans in the original."""
    out = []
    for m in _TOKEN.finditer(text):
        w = _fold(m.group())
        if w:
            out.append((w, m.start(), m.end()))
    return out


def words(text: str) -> list[str]:
    return [w for w, _, _ in tokenize(text)]


def strip_legal(ws: list[str]) -> list[str]:
    """Drop trailing legal-form words, keeping at least one word."""
    ws = list(ws)
    while len(ws) > 1:
        if ws[-1] in LEGAL_SUFFIXES:
            ws.pop()
        elif len(ws) > 2 and (ws[-2], ws[-1]) in _LEGAL_PAIRS:
            del ws[-2:]
        else:
            break
    return ws


@dataclass(frozen=True)
class _Target:
    kind: str
    value: str
    table: str
    column: str
    key: Any
    rank: int  # position of its kind in the spec: lower wins a tie between kinds
    key_column: str = ""


def _fund_variants(ws: list[str]) -> list[list[str]]:
    """'fund iii' -> also 'fund 3' and 'fund three'. Not 'third fund': 'the first fund to
    invest' is not Fund I."""
    out = [ws]
    if ws and ws[-1] in _ROMAN and len(ws) > 1:
        n = _ROMAN[ws[-1]]
        out.append(ws[:-1] + [str(n)])
        if n < len(_NUMBER_WORDS):
            out.append(ws[:-1] + [_NUMBER_WORDS[n]])
    return out


class ValueDictionaries:
    """Names of the warehouse's GPs, companies and funds, indexed for `resolve`."""

    def __init__(self) -> None:
        self._targets: list[_Target] = []
        # alias words -> {target index: strength}; strength 2 = full name, 1 = partial alias
        self._exact: dict[tuple[str, ...], dict[int, int]] = {}
        self._compact: dict[str, dict[int, int]] = {}  # multi-word names without spaces
        self._fuzzy: dict[str, list[str]] = {}  # first letter -> alias strings
        self._fuzzy_targets: dict[str, dict[int, int]] = {}
        self._max_words = 1
        self._dirty = False

    # ----------------------------------------------------------------- building

    @classmethod
    def from_connection(cls, con: duckdb.DuckDBPyConnection,
                        spec: list[dict[str, Any]]) -> ValueDictionaries:
        """Read every dictionary of `spec` (catalog.json "dictionaries") from a DuckDB file."""
        def fetch(sql: str) -> list[tuple] | None:
            try:
                return con.execute(sql).fetchall()
            except duckdb.CatalogException:
                return None
        return cls.from_query(fetch, spec)

    @classmethod
    def from_query(cls, fetch: Callable[[str], list[tuple] | None], spec: list[dict[str, Any]],
                   dialect: str = "duckdb") -> ValueDictionaries:
        """Read every dictionary of `spec` with `fetch(sql)` (rows, or None when the table is
        missing: a user's warehouse without it simply has no such names), one bounded query
        a dictionary in the engine's `dialect`."""
        vd = cls()
        for rank, entry in enumerate(spec):
            table, key, value = entry["table"], entry["key"], entry["value"]
            aliases = list(entry.get("aliases", []))
            q = [exp.to_identifier(n, quoted=True).sql(dialect)
                 for n in (table, key, value, *aliases)]
            rows = fetch(f"SELECT {', '.join(q[1:])} FROM {q[0]} WHERE {q[2]} IS NOT NULL "
                         f"ORDER BY 1 LIMIT {MAX_DICTIONARY_ROWS}")
            if rows is not None:
                vd.add(entry["kind"], table, value, rows, rank, key_column=key)
        vd._finish()
        return vd

    def add(self, kind: str, table: str, column: str, rows: list[tuple], rank: int = 0,
            key_column: str = "") -> None:
        """Index rows of (key, value, *aliases) as names of `kind`; `key_column` names the key."""
        for row in rows:
            key, value, aliases = row[0], str(row[1]), [a for a in row[2:] if a]
            idx = len(self._targets)
            self._targets.append(_Target(kind, value, table, column, key, rank, key_column))
            ws = words(value)
            if not ws:
                continue
            full: list[list[str]] = [ws]
            partial: list[list[str]] = []
            if kind == "company":
                core = strip_legal(ws)
                full.append(core)
                if core[0] == "the" and len(core) > 1:
                    full.append(core[1:])
                head = core[0] if core[0] != "the" or len(core) == 1 else core[1]
                if len(core) > 1 and len(head) >= 4 and head not in COMMON_WORDS:
                    partial.append([head])
            elif kind == "fund":
                full = _fund_variants(ws)
            for a in aliases:
                aw = words(str(a))
                if aw and not (len(aw) == 1 and aw[0] in STOPWORDS):
                    partial.append(aw)
            for strength, group in ((2, full), (1, partial)):
                for aw in group:
                    self._index(tuple(aw), idx, strength, fuzzy=kind != "fund")

    def _index(self, aw: tuple[str, ...], idx: int, strength: int, fuzzy: bool) -> None:
        self._dirty = True
        slot = self._exact.setdefault(aw, {})
        slot[idx] = max(slot.get(idx, 0), strength)
        self._max_words = max(self._max_words, len(aw))
        if len(aw) > 1:
            c = self._compact.setdefault("".join(aw), {})
            c[idx] = max(c.get(idx, 0), strength)
        s = " ".join(aw)
        # funds differ by one numeral ("fund ii" / "fund iii"): exact matches only
        if fuzzy and len(s.replace(" ", "")) >= MIN_FUZZY_CHARS:
            t = self._fuzzy_targets.setdefault(s, {})
            t[idx] = max(t.get(idx, 0), strength)

    def _finish(self) -> None:
        buckets: dict[str, list[str]] = {}
        for s in sorted(self._fuzzy_targets):
            buckets.setdefault(s[0], []).append(s)
        self._fuzzy = buckets
        self._dirty = False

    # ---------------------------------------------------------------- resolving

    def resolve(self, text: str) -> tuple[list[Entity], list[Ambiguity]]:
        """Entities named in `text` that fit one row, and ambiguities that fit several."""
        if self._dirty:
            self._finish()
        tokens = tokenize(text or "")[:MAX_TOKENS]
        used = [False] * len(tokens)
        found: list[tuple[int, str, dict[int, int] | dict[int, float], bool]] = []

        # longest spans first; at each length exact names before fuzzy ones, so that
        # "Adam Brookes" is fuzzy-matched as a whole before "Adam" alone matches exactly
        for n in range(min(self._max_words, len(tokens)), 0, -1):
            for i in range(len(tokens) - n + 1):
                if any(used[i:i + n]):
                    continue
                ws = tuple(w for w, _, _ in tokens[i:i + n])
                if n == 1 and ws[0] in STOPWORDS:
                    continue
                hit = self._exact.get(ws) or (self._compact.get("".join(ws)) if n > 1 else None)
                if hit:
                    used[i:i + n] = [True] * n
                    found.append((i, self._mention(text, tokens, i, n), hit, False))
            if n > MAX_FUZZY_WORDS:
                continue
            for i in range(len(tokens) - n + 1):
                if any(used[i:i + n]):
                    continue
                ws = tuple(w for w, _, _ in tokens[i:i + n])
                if ws[0] in STOPWORDS or ws[-1] in STOPWORDS:
                    continue
                if all(w in COMMON_WORDS or w.isdigit() for w in ws):
                    continue
                s = " ".join(ws)
                if len(s.replace(" ", "")) < MIN_FUZZY_CHARS:
                    continue
                scores = self._fuzzy_scores(s)
                if scores:
                    used[i:i + n] = [True] * n
                    found.append((i, self._mention(text, tokens, i, n), scores, True))

        return self._decide(sorted(found, key=lambda f: f[0]))

    def _fuzzy_scores(self, s: str) -> dict[int, float]:
        choices = self._fuzzy.get(s[0])
        if not choices:
            return {}
        out: dict[int, float] = {}
        for alias, score, _ in process.extract(s, choices, scorer=fuzz.ratio,
                                               score_cutoff=FUZZY_CUTOFF, limit=20):
            for idx, strength in self._fuzzy_targets[alias].items():
                # a partial alias ("acme") counts a little less than a full name
                sc = score - (0 if strength == 2 else 0.5)
                out[idx] = max(out.get(idx, 0.0), sc)
        return out

    @staticmethod
    def _mention(text: str, tokens: list[tuple[str, int, int]], i: int, n: int) -> str:
        return text[tokens[i][1]:tokens[i + n - 1][2]]

    def _decide(self, found: list) -> tuple[list[Entity], list[Ambiguity]]:
        entities: list[Entity] = []
        ambiguities: list[Ambiguity] = []
        seen_keys: set[tuple[str, Any]] = set()
        seen_sets: set[tuple] = set()
        for _, mention, hits, fuzzy in found:
            if fuzzy:
                best = max(hits.values())
                chosen = [i for i, s in hits.items() if s >= best - TIE_MARGIN]
            else:
                chosen = list(hits)
            # the spec's first kind wins a span; within it, full names beat partial aliases
            rank = min(self._targets[i].rank for i in chosen)
            chosen = [i for i in chosen if self._targets[i].rank == rank]
            if not fuzzy:
                top = max(hits[i] for i in chosen)
                chosen = [i for i in chosen if hits[i] == top]
            cands = sorted((self._entity(i, mention) for i in set(chosen)),
                           key=lambda e: (e.value, str(e.key)))
            if len(cands) == 1:
                e = cands[0]
                if (e.kind, e.key) not in seen_keys:
                    seen_keys.add((e.kind, e.key))
                    entities.append(e)
            else:
                sig = tuple((e.kind, e.key) for e in cands)
                if sig not in seen_sets:
                    seen_sets.add(sig)
                    ambiguities.append(Ambiguity(kind=cands[0].kind, mention=mention,
                                                 candidates=cands[:MAX_CANDIDATES]))
        return entities, ambiguities

    def _entity(self, idx: int, mention: str) -> Entity:
        t = self._targets[idx]
        return Entity(kind=t.kind, mention=mention, value=t.value, table=t.table,
                      column=t.column, key=t.key, key_column=t.key_column)

    def __len__(self) -> int:
        return len(self._targets)
