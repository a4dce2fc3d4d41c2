"""The guard's resource rules (states/bounds.py): clear refusals, and no false ones.

The attacks themselves run through the real worker pool in tests/test_resource_attacks.py;
these pin the messages and the limits' edges on the guard alone.
"""

from __future__ import annotations

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
