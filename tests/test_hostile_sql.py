"""The hostile and legitimate SQL corpora (tests/corpus/) through the real executor.

Every hostile statement goes through `DuckWarehouse.execute` (guard, then sandbox) on a copy
of the sample warehouse and must be refused or stopped (time, memory, rows) with a clear
message, the file byte-for-byte unchanged afterwards. Most also go through `sandbox_execute`
(guard bypassed), to show the sandbox alone stops the dangerous ones. Every legitimate query
and every reference SQL of eval/cases.jsonl must pass the guard and run (no false refusals).
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
import shutil
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.warehouse import DuckWarehouse
from states.ports import Limits, QueryError, QueryResult

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).parent / "corpus"
EVAL_CASES = ROOT / "eval" / "cases.jsonl"

# Small bounds so bombs are stopped quickly; the sandbox's own limits, not the guard's.
LIMITS = Limits(query_timeout_s=0.5, memory_limit="128MB", max_rows=100, threads=2)
INTERRUPT_SLACK_S = 15.0  # how long past the limit a stop may take on a loaded shared machine
OUTCOMES = {"refused", "parse", "timeout", "memory", "stopped", "truncated"}
SANDBOX = {"blocked", "stopped", "truncated", "guard_only", "skip"}
# What issue 5 names; each must appear in the corpus.
REQUIRED_CATEGORIES = {"dml", "ddl", "temp", "multi", "attach", "copy", "extension", "config",
                       "file", "probe", "recursive", "series", "cross_join", "memory",
                       "string_bomb", "rows"}
# Vocabulary tags the legitimate corpus must cover (issue 5, item 1).
REQUIRED_VOCABULARY = {"aggregates", "statistics", "window", "qualify", "date", "string",
                       "similarity", "cte", "union", "group_by_all", "select_star"}


def load_hostile() -> list[dict[str, Any]]:
    lines = (CORPUS / "hostile_sql.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def load_legit() -> list[tuple[str, set[str], str]]:
    """(name, vocabulary tags, sql) for each `-- name:` block of legit_sql.sql."""
    text = (CORPUS / "legit_sql.sql").read_text(encoding="utf-8")
    out = []
    for block in re.split(r"^-- name: ", text, flags=re.MULTILINE)[1:]:
        name, rest = block.split("\n", 1)
        covers = re.search(r"^-- covers: (.+)$", rest, flags=re.MULTILINE)
        tags = {t.strip() for t in covers.group(1).split(",")} if covers else set()
        sql = "\n".join(ln for ln in rest.splitlines() if not ln.startswith("-- covers:")).strip()
        out.append((name.strip(), tags, sql))
    return out


def eval_reference_sql() -> list[tuple[str, str]]:
    """(case id, reference SQL) for every answer turn of eval/cases.jsonl."""
    out = []
    for n, line in enumerate(EVAL_CASES.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        case = json.loads(line)
        for i, turn in enumerate(case.get("turns") or [case]):
            sqls = turn.get("sql") or []  # one query or a list of acceptable ones
            for sql in [sqls] if isinstance(sqls, str) else sqls:
                out.append((f"{case.get('id', n)}#{i}", sql))
    return out


HOSTILE = load_hostile()
LEGIT = load_legit()


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class Copy:
    """A private copy of the sample warehouse, opened in the sandbox, with its hash."""

    def __init__(self, sample_db: str, folder: Path, limits: Limits):
        self.path = folder / "fund.duckdb"
        shutil.copyfile(sample_db, self.path)
        self.sha = sha256(self.path)
        assert self.sha == sha256(sample_db)
        self.wh = DuckWarehouse(str(self.path), limits)

    def assert_untouched(self) -> None:
        assert sha256(self.path) == self.sha, "the warehouse file changed"
        assert sorted(p.name for p in self.path.parent.iterdir()) == ["fund.duckdb"], \
            "something was written beside the warehouse (WAL, export, copy)"


@pytest.fixture(scope="module")
def guarded(sample_db, tmp_path_factory):
    c = Copy(sample_db, tmp_path_factory.mktemp("guarded"), LIMITS)
    yield c
    c.wh.close()
    c.assert_untouched()


@pytest.fixture(scope="module")
def sandboxed(sample_db, tmp_path_factory):
    c = Copy(sample_db, tmp_path_factory.mktemp("sandboxed"), LIMITS)
    yield c
    c.wh.close()
    c.assert_untouched()


def run_alone(fn, sql: str) -> QueryResult | QueryError:
    """Run in a fresh thread: its own cursor, so no session state (an open transaction, a
    temp table) carries from one statement to the next. The join's bound only keeps a
    statement that was never stopped from hanging the suite: how long a stop took is
    bench/'s business, not an assertion here (a loaded machine stalls)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["out"] = fn(sql)
        except QueryError as exc:
            box["out"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join(timeout=LIMITS.query_timeout_s + INTERRUPT_SLACK_S + 30)
    assert not worker.is_alive(), "the statement was not stopped"
    return box["out"]


def is_memory_stop(out: object) -> bool:
    return isinstance(out, QueryError) and out.kind == "runtime" and "memory limit" in out.message


def assert_clear(err: QueryError, wh_path: Path) -> None:
    """A message a model or a person can act on: short, one line of prose, no host paths."""
    msg = err.message
    assert msg and len(msg) <= 700, msg
    assert "Traceback" not in msg and "\n  File " not in msg
    assert str(wh_path) not in msg and str(wh_path.parent) not in msg


def check_outcome(case: dict[str, Any], out: object, path: Path) -> None:
    expect, fragment = case["expect"], case.get("fragment", "")
    if expect == "truncated":
        assert isinstance(out, QueryResult), out
        assert out.truncated and len(out.rows) == LIMITS.max_rows
        return
    assert isinstance(out, QueryError), f"ran: {case['sql'][:80]}"
    assert_clear(out, path)
    if expect in ("refused", "parse"):
        assert out.kind == expect, (out.kind, out.message)
    elif expect == "timeout":
        assert out.kind == "timeout", (out.kind, out.message)
    elif expect == "memory":
        assert is_memory_stop(out), out.message
    elif expect == "stopped":
        assert out.kind == "timeout" or is_memory_stop(out), (out.kind, out.message)
    assert fragment.lower() in out.message.lower(), (fragment, out.message)


# ------------------------------------------------------------------ the hostile corpus


def test_hostile_corpus_is_well_formed():
    ids = [c["id"] for c in HOSTILE]
    assert len(ids) == len(set(ids)), "duplicate ids"
    assert len(HOSTILE) >= 60
    for c in HOSTILE:
        assert c["expect"] in OUTCOMES and c["sandbox"] in SANDBOX, c["id"]
        assert c["sql"].strip()
    missing = REQUIRED_CATEGORIES - {c["category"] for c in HOSTILE}
    assert not missing, f"categories issue 5 asks for are missing: {missing}"
    text = "\n".join(c["sql"].lower() for c in HOSTILE)
    for needle in ("attach", "copy", "export database", "install", "load ", "set ", "pragma",
                   "call ", "read_csv", "read_text", "read_blob", "glob(", "'/etc/passwd'",
                   "read_parquet('http", "query(", "getenv", "duckdb_databases()", "temp table",
                   "with recursive", "generate_series", "--", "/*"):
        assert needle in text, f"no hostile statement uses {needle!r}"


@pytest.mark.parametrize("case", HOSTILE, ids=[c["id"] for c in HOSTILE])
def test_hostile_sql_is_refused_or_stopped(guarded: Copy, case: dict[str, Any]):
    out = run_alone(guarded.wh.execute, case["sql"])
    check_outcome(case, out, guarded.path)
    if isinstance(out, QueryError):
        assert out.sql == case["sql"], "the error must carry the SQL that was tried"
    guarded.assert_untouched()


SANDBOX_CASES = [c for c in HOSTILE if c["sandbox"] != "skip"]


@pytest.mark.parametrize("case", SANDBOX_CASES, ids=[c["id"] for c in SANDBOX_CASES])
def test_sandbox_alone_holds(sandboxed: Copy, case: dict[str, Any]):
    """Guard bypassed: DuckDB's read-only, locked, no-external-access sandbox still holds."""
    out = run_alone(sandboxed.wh.sandbox_execute, case["sql"])
    mode = case["sandbox"]
    if mode == "blocked":
        assert isinstance(out, QueryError), f"the sandbox let this run: {case['sql'][:80]}"
        assert out.kind in ("runtime", "binder", "parse"), out.kind
        assert_clear(out, sandboxed.path)
    elif mode == "stopped":
        assert isinstance(out, QueryError) and (out.kind == "timeout" or is_memory_stop(out)), out
    elif mode == "truncated":
        assert isinstance(out, QueryResult) and out.truncated
        assert len(out.rows) == LIMITS.max_rows
    # guard_only: the sandbox lets it run (catalogue probes, temp objects in memory); only
    # the guard keeps it from users. What must hold even so: the file and its folder.
    sandboxed.assert_untouched()
    assert not glob.glob("/tmp/fundbot-attack-*"), "an attack wrote a file"


def test_a_guard_only_probe_really_leaks_without_the_guard(sandboxed: Copy):
    """Why the guard matters beyond the sandbox: duckdb_databases() shows the file's path."""
    res = sandboxed.wh.sandbox_execute("SELECT path FROM duckdb_databases() WHERE NOT internal")
    assert any(str(sandboxed.path) in str(r) for r in res.rows)
    with pytest.raises(QueryError) as info:
        sandboxed.wh.execute("SELECT path FROM duckdb_databases() WHERE NOT internal")
    assert info.value.kind == "refused"


def test_huge_repeat_escapes_the_sandbox_limits_so_the_guard_refuses_it(sample_db, tmp_path):
    """DuckDB builds repeat()'s result in one allocation that the memory limit does not see
    (and the interrupt cannot stop); a modest size shows it, the guard keeps the big ones out."""
    tight = Copy(sample_db, tmp_path, Limits(query_timeout_s=5, memory_limit="16MB", max_rows=10))
    try:
        sql = "SELECT length(repeat('x', 50000000)) AS n"  # 50 MB past a 16 MB limit
        res = run_alone(tight.wh.sandbox_execute, sql)
        assert isinstance(res, QueryResult) and res.rows == [(50_000_000,)], res
        # the same size built by an aggregate is tracked, and stopped
        agg = run_alone(tight.wh.sandbox_execute,
                           "SELECT length(string_agg(c.company_name, ',')) FROM companies c, "
                           "companies d")
        assert is_memory_stop(agg), agg
        with pytest.raises(QueryError) as info:
            tight.wh.execute(sql)
        assert info.value.kind == "refused" and "repeat()" in info.value.message
        assert tight.wh.execute("SELECT repeat('-', 20) AS bar").rows == [("-" * 20,)]
    finally:
        tight.wh.close()
    tight.assert_untouched()


def test_hostile_figures(capsys):
    """The corpus figures SECURITY.md quotes; printed so the run shows them."""
    by_expect = Counter(c["expect"] for c in HOSTILE)
    by_sandbox = Counter(c["sandbox"] for c in HOSTILE)
    refused = by_expect["refused"] + by_expect["parse"]
    stopped = sum(by_expect[k] for k in ("timeout", "memory", "stopped", "truncated"))
    assert refused + stopped == len(HOSTILE)  # nothing in the corpus is simply allowed
    sandbox_tried = len(HOSTILE) - by_sandbox["skip"]
    with capsys.disabled():
        print(f"\n[hostile SQL] attacks tried: {len(HOSTILE)}; refused by the guard: {refused}; "
              f"stopped by the sandbox (time/memory/rows): {stopped} "
              f"({by_expect['timeout']}/{by_expect['memory'] + by_expect['stopped']}/"
              f"{by_expect['truncated']}, 'stopped' = time or memory); categories: "
              f"{len({c['category'] for c in HOSTILE})}")
        print(f"[hostile SQL, guard bypassed] tried: {sandbox_tried}; blocked by the sandbox: "
              f"{by_sandbox['blocked']}; stopped (time/memory): {by_sandbox['stopped']}; "
              f"rows capped: {by_sandbox['truncated']}; harmless to the file but left to the "
              f"guard: {by_sandbox['guard_only']}; not run (unbounded without the guard): "
              f"{by_sandbox['skip']}")
        refs = len(eval_reference_sql()) if EVAL_CASES.is_file() else 0
        print(f"[legit SQL] analyst queries: {len(LEGIT)}; eval reference SQL: {refs}")


# --------------------------------------------------------------- the legitimate corpus


@pytest.fixture(scope="module")
def legit(sample_db, tmp_path_factory):
    c = Copy(sample_db, tmp_path_factory.mktemp("legit"), Limits())
    yield c
    c.wh.close()
    c.assert_untouched()


def test_legit_corpus_covers_the_analytic_vocabulary():
    assert len(LEGIT) >= 50
    covered = set().union(*(tags for _, tags, _ in LEGIT))
    assert REQUIRED_VOCABULARY <= covered, REQUIRED_VOCABULARY - covered
    names = [n for n, _, _ in LEGIT]
    assert len(names) == len(set(names))


@pytest.mark.parametrize(("name", "sql"), [(n, s) for n, _, s in LEGIT],
                         ids=[n for n, _, _ in LEGIT])
def test_legit_sql_passes_the_guard_and_runs(legit: Copy, name: str, sql: str):
    res = legit.wh.execute(sql)  # raises QueryError on a false refusal
    assert res.columns, name
    assert res.rows, f"{name} returned no rows on the sample warehouse"


def test_every_eval_reference_sql_passes_the_guard(legit: Copy):
    """Loud when the cases file is missing: the eval suite owns it and this test guards it."""
    assert EVAL_CASES.is_file(), (
        f"{EVAL_CASES} is missing: the eval suite's reference SQL must exist and pass the guard")
    refs = eval_reference_sql()
    assert refs, "eval/cases.jsonl holds no reference SQL"
    refused = []
    for case_id, sql in refs:
        try:
            legit.wh.execute(sql)
        except QueryError as exc:
            refused.append(f"{case_id}: {exc.kind}: {exc.message}")
    assert not refused, "reference SQL refused or failing:\n" + "\n".join(refused)


def test_the_memory_cap_stops_what_the_time_limit_would_not(sample_db, tmp_path):
    """The memory cap on its own: with a time limit far away, only memory can stop this. (In
    the corpus the same statements may meet either bound first; the promise there is only
    that they are stopped, clearly.)"""
    roomy = Copy(sample_db, tmp_path, Limits(query_timeout_s=600, memory_limit="64MB",
                                             max_rows=10))
    try:
        for case in ("memory-01", "memory-02"):
            sql = next(c["sql"] for c in HOSTILE if c["id"] == case)
            out = run_alone(roomy.wh.execute, sql)
            assert is_memory_stop(out), out
            assert "64MB memory limit" in out.message
        roomy.assert_untouched()
    finally:
        roomy.wh.close()
