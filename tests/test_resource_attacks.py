"""Resource attacks, written fresh as an adversary would, through the real worker pool.

Each class of issue 10 with variants: string builders the memory limit does not see (nested
replace, ||/concat doubling through CTEs, regexp_replace over built strings, edit distances of
long strings), rows times size, joins that keep the planner busy, nesting that would blow the
guard's recursion, and huge inputs that keep the guard itself busy. Half go through the guard
(`execute`): a clear refusal. The rest bypass it (`sandbox_execute`), as a rule the guard
misses would: the worker's OS limits and the pool's deadline must stop them. Every attack is
stopped within the time limit + 2 s, the bot process's peak resident memory stays below
memory_limit + 512 MB, and the warehouse answers afterwards.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bot.sqlworker import memory_bytes
from bot.warehouse import DuckWarehouse
from states.ports import Limits, QueryError, QueryResult

LIMITS = Limits(query_timeout_s=0.5, memory_limit="128MB", max_rows=100, threads=2)


def _nest(n: int, head: str, tail: str, inner: str = "1") -> str:
    return head * n + inner + tail * n


def _doubling(levels: int, op: str) -> str:
    ctes = ["a0 AS (SELECT repeat('x', 1000) AS s)"]
    for i in range(1, levels + 1):
        body = op.format(s="s")
        ctes.append(f"a{i} AS (SELECT {body} AS s FROM a{i - 1})")
    return f"WITH {', '.join(ctes)} SELECT length(s) FROM a{levels}"


BIG = "repeat('ab', 1000) || repeat('ab', 1000)"  # 4,000 characters, within every rule
HUGE_CTE = ("WITH b AS (SELECT " + " || ".join([BIG] * 7) + " AS s) ")  # 28,000 characters

# (id, path, sql, what must happen): path "guard" = execute, "wall" = sandbox_execute
ATTACKS: list[tuple[str, str, str, str]] = [
    # nested replace: each level multiplies by the replacement's length
    ("replace-1", "guard", "SELECT length(replace(replace(repeat('x',1000),'x',repeat('x',1000)),"
     "'x',repeat('x',1000)))", "refused"),
    ("replace-2", "wall", "SELECT length(replace(replace(repeat('x',1000),'x',repeat('x',1000)),"
     "'x',repeat('x',1000)))", "stopped"),
    ("replace-3", "guard", "SELECT replace(repeat('x',1000),'x',repeat('y',1000)) FROM valuations",
     "refused"),
    ("replace-4", "wall", "SELECT replace(repeat('x',1000),'x',repeat('y',1000)) FROM valuations",
     "stopped"),
    ("replace-5", "guard", "WITH a AS (SELECT replace(repeat('x',1000),'x','yyyyyyyyyyyyyyyyyyyy')"
     " AS s) SELECT length(replace(s,'y','zzzzzzzzzzzzzzzzzzzzzzzz')) FROM a", "refused"),
    # || and concat doubling through CTEs
    ("concat-1", "guard", _doubling(12, "{s}||{s}"), "refused"),
    ("concat-2", "wall", _doubling(20, "{s}||{s}"), "stopped"),
    ("concat-3", "guard", _doubling(6, "concat({s},{s},{s},{s},{s},{s},{s},{s})"), "refused"),
    ("concat-4", "wall", _doubling(8, "concat({s},{s},{s},{s},{s},{s},{s},{s})"), "stopped"),
    ("concat-5", "guard", _doubling(8, "concat_ws({s},{s},{s})"), "refused"),
    # edit distances: an O(n*m) matrix
    ("edit-1", "guard", HUGE_CTE + "SELECT damerau_levenshtein(s, s) FROM b", "refused"),
    ("edit-2", "wall", HUGE_CTE + "SELECT damerau_levenshtein(s, reverse(s)) FROM b", "stopped"),
    ("edit-3", "guard", HUGE_CTE + "SELECT levenshtein(s, reverse(s)) FROM b", "refused"),
    ("edit-4", "guard", HUGE_CTE + "SELECT jaro_winkler_similarity(s, reverse(s)) FROM b",
     "refused"),
    ("edit-5", "guard", f"SELECT editdist3({BIG} || {BIG}, {BIG} || {BIG})", "refused"),
    # regexp_replace over built strings
    ("regexp-1", "guard", HUGE_CTE + "SELECT length(regexp_replace(s, '(a|b)', 'xyz', 'g')) "
     "FROM b", "refused"),
    ("regexp-2", "wall", "WITH b AS (SELECT repeat(repeat('ab', 1000), 500) AS s) "
     "SELECT length(regexp_replace(s, 'a', repeat('y', 1000), 'g')) FROM b", "stopped"),
    ("regexp-3", "guard", "SELECT regexp_replace(repeat('x',1000), '', repeat('y',1000), 'g')",
     "refused"),
    # rows times size
    ("rows-1", "wall", "SELECT repeat('x', 1000) || c.company_name, d.company_name FROM "
     "companies c, companies d", "stopped"),
    ("rows-2", "wall", "SELECT string_agg(c.company_name, ',') FROM companies c, companies d, "
     "companies e", "stopped"),
    ("rows-3", "wall", "SELECT list(a.valuation_id) FROM valuations a, valuations b", "stopped"),
    # joins that keep the planner (or the guard's optimizer) busy
    ("join-1", "guard", "SELECT * FROM funds f0 " + " ".join(
        f"NATURAL JOIN funds f{i}" for i in range(1, 150)), "refused"),
    ("join-2", "wall", "SELECT count(*) FROM funds f0 " + " ".join(
        f"NATURAL JOIN funds f{i}" for i in range(1, 150)), "stopped"),
    ("join-3", "guard", "SELECT count(*) FROM funds f0 " + " ".join(
        f"JOIN funds f{i} ON f{i}.fund_id = f{i - 1}.fund_id" for i in range(1, 40)),
     "refused"),
    ("join-4", "guard", "SELECT count(*) FROM " + ", ".join(f"valuations v{i}" for i in range(20)),
     "refused"),
    # nesting, 200 and 500 levels
    ("nest-parens-200", "guard", "SELECT " + _nest(200, "(", ")") + " FROM funds", "refused"),
    ("nest-parens-500", "guard", "SELECT " + _nest(500, "(", ")") + " FROM funds", "refused"),
    ("nest-not-500", "guard", "SELECT 1 FROM funds WHERE " + "NOT " * 500 + "true", "refused"),
    ("nest-notparen-300", "guard", "SELECT 1 FROM funds WHERE " + _nest(300, "NOT (", ")",
                                                                          "true"), "refused"),
    ("nest-subquery-200", "guard", "SELECT " + _nest(200, "(SELECT ", ")") + " FROM funds",
     "refused"),
    ("nest-case-300", "guard", "SELECT " + _nest(300, "CASE WHEN true THEN ", " END") +
     " FROM funds", "refused"),
    ("nest-cast-400", "guard", "SELECT " + _nest(400, "CAST(", " AS INT)") + " FROM funds",
     "refused"),
    # a flat chain, not nesting: the compiled parser (sqlglotc) reads it without recursion,
    # and it answers at once; what matters is that it is bounded, never a RecursionError
    ("nest-castop-500", "guard", "SELECT 1" + "::INT" * 500 + " FROM funds", "bounded"),
    ("nest-list-500", "guard", "SELECT " + _nest(500, "[", "]") + " FROM funds", "refused"),
    ("nest-fn-300", "guard", "SELECT " + _nest(300, "abs(", ")") + " FROM funds", "refused"),
    # huge inputs for the guard itself (just under the 20,000-character limit): answered, or
    # stopped at the deadline when the guard's analysis takes longer than the time limit
    ("guard-1", "guard", "SELECT 1 FROM funds WHERE " + " AND ".join(
        f"fund_id <> {i}" for i in range(900)), "bounded"),
    ("guard-2", "guard", "SELECT " + " || ".join(["'ab'"] * 2400) + " FROM funds", "bounded"),
    ("guard-3", "guard", "SELECT 1 FROM funds WHERE fund_id IN (" + ",".join(
        str(i) for i in range(3500)) + ")", "bounded"),
    ("guard-4", "guard", "SELECT " + ", ".join(f"fund_id + {i} AS c{i}" for i in range(700)) +
     " FROM funds", "bounded"),
]


def _vm_hwm_kb(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def wall(sample_db, tmp_path_factory):
    folder = tmp_path_factory.mktemp("attacks")
    shutil.copyfile(sample_db, folder / "fund.duckdb")
    wh = DuckWarehouse(str(folder / "fund.duckdb"), LIMITS)
    Path("/proc/self/clear_refs").write_text("5")  # reset this process's peak RSS
    yield wh
    wh.close()


def test_the_corpus_covers_every_class():
    classes = {a[0].split("-")[0] for a in ATTACKS}
    assert classes >= {"replace", "concat", "edit", "regexp", "rows", "join", "nest", "guard"}
    assert len(ATTACKS) >= 30 and len({a[0] for a in ATTACKS}) == len(ATTACKS)
    assert {a[1] for a in ATTACKS} == {"guard", "wall"}


@pytest.mark.parametrize(("name", "path", "sql", "expect"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_stopped(wall: DuckWarehouse, name: str, path: str, sql: str, expect: str):
    run = wall.execute if path == "guard" else wall.sandbox_execute
    try:  # returns at the latest at the pool's deadline; its speed is bench/'s to measure
        out: QueryResult | QueryError = run(sql)
    except QueryError as exc:
        out = exc
    if expect == "bounded":
        assert isinstance(out, QueryResult) or out.kind in ("timeout", "parse"), out
    elif expect == "refused":
        assert isinstance(out, QueryError) and out.kind == "refused", out
    else:  # stopped by the wall: a time-out, the memory cap, or rows/bytes cut short
        assert (isinstance(out, QueryError) and out.kind in ("timeout", "runtime")) or (
            isinstance(out, QueryResult) and out.truncated), out
    if isinstance(out, QueryError):
        assert "\n" not in out.message and len(out.message) <= 700, out.message
        assert "Recursion" not in out.message and "Traceback" not in out.message
    # still answering afterwards, and the bot process stayed small
    assert wall.execute("SELECT count(*) FROM funds").rows == [(8,)]
    assert _vm_hwm_kb() * 1024 < memory_bytes(LIMITS.memory_limit) + 512 * 2**20


def test_attacks_ran_on_the_wall_not_in_the_bot(wall: DuckWarehouse):
    """The wall cases killed or exhausted workers, which were replaced; the bot is unharmed."""
    assert len(wall.pool.pids()) == LIMITS.sql_workers
    assert wall.execute("SELECT fund_name FROM funds ORDER BY fund_id LIMIT 1").rows
    for pid in wall.pool.pids():  # the workers that lived through attacks stayed bounded too
        assert _vm_hwm_kb(pid) * 1024 < memory_bytes(LIMITS.memory_limit) + 512 * 2**20
