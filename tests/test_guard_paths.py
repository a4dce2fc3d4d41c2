"""The guard's less travelled paths, each pinned by its exact outcome (the refusal's kind and
message, or the SQL that runs): size rules on literal arguments, the row cap's forms, table
qualifiers and table functions, unknown names, the resolver's fallbacks, Spark's rules.

These were written against the survivors of `python -m tests.mutate guard`: each test fails
when the guard's logic on its path changes.
"""

from __future__ import annotations

import dataclasses

import duckdb
import pytest

from schemas.catalog import build_catalog
from states.guard import analyze, check
from states.ports import QueryError
from tests.warehouse_fixture import make_db

TABLES = "companies, exits, funds, general_partners, investments, valuations"
FUNDS_HAS = ("funds has: committed_capital_usd, fund_id, fund_name, status, strategy, "
             "vintage_year")
COMPANIES_HAS = ("companies has: company_id, company_name, founded_year, hq_city, hq_country, "
                 "sector, status")
NOT_ALLOWED = ("; use standard aggregates, window, date, string, math and conditional "
               "functions")
REPEAT = "repeat() needs a literal text and a literal count of at most 1000"
UNBOUNDED_REPEAT = ("repeat() can build a string of up to unbounded characters; the limit is "
                    "100,000: do not nest or chain string builders (replace, ||, repeat) over "
                    "built strings")
TABLE_FUNCTION = ("table function {}() is not allowed: queries may only read the catalogue "
                  "tables (no files, no generated series, no system views)")
NESTED_LOOP = ("a join without an equality between columns of both sides (a cross join, a comma "
               "join without a WHERE key, a join ON an inequality) is not allowed on Spark: it "
               "cannot be stopped once started; join on keys (a.id = b.id)")
