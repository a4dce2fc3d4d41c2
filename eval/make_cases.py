"""Derive (or check) the data-dependent fields of the cases from the warehouse.

For every answer turn, the reference SQL runs through the warehouse (guard and sandbox, as
the bot's own SQL does); its result gives the important values and fills the reference
answer template. Name clarifications are checked against the warehouse's entity
resolution. Run after changing the cases or the sample data:

    python -m eval.make_cases            # rewrite eval/cases.jsonl in place
    python -m eval.make_cases --check    # exit 1 and list every stale field

Without --db the sample warehouse is built in a temporary directory first.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from eval.cases import DEFAULT_CASES, Case, dump_cases, load_cases
from eval.gold import reference_answer
from eval.metrics import derive_values, is_ordered
from eval.runner import Reference, reference_result, stale_values
from states.ports import Limits, Warehouse

LLM_ROWS = Limits().llm_rows  # the rows an interpret prompt shows: loops must fit in them


def derive(case: Case, warehouse: Warehouse, update: bool = False) -> list[str]:
    """Problems with a case's derived fields (stale values or answers, failing SQL, names
    the resolver no longer finds ambiguous); with `update`, rewrite the fields instead."""
    problems = []
    for n, turn in enumerate(case.turns, 1):
        where = f"{case.id} turn {n}"
        if turn.expect == "clarify" and turn.options:
            _, ambiguities = warehouse.resolve(turn.question)
            found = [[c.value for c in a.candidates] for a in ambiguities]
            if sorted(turn.options) not in [sorted(f) for f in found]:
                problems.append(f"{where}: the warehouse resolves {turn.question!r} to "
                                f"{found or 'no ambiguity'}, not the options {turn.options}")
        if turn.expect != "answer" or not turn.sql:
            continue
        failing = [(sql, reference_result(warehouse, sql).error) for sql in turn.sqls]
        failing = [(sql, err) for sql, err in failing if err]
        if failing:
            problems += [f"{where}: reference SQL fails: {err}" for _, err in failing]
            continue
        ref: Reference = reference_result(warehouse, turn.sql)
        if turn.answer_template and "[[" in turn.answer_template and len(ref.rows) > LLM_ROWS:
            problems.append(f"{where}: the answer lists {len(ref.rows)} rows; the model is "
                            f"shown {LLM_ROWS}: add a LIMIT")
        try:
            answer = reference_answer(turn, ref.columns, ref.rows)
        except KeyError as exc:
            problems.append(f"{where}: {exc.args[0]}")
            continue
        if update:
            turn.values = derive_values(ref.columns, ref.rows, turn.value_columns,
                                        ordered=is_ordered(turn.sql))
            turn.answer = answer
            continue
        problems += [f"{where}: {p}" for p in stale_values(turn, ref)]
        if turn.answer != answer:
            problems.append(f"{where}: stored answer {turn.answer!r}, the data gives {answer!r}")
    return problems


def check(cases: list[Case], warehouse: Warehouse) -> list[str]:
    return [p for case in cases for p in derive(case, warehouse)]


def sample_warehouse(directory: str | Path) -> str:
    """Build the bundled sample warehouse under `directory`; returns its path."""
    from schemas.generate import build

    path = str(Path(directory) / "fund.duckdb")
    build(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from bot.warehouse import open_warehouse

    p = argparse.ArgumentParser(prog="python -m eval.make_cases", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", default=str(DEFAULT_CASES))
    p.add_argument("--db", help="warehouse file (default: build the sample one in a temp dir)")
    p.add_argument("--check", action="store_true", help="only report stale fields")
    args = p.parse_args(argv)
    cases = load_cases(args.cases)
    with tempfile.TemporaryDirectory() as tmp:
        db = args.db or sample_warehouse(tmp)
        with open_warehouse(db, Limits()) as wh:
            problems = [q for c in cases for q in derive(c, wh, update=not args.check)]
    for q in problems:
        print(q, file=sys.stderr)
    if args.check:
        print(f"{len(cases)} cases, {len(problems)} problems")
        return 1 if problems else 0
    if problems:
        print(f"not written: {len(problems)} problems", file=sys.stderr)
        return 1
    dump_cases(cases, args.cases)
    print(f"wrote {len(cases)} cases to {args.cases}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
