"""Mutation testing with mutmut 3, one group of modules at a time (`make mutate`).

Each group names the modules to mutate and the fast tests that cover them; mutmut runs only
the tests that reach a mutated function. A group runs in a scratch copy of the project under
mutation-out/<group>/ (its own setup.cfg and mutants/), so the work tree is never touched and
the groups' results stay apart. The score and every surviving mutant's diff are written to
mutation-out/REPORT.md (and mutation-out/<group>.json).

    python -m tests.mutate [GROUP ...] [--jobs N]
    python -m tests.mutate GROUP --again     # the survivors once more, against today's tests
    python -m tests.mutate GROUP --collect   # report on a run that was stopped early
    python -m tests.mutate GROUP --resume    # go on with a run that was stopped early

Not part of `make test`: a group takes minutes. docs/QUALITY.md has the last figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "mutation-out"
COPY = ("states", "bot", "schemas", "eval", "bench", "tests", "pyproject.toml", "README.md")

GROUPS: dict[str, tuple[list[str], list[str]]] = {
    "core": (["states/clarify.py", "states/machine.py", "states/debug.py"],
             ["tests/test_states.py", "tests/test_machine.py", "tests/test_clarify.py",
              "tests/test_debug.py", "tests/test_turn_record.py", "tests/test_run_turn.py",
              "tests/test_docs.py"]),
    "guard": (["states/guard.py", "states/bounds.py"],
              ["tests/test_guard.py", "tests/test_guard_bounds.py"]),
    "answer": (["states/understand.py", "states/execute.py", "states/interpret.py",
                "states/verify.py", "states/support.py", "states/values.py",
                "states/replace.py", "states/prompts.py", "states/context.py"],
               ["tests/test_states.py", "tests/test_verify.py", "tests/test_values.py",
                "tests/test_facts.py", "tests/test_prompt_injection.py",
                "tests/test_turn_record.py", "tests/test_run_turn.py"]),
    "catalog": (["states/pruning.py", "states/cache.py", "states/dialects.py",
                 "states/verified.py"],
                ["tests/test_pruning.py", "tests/test_catalog_cache.py", "tests/test_dialects.py",
                 "tests/test_verified.py"]),
    "executor": (["bot/sqlpool.py", "bot/warehouse.py"],
                 ["tests/test_sqlworker.py", "tests/test_sqlpool.py", "tests/test_warehouse.py"]),
    "worker": (["bot/sqlworker.py"],
               ["tests/test_sqlworker.py", "tests/test_sqlpool.py", "tests/test_warehouse.py"]),
    "store": (["bot/store.py"], ["tests/test_store.py"]),
    "slack": (["bot/slack/safety.py", "bot/slack/access.py", "bot/slack/render.py"],
              ["tests/test_slack_safety.py", "tests/test_slack_render.py",
               "tests/test_duckdb_types.py", "tests/test_slack_edge.py"]),
}
# more pytest arguments for a group: bot/store.py is the SQLite store, so its group leaves out
# the PostgreSQL runs of the shared store tests (each would start a server per mutant)
PYTEST_ARGS: dict[str, list[str]] = {
    "store": ["-k", "not postgres and not test_migrate_state_copies_every_row_both_ways"]}
# Code that runs only in a child process (the SQL worker's main loop and its limits): mutmut
# learns which tests reach a function by watching calls in the test process, so it sees none
# reach these. The mutant is active in the child too (FUNDBOT_WORKER_ENV passes mutmut's
# MUTANT_UNDER_TEST to the worker), so these mutants are run again against the tests that
# drive the worker process.
CHILD_ONLY: dict[str, tuple[list[str], list[str]]] = {
    "worker": (["bot.sqlworker"], ["tests/test_sqlpool.py"]),
}
# A mutant that makes a test wait forever (a deadline dropped, a worker never ready) would run
# until mutmut's own wall limit, (the tests' time + 1 s) x 15: minutes per mutant in the executor
# groups, whose functions are reached by ~13 s of tests. pytest-timeout fails the hung test
# instead, and its thread method ends the process even when the hang left threads or workers
# behind. The slowest test of any group takes under 3 s, so 30 s is no false kill. (A lower
# mutmut timeout_multiplier is not the way: mutmut's CPU limit shrinks with it, and SQL workers
# inherit that as their hard limit, so honest queries fail as timeouts; docs/QUALITY.md.)
HANG = ["--timeout=30", "--timeout-method=thread"]
DETECTED = {"killed", "timeout", "segfault"}  # the tests noticed the change
# every survivor's diff in one process (`mutmut show` is a process start per mutant)
_DIFFS = ("import json, sys\n"
          "from mutmut.__main__ import find_mutant, get_diff_for_mutant\n"
          "names = json.load(sys.stdin)\n"
          "print(json.dumps({n: get_diff_for_mutant(n, path=find_mutant(n).path) "
          "for n in names}))")
_RESULT = re.compile(r"^\s*(\S+): (.+)$")
# give functions no test reached in-process the tests that drive the child process
_ADOPT = ("import json, sys\n"
          "from mutmut.utils.format_utils import mangled_name_from_mutant_name as mangled\n"
          "names, files = json.loads(sys.argv[1])\n"
          "path = 'mutants/mutmut-stats.json'\n"
          "stats = json.load(open(path))\n"
          "tests = [t for t in stats['duration_by_test'] if t.split('::')[0] in files]\n"
          "for n in names:\n"
          "    known = stats['tests_by_mangled_function_name'].setdefault(mangled(n), [])\n"
          "    known.extend(t for t in tests if t not in known)\n"
          "json.dump(stats, open(path, 'w'))\n"
          "print(len(tests))")


def _setup_cfg(mutate: list[str], tests: list[str], args: list[str]) -> str:
    lines = ["[mutmut]", "source_paths =", "    states", "    bot", "    schemas", "    eval",
             # README.md for test_docs, bench/ for test_catalog_cache
             "also_copy =", "    README.md", "    bench", "only_mutate ="]
    lines += [f"    {m}" for m in mutate]
    lines += ["pytest_add_cli_args_test_selection ="] + [f"    {t}" for t in tests]
    lines += ["pytest_add_cli_args =", "    -q", "    -p", "    no:cacheprovider"]
    lines += [f"    {a}" for a in HANG]
    lines += [f"    {a}" for a in args]
    lines += ["use_git_change_detection = false", ""]
    return "\n".join(lines)


def _module(mutant: str) -> str:
    """'bot.sqlworker' of 'bot.sqlworker.x_main__mutmut_3' or '….xǁRunnerǁrun__mutmut_1'."""
    return mutant.split(".x")[0]


def _statuses(work: Path) -> dict[str, str]:
    listing = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"],
                             cwd=work, capture_output=True, text=True, check=False).stdout
    return dict(m.groups() for m in map(_RESULT.match, listing.splitlines()) if m)


_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


def _fresh_tests(work: Path) -> None:
    """The work tree's tests, now, in a scratch copy (for --again)."""
    for dest in (work / "tests", work / "mutants" / "tests"):
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(ROOT / "tests", dest, ignore=_IGNORE)