CONCATENATIONS = ("more than 16 string concatenations in one query are not allowed on Spark; "
                  "build long texts in the answer, not in SQL")


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    c = duckdb.connect(make_db(tmp_path_factory.mktemp("paths") / "fund.duckdb"), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def catalog(con):
    return build_catalog(con, {})


def outcome(sql: str, catalog, max_rows: int = 100, dialect: str = "duckdb") -> tuple[str, str]:
    """("ok", the SQL to run) or (the refusal's kind, its message); the refusal keeps the SQL."""
    try:
        return "ok", check(sql, catalog, max_rows, dialect)
    except QueryError as e:
        assert e.sql == sql
        return e.kind, e.message


# ------------------------------------------------------------- statements and heads


def test_statements_sqlglot_cannot_parse_are_refused_by_their_first_word(catalog):
    assert outcome("export database '/tmp/x'", catalog) == (
        "refused", "only read-only queries (SELECT, WITH ... SELECT) are allowed; this "
        "statement is EXPORT")
    # the words are read by the warehouse's tokenizer: $$a;b$$ is one DuckDB string
    assert outcome("select $$a;b$$; export database '/tmp/x'", catalog) == (
        "refused", "exactly one statement is allowed, found 2 (SELECT, EXPORT); send a single "
        "SELECT")


# ---------------------------------------------------------------------- functions


@pytest.mark.parametrize(("sql", "dialect", "expected"), [
    # the written name decides, in either case and quoted
    ("SELECT MAX(amount_usd) FROM investments", "duckdb",
     ("ok", "SELECT MAX(amount_usd) FROM investments LIMIT 101")),
    ('select "signum"(fund_id) from funds', "duckdb",
     ("refused", "function(s) not allowed: signum" + NOT_ALLOWED)),
    # each dialect has its own list
    ("select date_format(vintage_year, 'yyyy') from funds", "spark",
     ("ok", "SELECT DATE_FORMAT(vintage_year, 'yyyy') FROM funds LIMIT 101")),
    ("select strip_accents(fund_name) from funds", "spark",
     ("refused", "function(s) not allowed: strip_accents" + NOT_ALLOWED)),
    ("select strip_accents(fund_name) from funds", "duckdb",
     ("ok", "SELECT STRIP_ACCENTS(fund_name) FROM funds LIMIT 101")),
])
def test_functions_are_checked_by_the_name_written_in_the_dialects_list(catalog, sql, dialect,
                                                                         expected):
    assert outcome(sql, catalog, dialect=dialect) == expected


@pytest.mark.parametrize(("sql", "expected"), [
    ("select repeat('ab', 1000)", ("ok", "SELECT REPEAT('ab', 1000) LIMIT 101")),
    ("select repeat(['a'], 3)", ("ok", "SELECT REPEAT(['a'], 3) LIMIT 101")),
    ("select repeat('ab', 1001)", ("refused", REPEAT)),
    ("select repeat(fund_name, 3) from funds", ("refused", REPEAT)),
    ("select repeat('ab', fund_id) from funds", ("refused", f"{REPEAT}; {UNBOUNDED_REPEAT}")),
    ("select repeat('ab', -fund_id) from funds", ("refused", f"{REPEAT}; {UNBOUNDED_REPEAT}")),
    # a negative literal is a literal count (the size rule still refuses it: not a literal
    # size it can bound)
    ("select repeat('ab', -5000)", ("refused", UNBOUNDED_REPEAT)),
    ("select lpad(fund_name, 1000, ' ') from funds",
     ("ok", "SELECT LPAD(fund_name, 1000, ' ') FROM funds LIMIT 101")),
    ("select rpad(fund_name, 1001, ' ') from funds",
     ("refused", "rpad() needs a literal length of at most 1000")),
    ("select lpad(fund_name, fund_id, ' ') from funds",
     ("refused", "lpad() needs a literal length of at most 1000; pad() can build a string of up "
      "to unbounded characters; the limit is 100,000: do not nest or chain string builders "
      "(replace, ||, repeat) over built strings")),
    ("select printf('%5000d', 1)",
     ("refused", "printf() needs a literal pattern with widths under 1000")),
    ("select printf('%%1000d')", ("ok", "SELECT PRINTF('%%1000d') LIMIT 101")),
    ("select printf('%5d|%s', 1, 'a')", ("ok", "SELECT PRINTF('%5d|%s', 1, 'a') LIMIT 101")),
    ("select printf(5)", ("refused", "printf() needs a literal pattern with widths under 1000")),
    ("select printf(fund_name) from funds",
     ("refused", "printf() needs a literal pattern with widths under 1000")),
    ("select format('{:5000}', 1)",
     ("refused", "format() needs a literal pattern with widths under 1000")),
    ("select format('{:{}}', 'x', 5000)",  # a width from an argument
     ("refused", "format() needs a literal pattern with widths under 1000")),
    ("select format('{}-{:>10}', 1, 2)", ("ok", "SELECT FORMAT('{}-{:>10}', 1, 2) LIMIT 101")),
])
def test_built_sizes_must_be_small_literals(catalog, sql, expected):
    assert outcome(sql, catalog) == expected


# ------------------------------------------------------------------------ row cap


@pytest.mark.parametrize(("sql", "runnable"), [
    ("select * from funds", "SELECT * FROM funds LIMIT 3"),
    ("select * from funds limit 3", "SELECT * FROM funds LIMIT 3"),
    ("select * from funds limit 1", "SELECT * FROM funds LIMIT 1"),
    ("select * from funds limit 9", "SELECT * FROM funds LIMIT 3"),
    ("select * from funds offset 1",
     "SELECT * FROM (SELECT * FROM funds OFFSET 1) AS _fundbot_capped LIMIT 3"),
    ("select * from funds limit 2.5",
     "SELECT * FROM (SELECT * FROM funds LIMIT 2.5) AS _fundbot_capped LIMIT 3"),
    ("select * from funds limit (select 5)",
     "SELECT * FROM (SELECT * FROM funds LIMIT (SELECT 5)) AS _fundbot_capped LIMIT 3"),
    ("select * from funds limit 50 percent",
     "SELECT * FROM (SELECT * FROM funds LIMIT 50 PERCENT) AS _fundbot_capped LIMIT 3"),
    ("select * from funds limit 1 percent",
     "SELECT * FROM (SELECT * FROM funds LIMIT 1 PERCENT) AS _fundbot_capped LIMIT 3"),
])
def test_the_row_cap_keeps_a_smaller_literal_limit_and_wraps_the_rest(catalog, sql, runnable):
    assert outcome(sql, catalog, max_rows=2) == ("ok", runnable)


def test_a_percent_limit_keeps_its_meaning_under_the_cap(con, catalog):
    # LIMIT n PERCENT is a share of the rows, not n rows: the cap must bound it, not replace it
    for sql in ("select investment_id from investments order by 1 limit 50 percent",
                "select investment_id from investments order by 1 limit 10 percent"):
        runnable = check(sql, catalog, 5)
        assert con.execute(runnable).fetchall() == con.execute(sql).fetchall()


# --------------------------------------------------------------- tables and schemas


@pytest.mark.parametrize(("sql", "dialect", "expected"), [
    ("select * from range(1000000000)", "duckdb",
     ("refused", TABLE_FUNCTION.format("generate_series"))),
    ("select * from read_csv('/etc/passwd')", "duckdb",
     ("refused", TABLE_FUNCTION.format("read_csv"))),
    ("select * from a.b.c.d", "duckdb", ("refused", TABLE_FUNCTION.format("c.d"))),
    ("select * from other.funds", "duckdb",
     ("refused", "other.funds: only the tables of the main schema are available; drop the "
      "qualifier")),
    ("select * from main.funds", "duckdb", ("ok", "SELECT * FROM main.funds LIMIT 101")),
    # Spark has no "main": every qualifier is another schema or a file
    ("select * from main.funds", "spark",
     ("refused", "main.funds: only the tables of the warehouse schema are available; drop the "
      "qualifier")),
    ("select * from parquet.`/etc/passwd`", "spark",
     ("refused", "parquet.`/etc/passwd`: only the tables of the warehouse schema are "
      "available; drop the qualifier")),
])
def test_table_functions_and_qualifiers(catalog, sql, dialect, expected):
    assert outcome(sql, catalog, dialect=dialect) == expected


@pytest.mark.parametrize(("sql", "expected"), [
    ("select * from fundz",
     ("binder", f"unknown table fundz. Did you mean funds? Available tables: {TABLES}")),
    ("select * from zzzzzz", ("binder", f"unknown table zzzzzz. Available tables: {TABLES}")),
    # a column of an unknown table is not reported on top of the table
    ("select nope from fundz",
     ("binder", f"unknown table fundz. Did you mean funds? Available tables: {TABLES}")),
    ("select s.nope from (select z.* from fundz z) s",
     ("binder", f"unknown table fundz. Did you mean funds? Available tables: {TABLES}")),
    # a path or a system view is a refusal, not a typo
    ("select * from 'data/x.csv'",
     ("refused", "'data/x.csv' looks like a file path or URL; reading files is not allowed, "
      "only the catalogue tables")),
    ("select * from duckdb_columns",
     ("refused", f"unknown table duckdb_columns. Available tables: {TABLES}")),
])
def test_unknown_tables(catalog, sql, expected):
    assert outcome(sql, catalog) == expected


# ------------------------------------------------------------------- column lookup


def test_an_unknown_column_lists_every_table_in_scope(catalog):
    assert outcome("select nope from funds, companies", catalog) == (
        "binder", f"column nope does not exist; {COMPANIES_HAS}; {FUNDS_HAS}")


def test_columns_resolve_when_the_optimizer_gives_up(catalog):
    # USING a column neither side has makes sqlglot's qualify fail: the guard resolves the
    # unqualified tree itself (DuckDB then reports the USING column)
    using = "from funds join companies using (nope)"
    assert outcome(f"select fund_id * 2 as dbl {using} where dbl > 1", catalog) == (
        "ok", "SELECT fund_id * 2 AS dbl FROM funds JOIN companies USING (nope) WHERE dbl > 1 "
        "LIMIT 101")
    assert outcome(f"select fund_id * 2 as dbl {using} where DBL > 1", catalog)[0] == "ok"
    # an alias is not visible inside its own definition
    assert outcome(f"select dbl * 2 as dbl {using}", catalog) == (
        "binder", f"column dbl does not exist; {COMPANIES_HAS}; {FUNDS_HAS}")
    an = analyze(f"select fund_id * 2 as dbl, fund_name, status {using} where dbl > 1", catalog)
    assert an.columns == {("funds", "fund_id"), ("funds", "fund_name"), ("funds", "status"),
                          ("companies", "status")}
    assert an.unknown_columns == []
    an = analyze("select f.fund_name from funds f where exists (select 1 from companies c "
                 "join exits e using (nope) where vintage_year > 2000)", catalog)
    assert an.columns == {("funds", "fund_name"), ("funds", "vintage_year")}
    assert an.unknown_columns == []


def test_an_ambiguous_column_goes_to_every_table_that_has_it(catalog):
    an = analyze("select f.fund_name from funds f, investments i where fund_id = 1", catalog)
    assert an.columns == {("funds", "fund_name"), ("funds", "fund_id"),
                          ("investments", "fund_id")}
    # and from an outer scope, for a correlated subquery
    an = analyze("select 1 from funds f, investments i where exists "
                 "(select 1 from companies where fund_id = 1)", catalog)
    assert an.columns == {("funds", "fund_id"), ("investments", "fund_id")}
    assert an.unknown_columns == []


def test_columns_of_unknown_tables_and_struct_fields(catalog):
    an = analyze("select f.fund_name, z.x from funds f join fundz z on true", catalog)
    assert (an.tables, an.unknown_tables) == ({"funds"}, {"fundz"})
    assert an.columns == {("funds", "fund_name")} and an.unknown_columns == []
    # status.x reads a field of the column status (DuckDB decides whether it has one)
    an = analyze("select status.x from funds", catalog)
    assert an.columns == {("funds", "status")} and an.unknown_columns == []


def test_table_functions_are_listed_by_name(catalog):
    assert analyze("SELECT 1 FROM funds f JOIN read_csv('x') r ON true",
                   catalog).table_functions == {"read_csv"}
    assert analyze("SELECT 1 FROM funds f JOIN range(3) r ON true",
                   catalog).table_functions == {"generate_series"}


# ---------------------------------------------------------------------- analyze()


def test_analyze_reads_every_statement_in_the_dialect(catalog):
    an = analyze("select upper(fund_name) from funds; select lower(company_name) from "
                 "companies", catalog)
    assert an.functions == {"upper", "lower"}
    assert an.columns == {("funds", "fund_name"), ("companies", "company_name")}
    assert (analyze("", catalog).kind, analyze("-- c", catalog).kind) == ("empty", "empty")
    an = analyze("DROP TABLE FUNDS", catalog)
    assert (an.kind, an.tables) == ("drop", {"funds"})
    an = analyze("strlen('x')", catalog)
    assert (an.kind, an.functions) == ("anonymous", {"strlen"})
    # Spark: backticks, and names that are case-insensitive even when quoted
    an = analyze("SELECT `Fund_Name` FROM funds", catalog, "spark")
    assert an.columns == {("funds", "fund_name")}
    assert analyze("`foo bar`", catalog, "spark").kind == "command:`foo bar`"


def test_analyze_bounds_nesting_in_the_dialect(catalog):
    sql = "SELECT $$" + "(" * 35 + "1" + ")" * 35 + "$$ AS x FROM funds"
    with pytest.raises(QueryError) as info:
        analyze(sql, catalog, "spark")
    assert (info.value.kind, info.value.sql) == ("parse", sql)
    assert info.value.message == (
        "the SQL is nested too deeply (35 levels); the limit is 30 levels of parentheses, "
        "subqueries, CASE and NOT: use CTEs (WITH) and flatter conditions")
    assert analyze(sql, catalog).columns == set()  # one string to DuckDB


# -------------------------------------------------------------------------- Spark


@pytest.fixture(scope="module")
def spark(catalog):
    return dataclasses.replace(catalog, dialect="spark")


@pytest.mark.parametrize(("sql", "message"), [
    ("SELECT TRANSFORM(fund_name) USING 'cat' AS (x) FROM funds",
     "TRANSFORM ... USING runs a program on the cluster; it is not allowed"),
    ("SELECT /*+ REPARTITION(1000) */ * FROM funds",
     "query hints are not allowed; write the query without /*+ ... */"),
    ("SELECT count(*) FROM funds a CROSS JOIN funds b", NESTED_LOOP),
    ("SELECT count(*) FROM funds a, funds b", NESTED_LOOP),
    ("SELECT count(*) FROM funds a JOIN funds b ON a.fund_id < b.fund_id", NESTED_LOOP),
    ("SELECT count(*) FROM funds a JOIN funds b ON a.fund_id = 1", NESTED_LOOP),
    ("SELECT count(*) FROM funds a JOIN investments b USING (fund_id), companies c",
     NESTED_LOOP),
    # 17 concatenations over the projections: || once each, concat(5) 4, concat_ws(',', 5) 5
    ("SELECT " + ", ".join(["fund_name || 'x'"] * 8) + ", concat(fund_name, status, strategy, "
     "fund_name, status), concat_ws(',', fund_name, status, strategy, fund_name, status) "
     "FROM funds", CONCATENATIONS),
    ("SELECT " + ", ".join(["fund_name || 'x'"] * 17) + " FROM funds", CONCATENATIONS),
])
def test_spark_refusals(spark, sql, message):
    assert outcome(sql, spark, dialect="spark") == ("refused", message)


@pytest.mark.parametrize(("sql", "runnable"), [
    ("SELECT count(*) FROM funds a JOIN investments b ON a.fund_id = b.fund_id",
     "SELECT COUNT(*) FROM funds AS a JOIN investments AS b ON a.fund_id = b.fund_id LIMIT 101"),
    ("SELECT count(*) FROM funds a, investments b WHERE a.fund_id = b.fund_id",
     "SELECT COUNT(*) FROM funds AS a CROSS JOIN investments AS b WHERE a.fund_id = b.fund_id "
     "LIMIT 101"),
    ("SELECT count(*) FROM funds a JOIN investments b USING (fund_id) JOIN companies c "
     "USING (company_id)",
     "SELECT COUNT(*) FROM funds AS a JOIN investments AS b USING (fund_id) JOIN companies AS c "
     "USING (company_id) LIMIT 101"),
    ("SELECT a.fund_id, x.n FROM funds a JOIN LATERAL (SELECT count(*) AS n FROM investments i "
     "WHERE i.fund_id = a.fund_id) x",
     "SELECT a.fund_id, x.n FROM funds AS a JOIN LATERAL (SELECT COUNT(*) AS n FROM investments "
     "AS i WHERE i.fund_id = a.fund_id) AS x ON TRUE LIMIT 101"),
    # exactly 16 concatenations: || 8, concat(one) 0, concat(5) 4, concat_ws(',', 4) 4
    ("SELECT " + ", ".join(["fund_name || 'x'"] * 8) + ", concat(fund_name), concat(fund_name, "
     "status, strategy, fund_name, status), concat_ws(',', fund_name, status, strategy, "
     "fund_name) FROM funds",
     "SELECT " + ", ".join(["fund_name || 'x'"] * 8) + ", CONCAT(fund_name), CONCAT(fund_name, "
     "status, strategy, fund_name, status), CONCAT_WS(',', fund_name, status, strategy, "
     "fund_name) FROM funds LIMIT 101"),
])
def test_spark_keyed_joins_and_few_concatenations_pass(spark, sql, runnable):
    assert outcome(sql, spark, dialect="spark") == ("ok", runnable)
