"""The guard's resource rules (states/bounds.py): clear refusals, and no false ones.

The attacks themselves run through the real worker pool in tests/test_resource_attacks.py;
these pin the messages and the limits' edges on the guard alone.
"""

from __future__ import annotations

import inspect
import sys

import duckdb
import pytest

from schemas.catalog import build_catalog
from states import bounds
from states.guard import analyze, check
from states.ports import QueryError
from tests.warehouse_fixture import make_db


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    con = duckdb.connect(make_db(tmp_path_factory.mktemp("bounds") / "w.duckdb"))
    yield build_catalog(con, {})
    con.close()


def refusal(sql: str, catalog) -> str:
    with pytest.raises(QueryError) as info:
        check(sql, catalog, 100)
    assert info.value.kind == "refused", info.value.message
    return info.value.message


@pytest.mark.parametrize("depth", [200, 500])
def test_deep_nesting_is_refused_by_check_and_analyze(catalog, depth):
    sql = "SELECT " + "(" * depth + "1" + ")" * depth + " FROM funds"
    assert "nested too deeply" in refusal(sql, catalog)
    with pytest.raises(QueryError) as info:  # the evaluation's analysis: never RecursionError
        analyze(sql, catalog)
    assert info.value.kind == "parse" and "nested too deeply" in info.value.message
    analyze("SELECT 1" + "::INT" * depth + " FROM funds", catalog)  # parsed without recursion


def test_nesting_within_the_limit_passes(catalog):
    depth = bounds.MAX_NESTING - 2
    check("SELECT " + "(" * depth + "fund_id" + ")" * depth + " FROM funds", catalog, 100)
    check("SELECT " + "abs(" * 12 + "1" + ")" * 12 + " FROM funds WHERE NOT NOT true", catalog,
          100)


def test_natural_join_and_table_references(catalog):
    assert "NATURAL JOIN is not allowed" in refusal(
        "SELECT * FROM funds NATURAL JOIN investments", catalog)
    many = "SELECT count(*) FROM " + ", ".join(f"funds f{i}" for i in range(17))
    assert "references tables 17 times; the limit is 16" in refusal(many, catalog)
    check("SELECT count(*) FROM " + ", ".join(f"funds f{i}" for i in range(4)), catalog, 100)


@pytest.mark.parametrize(("sql", "names"), [
    ("SELECT replace(replace(repeat('x',1000),'x',repeat('x',1000)),'x','yy')", "replace()"),
    ("WITH a AS (SELECT repeat('x',1000) AS s), b AS (SELECT s||s||s||s AS s FROM a), "
     "c AS (SELECT s||s||s||s AS s FROM b), d AS (SELECT s||s||s||s||s||s||s AS s FROM c) "
     "SELECT length(s) FROM d", "||"),
    ("WITH a AS (SELECT repeat('ab',1000) AS s) SELECT concat(s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,"
     "s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s) FROM a",
     "concat()"),
    ("SELECT regexp_replace(repeat('x',1000), 'x', repeat('y',1000), 'g')", "regexp_replace()"),
    ("SELECT damerau_levenshtein(repeat('ab',1000), repeat('ba',1000))",
     "damerau_levenshtein()"),
])
def test_size_rules_name_the_builder(catalog, sql, names):
    message = refusal(sql, catalog)
    assert names in message and "limit" in message


def test_ordinary_string_work_passes(catalog):
    for sql in [
        "SELECT replace(company_name, ',', '') FROM companies",
        "SELECT first_name || ' ' || last_name AS n FROM general_partners",
        "SELECT regexp_replace(company_name, '[^a-z]', '', 'g') FROM companies",
        "SELECT levenshtein(company_name, 'Stripe') FROM companies",
        "WITH n AS (SELECT lower(company_name) AS s FROM companies) "
        "SELECT jaro_winkler_similarity(a.s, b.s) FROM n a, n b",
        "SELECT string_agg(company_name, ', ') FROM companies",
    ]:
        check(sql, catalog, 100)