def _changed_source(work: Path) -> list[str]:
    """Source files that differ between the work tree and a run's scratch copy. --again
    re-runs the run's own mutants, made from the source as it was: tests that expect a later
    version of the code would fail on every mutant and count as kills."""
    changed = []
    for name in COPY:
        if name == "tests" or not (ROOT / name).is_dir():
            continue
        for src in sorted((ROOT / name).rglob("*.py")):
            rel = src.relative_to(ROOT)
            if "__pycache__" in rel.parts:
                continue
            copy = work / rel
            if not copy.exists() or copy.read_bytes() != src.read_bytes():
                changed.append(str(rel))
    return changed


def _scratch(group: str) -> Path:
    work = OUT / group
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    for name in COPY:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=_IGNORE)
        elif src.exists():
            shutil.copy2(src, work / name)
    return work


def run_group(group: str, jobs: int, collect_only: bool = False, again: bool = False,
              resume: bool = False) -> dict:
    """Run mutmut on a group (or, with collect_only, read a run that was stopped early; with
    again, run the last run's survivors once more against the tests as they are now)."""
    mutate, tests = GROUPS[group]
    tests = [t for t in tests if (ROOT / t).exists()]
    work = OUT / group
    mutmut = [sys.executable, "-m", "mutmut"]
    env = {**os.environ, "FUNDBOT_WORKER_ENV": "MUTANT_UNDER_TEST"}
    ours = {m.removesuffix(".py").replace("/", ".") for m in mutate}
    started = time.monotonic()
    if again:
        changed = _changed_source(work)
        if changed:
            raise SystemExit(f"{group}: the source changed since this run ({', '.join(changed)});"
                             " run the group afresh, not --again")
        _fresh_tests(work)
        survivors = sorted(n for n, s in _statuses(work).items()
                           if s not in DETECTED and s != "not checked" and _module(n) in ours)
        with open(OUT / f"{group}.log", "a") as log:
            subprocess.run([*mutmut, "run", "--max-children", str(jobs), *survivors], cwd=work,
                           env=env, stdout=log, stderr=subprocess.STDOUT, check=False)
    elif not collect_only:
        if not resume:  # (mutmut run in the same scratch copy skips what has a result)
            work = _scratch(group)
            (work / "setup.cfg").write_text(_setup_cfg(mutate, tests,
                                                       PYTEST_ARGS.get(group, [])))
        with open(OUT / f"{group}.log", "a" if resume else "w") as log:
            subprocess.run([*mutmut, "run", "--max-children", str(jobs)], cwd=work, env=env,
                           stdout=log, stderr=subprocess.STDOUT, check=False)
            statuses = _statuses(work)
            modules, files = CHILD_ONLY.get(group, ([], []))
            orphans = sorted(n for n, s in statuses.items()
                             if s == "no tests" and _module(n) in modules)
            if orphans:
                subprocess.run([sys.executable, "-c", _ADOPT, json.dumps([orphans, files])],
                               cwd=work, check=True, stdout=log)
                subprocess.run([*mutmut, "run", "--max-children", str(jobs), *orphans],
                               cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT,
                               check=False)
    minutes = (time.monotonic() - started) / 60
    statuses = {n: s for n, s in _statuses(work).items() if _module(n) in ours}
    unchecked = {n for n, s in statuses.items() if s == "not checked"}  # a stopped run
    statuses = {n: s for n, s in statuses.items() if n not in unchecked}
    survivors = sorted(n for n, s in statuses.items() if s not in DETECTED)
    shown = subprocess.run([sys.executable, "-c", _DIFFS], cwd=work, input=json.dumps(survivors),
                           capture_output=True, text=True, check=True).stdout
    diffs = {name: "\n".join(line for line in diff.splitlines()
                             if line[:1] in "+-" and line[:3] not in ("+++", "---"))
             for name, diff in json.loads(shown).items()}
    by_module: dict[str, dict[str, int]] = {}
    for name, status in statuses.items():
        counts = by_module.setdefault(_module(name), {"total": 0, "detected": 0})
        counts["total"] += 1
        counts["detected"] += status in DETECTED
    result = {"group": group, "mutate": mutate, "tests": tests, "minutes": round(minutes, 1),
              "not_checked": len(unchecked), "statuses": statuses, "by_module": by_module,
              "survivors": diffs}
    (OUT / f"{group}.json").write_text(json.dumps(result, indent=1, ensure_ascii=False))
    return result


