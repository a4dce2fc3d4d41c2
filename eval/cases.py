"""Evaluation cases: the JSON Lines format, loading and validation.

One case per line. A single-turn case keeps its turn's fields at the top level:

    {"id": "lookup-fund-vintage", "tags": ["lookup"], "expect": "answer",
     "question": "What vintage is Fund III?",
     "sql": "SELECT vintage_year FROM funds WHERE fund_name = 'Fund III'",
     "answer_template": "Fund III is a {vintage_year} vintage fund.",
     "answer": "Fund III is a 2019 vintage fund.", "values": [2019]}

A multi-turn case lists its turns (each with the fields above) under "turns"; the case's
"expect" is then its headline outcome (clarify when any turn must clarify).

`sql` is one reference query or a list of acceptable ones (any one matching counts).
`value_columns` names the result columns that hold the answer (default: every column but
keys). `values` and `answer` may be left out: the runner derives them from the reference
result at run time (from the query the prediction matched). When they are stored (by
`python -m eval.make_cases`), the runner re-derives them on every run, so a change of data is
flagged, never silently scored.

Every field is checked by type when the file is read; a bad line is refused with its line
number (CaseError), so a typo never turns into a silently different case.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from eval.metrics import Value

DEFAULT_CASES = Path(__file__).with_name("cases.jsonl")
# One "today" rule, the catalogue's: today is the data date (the warehouse's as-of date);
# this is only the fallback for a warehouse that does not say.
DEFAULT_TODAY = date(2026, 9, 30)
OUTCOMES = ("answer", "clarify", "refuse")
_TURN_KEYS = ("question", "expect", "sql", "values", "value_columns", "answer",
              "answer_template", "clarification", "options")


class CaseError(ValueError):
    """A case file that cannot be used; the message names the line and the problem."""


@dataclass
class TurnSpec:
    question: str
    expect: str = "answer"  # answer | clarify | refuse
    sql: str | None = None  # reference SQL (answer turns): the first acceptable query
    alternatives: list[str] = field(default_factory=list)  # further acceptable queries
    values: list[Value] = field(default_factory=list)  # important values of its result
    value_columns: list[str] | None = None  # columns whose cells are important (default all)
    answer: str | None = None  # reference answer (answer and refuse turns)
    answer_template: str | None = None  # how `answer` is written from the result
    clarification: str | None = None  # reference clarifying question the model should ask
    options: list[str] = field(default_factory=list)  # choices a name clarification offers

    @property
    def sqls(self) -> list[str]:
        """Every acceptable reference query, the first one first."""
        return [self.sql, *self.alternatives] if self.sql else []


@dataclass
class Case:
    id: str
    turns: list[TurnSpec]
    tags: list[str] = field(default_factory=list)
    expect: str = "answer"
    today: date | None = None  # the pinned "today" when the case's wording depends on it
    notes: str = ""

    @property
    def answer_turns(self) -> list[TurnSpec]:
        return [t for t in self.turns if t.expect == "answer"]


_STR = (str,)
_TYPES: dict[str, tuple[type, ...]] = {
    "question": _STR, "expect": _STR, "answer": _STR, "answer_template": _STR,
    "clarification": _STR, "id": _STR, "today": _STR, "notes": _STR,
}
_STR_LISTS = ("options", "tags", "value_columns")


def _check_types(d: Any, where: str, keys: tuple[str, ...]) -> None:
    """Refuse a field of the wrong JSON type (a string where a list belongs is split into
    characters otherwise)."""
    if not isinstance(d, dict):
        raise CaseError(f"{where}: expected a JSON object, got {_json_type(d)}")
    for k in keys:
        if k not in d or d[k] is None:
            continue
        v = d[k]
        if k in _TYPES and not isinstance(v, _TYPES[k]):
            raise CaseError(f"{where}: '{k}' must be a string, not {_json_type(v)}")
        if k in _STR_LISTS and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise CaseError(f"{where}: '{k}' must be a list of strings, not {_json_type(v)}")
        if k == "values" and not (isinstance(v, list) and all(
                isinstance(x, (str, int, float)) and not isinstance(x, bool) for x in v)):
            raise CaseError(f"{where}: 'values' must be a list of numbers and strings, "
                            f"not {_json_type(v)}")
        if k == "sql" and not (isinstance(v, str) or (
                isinstance(v, list) and v and all(isinstance(x, str) and x.strip() for x in v))):
            raise CaseError(f"{where}: 'sql' must be a string or a non-empty list of strings, "
                            f"not {_json_type(v)}")


def _json_type(v: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false",
            int: "a number", float: "a number", type(None): "null"}.get(type(v), type(v).__name__)


def _turn(d: dict[str, Any], where: str) -> TurnSpec:
    _check_types(d, where, _TURN_KEYS)
    if not isinstance(d.get("question"), str) or not d["question"].strip():
        raise CaseError(f"{where}: a turn needs a non-empty 'question'")
    sqls = d.get("sql")
    sqls = [sqls] if isinstance(sqls, str) else list(sqls or [])
    t = TurnSpec(
        question=d["question"], expect=d.get("expect") or "answer",
        sql=sqls[0] if sqls else None, alternatives=sqls[1:],
        values=list(d.get("values") or []), value_columns=d.get("value_columns"),
        answer=d.get("answer"), answer_template=d.get("answer_template"),
        clarification=d.get("clarification"), options=list(d.get("options") or []),
    )
    if t.expect not in OUTCOMES:
        raise CaseError(f"{where}: expect must be one of {', '.join(OUTCOMES)}, not {t.expect!r}")
    if t.expect == "answer" and not (t.sql and t.sql.strip()):
        raise CaseError(f"{where}: an answer turn needs 'sql' (a query or a list of them)")
    if t.expect == "refuse" and not t.answer:
        raise CaseError(f"{where}: a refuse turn needs the reference 'answer' (the refusal)")
    if t.expect == "clarify" and not (t.clarification or t.options):
        raise CaseError(f"{where}: a clarify turn needs 'clarification' or 'options'")
    return t


def case_from_dict(d: dict[str, Any], where: str = "case") -> Case:
    _check_types(d, where, ("id", "tags", "today", "notes", "turns", "expect"))
    cid = d.get("id")
    if not isinstance(cid, str) or not cid:
        raise CaseError(f"{where}: a case needs a string 'id'")
    where = f"{where} ({cid})"
    if "turns" in d:
        if not isinstance(d["turns"], list):
            raise CaseError(f"{where}: 'turns' must be a list of turn objects")
        if not d["turns"]:
            raise CaseError(f"{where}: 'turns' is empty")
        turns = [_turn(t, f"{where} turn {i + 1}") for i, t in enumerate(d["turns"])]
        default_expect = ("clarify" if any(t.expect == "clarify" for t in turns) else
                          "refuse" if any(t.expect == "refuse" for t in turns) else "answer")
    else:
        turns = [_turn({k: d[k] for k in _TURN_KEYS if k in d}, where)]
        default_expect = turns[0].expect
    today = d.get("today")
    try:
        pinned = date.fromisoformat(today) if today else None
    except ValueError as exc:
        raise CaseError(f"{where}: today must be an ISO date, not {today!r}") from exc
    expect = d.get("expect", default_expect)
    if expect not in OUTCOMES:
        raise CaseError(f"{where}: expect must be one of {', '.join(OUTCOMES)}")
    return Case(id=cid, turns=turns, tags=list(d.get("tags") or []), expect=expect,
                today=pinned, notes=d.get("notes", ""))


def case_to_dict(case: Case) -> dict[str, Any]:
    """The JSON form: flat for single-turn cases, with `turns` otherwise; no empty fields."""

    def turn_dict(t: TurnSpec) -> dict[str, Any]:
        d = {k: getattr(t, k) for k in _TURN_KEYS}
        d["sql"] = [t.sql, *t.alternatives] if t.alternatives else t.sql
        return {k: v for k, v in d.items()
                if v not in (None, [], "") or (k == "values" and t.expect == "answer")}

    out: dict[str, Any] = {"id": case.id, "tags": case.tags, "expect": case.expect}
    if case.today:
        out["today"] = case.today.isoformat()
    if len(case.turns) == 1:
        out.update(turn_dict(case.turns[0]))
        out["expect"] = case.turns[0].expect
    else:
        out["turns"] = [turn_dict(t) for t in case.turns]
    if case.notes:
        out["notes"] = case.notes
    return out


def load_cases(path: str | Path | None = None, tags: list[str] | None = None) -> list[Case]:
    """Cases from a JSON Lines file (the bundled one by default), optionally only some tags."""
    p = Path(path) if path else DEFAULT_CASES
    cases: list[Case] = []
    seen: set[str] = set()
    with open(p, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.lstrip().startswith("//"):
                continue
            try:
                d = json.loads(line)
            except ValueError as exc:
                raise CaseError(f"{p.name}:{n}: not valid JSON ({exc})") from None
            case = case_from_dict(d, f"{p.name}:{n}")
            if case.id in seen:
                raise CaseError(f"{p.name}:{n}: duplicate case id {case.id!r}")
            seen.add(case.id)
            cases.append(case)
    if tags:
        wanted = {t.strip() for t in tags if t.strip()}
        cases = [c for c in cases if wanted & set(c.tags) or c.id in wanted]
    return cases


def dump_cases(cases: list[Case], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(case_to_dict(case), ensure_ascii=False) + "\n" for case in cases)