# ------------------------------------------- exact figures: written against mutation survivors

BUILT = ("{} can build a string of up to {} characters; the limit is 100,000: do not nest or "
         "chain string builders (replace, ||, repeat) over built strings")
NESTED = ("the SQL is nested too deeply ({} levels); the limit is 30 levels of parentheses, "
          "subqueries, CASE and NOT: use CTEs (WITH) and flatter conditions")


def outcome(sql: str, catalog) -> tuple[str, str]:
    try:
        return "ok", check(sql, catalog, 100)
    except QueryError as e:
        return e.kind, e.message


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT " + "(" * 31 + "1" + ")" * 31, NESTED.format(31)),
    ("SELECT " + "NOT " * 31 + "true", NESTED.format(31)),
    ("SELECT (" + "- " * 30 + "1)", NESTED.format(31)),
    ("SELECT NOT NOT (" + "(" * 28 + "true" + ")" * 29, NESTED.format(31)),
])
def test_nesting_counts_brackets_and_unary_chains(catalog, sql, message):
    assert outcome(sql, catalog) == ("refused", message)


@pytest.mark.parametrize("sql", [
    "SELECT " + "(" * 30 + "1" + ")" * 30,
    "SELECT " + "NOT " * 30 + "true",
    "SELECT (" + "- " * 29 + "1)",
    # a unary chain ends at its operand: the levels it opened close there
    "SELECT " + " + ".join(["- - - - - 1"] * 10),
    "SELECT NOT NOT true AND " + "(" * 28 + "true" + ")" * 28,
    "SELECT (" + "NOT " * 20 + "true) AND (" + "NOT " * 20 + "true)",
])
def test_nesting_at_the_limit_passes(catalog, sql):
    assert outcome(sql, catalog)[0] == "ok"


def test_an_unbalanced_closer_is_the_parsers_error(catalog):
    with pytest.raises(QueryError) as info:
        check("SELECT 1) + (1", catalog, 100)
    assert info.value.kind == "parse"