def _score(counts: dict[str, int]) -> str:
    total = counts["total"]
    return f"{counts['detected']}/{total} ({100 * counts['detected'] / total:.1f} %)" \
        if total else "no mutants"


def write_report() -> Path:
    lines = ["# Mutation testing report (mutmut 3)", "",
             "Detected = killed, timed out or crashed. Survivors include mutants no selected",
             "test reaches (`no tests`) and equivalent ones; docs/QUALITY.md has the notes.", ""]
    lines += ["| group | module | detected of those run | not run | minutes |",
              "| --- | --- | --- | --- | --- |"]
    results = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    for r in results:
        for module, counts in sorted(r["by_module"].items()):
            lines.append(f"| {r['group']} | {module} | {_score(counts)} | "
                         f"{r.get('not_checked', 0)} (group) | {r['minutes']} |")
    for r in results:
        lines += ["", f"## {r['group']}: surviving mutants", "",
                  f"tests: {', '.join(r['tests'])}", ""]
        for name, diff in r["survivors"].items():
            lines += [f"### {name} ({r['statuses'][name]})", "```diff", diff, "```"]
    report = OUT / "REPORT.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("groups", nargs="*", choices=list(GROUPS))
    parser.add_argument("--jobs", type=int, default=2, help="mutants tested at once")
    parser.add_argument("--collect", action="store_true",
                        help="only report on the groups' last (perhaps stopped) runs")
    parser.add_argument("--again", action="store_true",
                        help="run the last run's survivors again against the current tests "
                             "(refused when the source changed since the run)")
    parser.add_argument("--resume", action="store_true",
                        help="run the mutants a stopped run did not reach (same scratch copy)")
    args = parser.parse_args(argv)
    OUT.mkdir(exist_ok=True)
    for group in args.groups or list(GROUPS):
        r = run_group(group, args.jobs, collect_only=args.collect, again=args.again,
                      resume=args.resume)
        for module, counts in sorted(r["by_module"].items()):
            print(f"{group:9} {module:22} {_score(counts)}  ({r['minutes']} min"
                  + (f"; {r['not_checked']} mutants not run" if r["not_checked"] else "") + ")",
                  flush=True)
    print(f"report: {write_report()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