@pytest.mark.parametrize(("sql", "expected"), [
    # CTE and subquery columns carry their bound, by alias, through UNION branches
    ("WITH a AS ((SELECT repeat('x', 1000) AS s) UNION ALL (SELECT 'y' UNION ALL SELECT 'z')) "
     "SELECT replace(s, 'x', s) FROM a", ("refused", BUILT.format("replace()", "1,000,000"))),
    ("WITH a AS (SELECT 'x' AS s UNION ALL SELECT repeat('x', 1000) AS t) "
     "SELECT replace(s, 'x', s) FROM a", ("refused", BUILT.format("replace()", "1,000,000"))),
    # a branch wider than the first (DuckDB's error) still has its columns read, by alias
    ("WITH a AS (SELECT 'x' AS s UNION ALL SELECT 'y', repeat('x', 1000) AS t) "
     "SELECT replace(t, 'x', t) FROM a",
     ("refused", "column t does not exist; no table is in scope; "
      + BUILT.format("replace()", "1,000,000"))),
    ("WITH a AS (SELECT *, repeat('x', 1000) AS s FROM funds) SELECT replace(s, 'x', s) FROM a",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    ("SELECT replace(s, 'x', s) FROM (SELECT repeat('x', 1000) AS s) t",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    ("SELECT replace(t.s, 'x', t.s) FROM (SELECT repeat('x', 1000) AS s) t",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    ("SELECT (SELECT 1), replace(t.s, 'x', t.s) FROM (SELECT repeat('x', 1000) AS s) t",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    ("WITH a AS (SELECT repeat('x', 1000) AS s) SELECT replace(c.s, 'x', c.s) FROM a AS c",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    ("SELECT replace(repeat('x', 1000), 'x', (SELECT repeat('x', 1000)))",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    # a qualified column takes its own source's bound, an unaliased subquery defines nothing
    ("WITH a AS (SELECT 'x' AS s), b AS (SELECT repeat('x', 1000) AS s) "
     "SELECT replace(a.s, 'x', a.s) FROM a, b",
     ("ok", "WITH a AS (SELECT 'x' AS s), b AS (SELECT REPEAT('x', 1000) AS s) "
      "SELECT REPLACE(a.s, 'x', a.s) FROM a, b LIMIT 101")),
    ("SELECT replace(fund_name, 'x', fund_name) FROM funds WHERE fund_name IN "
     "(SELECT repeat('x', 1000) AS fund_name)",
     ("ok", "SELECT REPLACE(fund_name, 'x', fund_name) FROM funds WHERE fund_name IN "
      "(SELECT REPEAT('x', 1000) AS fund_name) LIMIT 101")),
])
def test_column_bounds_follow_their_definitions(catalog, sql, expected):
    assert outcome(sql, catalog) == expected


@pytest.mark.parametrize(("sql", "expected"), [
    # replace grows by ceil(len(replacement) / len(pattern)); a column pattern may be 1 char
    ("SELECT replace(repeat('ab', 1000), 'abcdefg', repeat('y', 600))",
     ("refused", BUILT.format("replace()", "172,000"))),
    ("SELECT replace(repeat('x', 200), fund_name, repeat('y', 600)) FROM funds",
     ("refused", BUILT.format("replace()", "120,000"))),
    ("SELECT replace(repeat('" + "a" * 60 + "', 1000), 'a', '')",
     ("ok", "SELECT REPLACE(REPEAT('" + "a" * 60 + "', 1000), 'a', '') LIMIT 101")),
    # exactly at the limit passes; NULL adds nothing
    ("SELECT replace(repeat('x', 1000), 'x', repeat('y', 100) || NULL)",
     ("ok", "SELECT REPLACE(REPEAT('x', 1000), 'x', REPEAT('y', 100) || NULL) LIMIT 101")),
    # printf builds its arguments into its pattern; another call yields at most its longest
    # argument
    ("WITH a AS (SELECT repeat('x', 1000) AS s) SELECT replace(printf('%s%s', s, s), 'x', s) "
     "FROM a", ("refused", BUILT.format("replace()", "2,004,000"))),
    ("SELECT replace(repeat('x', 1000), 'x', suffix(repeat('y', 60), repeat('z', 60))::varchar)",
     ("ok", "SELECT REPLACE(REPEAT('x', 1000), 'x', CAST(SUFFIX(REPEAT('y', 60), REPEAT('z', "
      "60)) AS TEXT)) LIMIT 101")),
    # a regexp can match at every position
    ("SELECT regexp_replace(repeat('x', 1000), 'x', repeat('y', 1000), 'g')",
     ("refused", BUILT.format("regexp_replace()", "1,001,000"))),
    # a string aggregate: its arguments times AGGREGATE_ROWS
    ("WITH a AS (SELECT repeat('x', 1000) AS s) SELECT string_agg(s, ',') || '!' FROM a",
     ("refused", BUILT.format("||", "100,101"))),
    # only the outermost builder over the limit is reported; problems outermost first
    ("SELECT replace(replace(repeat('x', 1000), 'x', repeat('x', 1000)), 'x', 'yy')",
     ("refused", BUILT.format("replace()", "2,000,000"))),
    ("SELECT replace(upper(replace(repeat('x', 1000), 'x', repeat('x', 1000))), 'x', 'yy')",
     ("refused", BUILT.format("replace()", "2,000,000"))),
    ("SELECT upper(upper(replace(repeat('x', 1000), 'x', repeat('y', 1000)))), "
     "regexp_replace(repeat('x', 1000), 'x', repeat('y', 1000))",
     ("refused", BUILT.format("regexp_replace()", "1,001,000") + "; "
      + BUILT.format("replace()", "1,000,000"))),
    ("SELECT lpad(fund_name, fund_id, ' ') || 'x' FROM funds",
     ("refused", "lpad() needs a literal length of at most 1000; "
      + BUILT.format("||", "unbounded"))),
    # a pad yields exactly its width (a longer input is cut): the builder inside is the one
    # over the limit, and a padded input bounds what is built from it
    ("SELECT lpad(replace(repeat('x', 1000), 'x', repeat('y', 1000)), 5, ' ')",
     ("refused", BUILT.format("replace()", "1,000,000"))),
    ("SELECT replace(repeat('x', 1000), 'x', rpad(repeat('y', 1000), 100, ' '))",
     ("ok", "SELECT REPLACE(REPEAT('x', 1000), 'x', RPAD(REPEAT('y', 1000), 100, ' ')) "
      "LIMIT 101")),
    # edit distances: len(a) * len(b) cells
    ("SELECT damerau_levenshtein(repeat('ab', 1000), repeat('ba', 1000))",
     ("refused", "damerau_levenshtein() of strings of up to 2,000 and 2,000 characters needs a "
      "matrix over the limit of 1,000,000 cells; compare columns or short literals")),
    ("SELECT levenshtein(repeat('ab', 1000), repeat('x', 600))",
     ("refused", "levenshtein() of strings of up to 2,000 and 600 characters needs a matrix "
      "over the limit of 1,000,000 cells; compare columns or short literals")),
    # the first two arguments are the strings (a third is jaro_winkler's cutoff)
    ("SELECT jaro_winkler_similarity(repeat('ab', 1000), repeat('ba', 1000), 0.5)",
     ("refused", "jarowinkler_similarity() of strings of up to 2,000 and 2,000 characters needs "
      "a matrix over the limit of 1,000,000 cells; compare columns or short literals")),
    ("SELECT levenshtein(repeat('a', 1000), repeat('b', 1000))",
     ("ok", "SELECT LEVENSHTEIN(REPEAT('a', 1000), REPEAT('b', 1000)) LIMIT 101")),
])
def test_size_estimates(catalog, sql, expected):
    assert outcome(sql, catalog) == expected


def test_table_reference_limit_edges(catalog):
    refs = "SELECT count(*) FROM " + ", ".join(f"funds f{i}" for i in range(16))
    assert outcome(refs, catalog)[0] == "ok"
    assert outcome(refs + ", funds f16", catalog) == (
        "refused", "the query references tables 17 times; the limit is 16: join fewer tables "
        "or reuse a CTE")
    assert outcome("SELECT * FROM funds NATURAL JOIN investments NATURAL JOIN companies",
                   catalog) == (
        "refused", "NATURAL JOIN is not allowed (it joins on every column that happens to share "
        "a name); join with ON or USING (key)")


@pytest.mark.parametrize("guard", ["check", "analyze"])
def test_running_out_of_stack_is_the_nesting_refusal_never_a_traceback(catalog, guard):
    """However little stack is left when the guard starts (from a few dozen frames up), a
    RecursionError in the parser or the optimizer becomes the nesting refusal (kind, message
    and SQL), never an exception; with enough stack the same SQL passes."""
    sql = "SELECT " + "(" * 25 + "fund_id" + ")" * 25 + " FROM funds"
    call = (lambda: check(sql, catalog, 100)) if guard == "check" else (
        lambda: analyze(sql, catalog))
    kind = "refused" if guard == "check" else "parse"
    base, limit = len(inspect.stack()), sys.getrecursionlimit()
    seen = set()
    try:
        for room in range(50, 1000, 10):  # below ~20 frames not even a refusal can be built
            sys.setrecursionlimit(base + room)
            try:
                call()
                seen.add("ok")
            except QueryError as e:
                assert (e.kind, e.message, e.sql) == (kind, bounds.nesting_message(), sql)
                seen.add("refused")
    finally:
        sys.setrecursionlimit(limit)
    assert seen == {"ok", "refused"}
    assert bounds.nesting_message() == (
        "the SQL is nested too deeply; the limit is 30 levels of parentheses, subqueries, CASE "
        "and NOT: use CTEs (WITH) and flatter conditions")
