"""The SQL guard: refusals, acceptances (checked by running them), analysis, row cap."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from schemas.catalog import build_catalog
from states.guard import ALLOWED_FUNCTIONS, analyze, check
from states.ports import QueryError
from tests.warehouse_fixture import make_db

CAP = 1000


@pytest.fixture(scope="module")
def con(tmp_path_factory):
    path = make_db(tmp_path_factory.mktemp("guard") / "fund.duckdb")
    c = duckdb.connect(path, read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="module")
def catalog(con):
    return build_catalog(con, {})


def _rows(con, sql: str) -> list[str]:
    """Rows as comparable text; floats to 12 digits (sqlglot writes log2(x) as log(2, x))."""
    def norm(v):
        return f"{v:.12g}" if isinstance(v, float) else repr(v)

    return sorted(repr(tuple(norm(v) for v in r)) for r in con.execute(sql).fetchall())


# ---------------------------------------------------------------------- refusals

HOSTILE = [
    # DML / DDL
    ("insert into funds values (9, 'x', 2020, 1, 'x', 'x')", "INSERT"),
    ("update funds set status = 'closed'", "UPDATE"),
    ("delete from funds", "DELETE"),
    ("drop table funds", "DROP"),
    ("create table x as select 1", "CREATE"),
    ("create temp table x as select * from funds", "CREATE"),
    ("create view v as select * from funds", "CREATE"),
    ("create macro m(a) as a", "CREATE"),
    ("alter table funds add column x int", "ALTER"),
    ("truncate funds", "TRUNCATE"),
    ("update funds set status = 'x' returning *", "UPDATE"),
    ("with d as (delete from funds returning *) select * from d", "DELETE"),
    ("select * into newt from funds", "INTO"),
    # several statements, some hidden after comments
    ("select 1; drop table funds", "exactly one statement"),
    ("select 1; -- harmless\ndelete from funds", "exactly one statement"),
    ("select * from funds /* ; */ ; select 2", "exactly one statement"),
    ("SELECT * FROM FUNDS; DROP TABLE FUNDS; --", "exactly one statement"),
    ("select 1; export database '/tmp/x'", "exactly one statement"),
    # the database and the session
    ("attach '/tmp/x.duckdb' as x", "ATTACH"),
    ("detach x", "DETACH"),
    ("copy funds to '/tmp/funds.csv'", "COPY"),
    ("copy (select * from funds) to '/tmp/f.parquet' (format parquet)", "COPY"),
    ("export database '/tmp/exp'", "EXPORT"),
    ("import database '/tmp/exp'", "IMPORT"),
    ("install httpfs", "INSTALL"),
    ("load httpfs", "LOAD"),
    ("set memory_limit = '100GB'", "SET"),
    ("set enable_external_access = true", "SET"),
    ("reset memory_limit", "RESET"),
    ("pragma database_list", "PRAGMA"),
    ("call pragma_version()", "CALL"),
    ("vacuum", "VACUUM"),
    ("checkpoint", "CHECKPOINT"),
    ("explain select * from funds", "EXPLAIN"),
    ("describe funds", "DESCRIBE"),
    ("summarize funds", "SUMMARIZE"),
    ("show tables", "SHOW"),
    ("use memory", "USE"),
    ("begin transaction", "TRANSACTION"),
    ("values (1), (2)", "VALUES"),
    ("pivot funds on strategy using sum(committed_capital_usd)", "PIVOT"),
    # files, table functions, system catalogues
    ("select * from read_csv('/etc/passwd')", "read_csv"),
    ("select * from read_csv_auto('/etc/passwd')", "read_csv_auto"),
    ("select * from read_csv(['/etc/passwd'])", "read_csv"),
    ("select * from read_parquet('x.parquet')", "read_parquet"),
    ("select * from read_json('x.json')", "read_json"),
    ("select * from read_json_auto('x.json')", "read_json_auto"),
    ("select * from read_text('/etc/passwd')", "read_text"),
    ("select * from read_blob('/etc/passwd')", "read_blob"),
    ("select * from glob('/etc/*')", "glob"),
    ("select * from parquet_scan('x.parquet')", "parquet_scan"),
    ("select * from sniff_csv('/etc/passwd')", "sniff_csv"),
    ("select * from '/etc/passwd'", "file path"),
    ("select * from 'https://example.com/x.csv'", "file path"),
    ("select * from query('select 1')", "query"),
    ("select * from query_table('funds')", "query_table"),
    ("select * from duckdb_settings()", "duckdb_settings"),
    ("select * from duckdb_tables()", "duckdb_tables"),
    ("select * from duckdb_secrets()", "duckdb_secrets"),
    ("select * from pragma_table_info('funds')", "pragma_table_info"),
    ("select * from range(1000000000)", "table function"),
    ("select * from generate_series(1, 10)", "table function"),
    ("select * from funds, unnest([1, 2, 3])", "table function"),
    ("select * from funds join read_text('/etc/hosts') on true", "read_text"),
    ("select (select content from read_text('/etc/passwd'))", "read_text"),
    ("with x as (select * from read_csv('/etc/passwd')) select * from x", "read_csv"),
    ("select * from information_schema.tables", "main schema"),
    ("select * from other.main.funds", "main schema"),
    ("select * from temp.funds", "main schema"),
    # unknown names
    ("select * from duckdb_columns", "unknown table"),
    ("select * from sqlite_master", "unknown table"),
    # functions outside the vocabulary
    ("select getenv('HOME')", "getenv"),
    ("select current_setting('memory_limit')", "current_setting"),
    ("select version()", "version"),
    ("select range(10)", "range"),
    ("select \"read_csv\"('/etc/passwd')", "read_csv"),
    ("select error('boom')", "error"),
    ("select list_transform([1, 2], x -> x + 1)", "list_transform"),
    ("select columns('.*') from funds", "columns"),
    ("select uuid()", "uuid"),
    ("select txid_current()", "txid_current"),
    # constructs refused on purpose
    ("with recursive r(n) as (select 1 union all select n + 1 from r) select * from r",
     "RECURSIVE"),
    ("select * from funds pivot (sum(committed_capital_usd) for strategy in ('Growth'))",
     "PIVOT"),
    ("select * from funds where fund_id = $1", "parameters"),
    ("select * from funds where fund_id = ?", "parameters"),
    ("", "empty"),
    ("-- only a comment", "no statement"),
]


@pytest.mark.parametrize(("sql", "fragment"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_refused(catalog, sql, fragment):
    with pytest.raises(QueryError) as info:
        check(sql, catalog, CAP)
    assert info.value.kind == "refused"
    assert fragment.lower() in info.value.message.lower()
    assert info.value.sql == sql


def test_there_are_enough_hostile_cases():
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize("sql", ["select 'unterminated", "selec * from funds", "select (1"])
def test_parse_errors(catalog, sql):
    with pytest.raises(QueryError) as info:
        check(sql, catalog, CAP)
    assert info.value.kind == "parse"
    assert "\x1b" not in info.value.message  # no terminal colour codes for the model


def test_unknown_column_lists_the_valid_columns(catalog):
    with pytest.raises(QueryError) as info:
        check("select i.amount from investments i", catalog, CAP)
    msg = info.value.message
    assert "i.amount does not exist" in msg
    for col in ("amount_usd", "investment_date", "ownership_pct", "round_name"):
        assert col in msg


def test_recursive_refusal_says_why(catalog):
    with pytest.raises(QueryError) as info:
        check("with recursive t(n) as (select 1 union all select n+1 from t where n < 5) "
              "select n from t", catalog, CAP)
    assert "without bound" in info.value.message


def test_several_problems_reported_at_once(catalog):
    with pytest.raises(QueryError) as info:
        check("select nope, getenv('X') from fundz", catalog, CAP)
    assert "fundz" in info.value.message and "getenv" in info.value.message


def test_allow_list_has_no_dangerous_names():
    dangerous = {"read_csv", "read_text", "read_blob", "read_parquet", "read_json", "glob",
                 "query", "query_table", "getenv", "current_setting", "range",
                 "generate_series", "error", "sniff_csv", "parquet_scan", "unnest"}
    assert not dangerous & ALLOWED_FUNCTIONS
    assert all(name == name.lower() for name in ALLOWED_FUNCTIONS)


# ------------------------------------------------------------------- acceptances

ACCEPTED = [
    "select * from funds",
    "from funds",
    ("select f.fund_name, sum(i.amount_usd) as invested from funds f join investments i "
    "on i.fund_id = f.fund_id group by all order by invested desc"),
    ("with latest as (select company_id, fund_id, fair_value_usd, row_number() over "
    "(partition by company_id, fund_id order by valuation_date desc) rn from valuations) "
    "select c.company_name, sum(fair_value_usd) from latest join companies c "
    "using (company_id) where rn = 1 group by c.company_name"),
    ("select company_id, fund_id, fair_value_usd from valuations qualify row_number() over "
    "(partition by company_id, fund_id order by valuation_date desc) = 1"),
    "select company_name from companies union select fund_name from funds order by 1",
    "select company_name from companies union all select fund_name from funds",
    ("select company_name from companies intersect select company_name from companies "
    "where sector = 'Fintech'"),
    ("select company_name from companies except select company_name from companies "
    "where status = 'exited'"),
    ("select full_name from general_partners "
    "where jaro_winkler_similarity(lower(first_name), 'adam') > 0.9"),
    ("select company_name, levenshtein(lower(company_name), 'databricks') d from companies "
    "order by d, company_name limit 3"),
    "select date_trunc('year', investment_date) y, count(*) from investments group by 1",
    ("select year(investment_date), quarter(investment_date), month(investment_date), "
    "date_diff('day', investment_date, current_date) from investments"),
    ("select strftime(investment_date, '%Y-%m'), extract(year from investment_date), "
    "date_part('month', investment_date), last_day(investment_date) from investments"),
    ("select fund_name from funds where fund_id in "
    "(select fund_id from investments where amount_usd > 10000000)"),
    ("select fund_name from funds f where exists (select 1 from investments i "
    "where i.fund_id = f.fund_id and amount_usd > 1)"),
    ("select i.*, c.company_name from investments i join companies c "
    "on c.company_id = i.company_id"),
    "select * exclude (email) from general_partners",
    ("select sum(amount_usd) filter (where round_name = 'Series A') as series_a "
    "from investments"),
    "select fund_name, vintage_year from funds order by committed_capital_usd desc limit 2",
    ("select count(*) from investments i, valuations v "
    "where i.company_id = v.company_id and i.fund_id = v.fund_id"),
    ("select c.company_name, (select max(v.fair_value_usd) from valuations v "
    "where v.company_id = c.company_id) as top_mark from companies c"),
    ("select * from (select fund_id, count(*) n from investments group by fund_id) t "
    "where t.n > 1"),
    "select t.x from (values (1), (2)) t(x)",
    "select fund_name from funds;",
    "select fund_name from funds -- trailing comment",
    "select fund_name from funds /* block ; comment */ where status = 'investing'",
    'SELECT "Fund_Name" FROM "FUNDS"',
    "select fund_name from main.funds",
    "select sum(amount_usd) as total from investments having total > 0",
    ("select investment_date + interval 30 day, amount_usd * 2 as dbl, dbl + 1 "
    "from investments"),
    "select company_name, case sector when 'Fintech' then 'F' else 'O' end from companies",
    "select fund_id, count(*) from investments group by rollup (fund_id)",
    ("select g.full_name, count(*) as deals from investments i join general_partners g "
    "on g.gp_id = i.lead_gp_id group by all order by deals desc, g.full_name"),
    ("select company_id, sum(amount_usd) over (partition by company_id order by "
    "investment_date rows between unbounded preceding and current row) from investments"),
    ("select company_id, lag(amount_usd) over w, lead(amount_usd) over w from investments "
    "window w as (partition by company_id order by investment_date)"),
    ("select e.exit_type, e.proceeds_usd / nullif(i.amount_usd, 0) as multiple from exits e "
    "join investments i using (fund_id, company_id)"),
    ("select company_name from companies where company_name ilike '%data%' "
    "or company_name like 'S%' or regexp_matches(company_name, 'SE$')"),
    ("select distinct on (company_id) company_id, valuation_date, fair_value_usd "
    "from valuations order by company_id, valuation_date desc"),
    "select coalesce(end_date, current_date) - start_date as days from general_partners",
    ("select status, count(*) from companies group by status having count(*) >= 1 "
    "order by all"),
    "select fund_id from investments limit 10 offset 2",
]


def test_there_are_enough_accepted_cases():
    assert len(ACCEPTED) >= 30


@pytest.mark.parametrize("sql", ACCEPTED, ids=[a[:40] for a in ACCEPTED])
def test_accepted_and_same_result(con, catalog, sql):
    runnable = check(sql, catalog, CAP)
    assert "LIMIT" in runnable.upper()
    assert _rows(con, runnable) == _rows(con, sql)


# Every function of the analytic vocabulary, written the way an analyst writes it.
VOCABULARY = {
    # aggregates and statistics
    "sum": "sum(amount_usd)", "avg": "avg(amount_usd)", "count": "count(*)",
    "count distinct": "count(distinct company_id)", "min": "min(amount_usd)",
    "max": "max(amount_usd)", "median": "median(amount_usd)",
    "quantile_cont": "quantile_cont(amount_usd, 0.9)",
    "quantile_disc": "quantile_disc(amount_usd, 0.5)", "stddev": "stddev(amount_usd)",
    "stddev_samp": "stddev_samp(amount_usd)", "stddev_pop": "stddev_pop(amount_usd)",
    "var_samp": "var_samp(amount_usd)", "var_pop": "var_pop(amount_usd)",
    "variance": "variance(amount_usd)", "corr": "corr(amount_usd, ownership_pct)",
    "arg_max": "arg_max(company_id, amount_usd)", "arg_min": "arg_min(company_id, amount_usd)",
    "max_by": "max_by(company_id, amount_usd)", "min_by": "min_by(company_id, amount_usd)",
    "string_agg": "string_agg(round_name, ', ' order by round_name)",
    "string_agg plain": "string_agg(round_name, ', ')", "list": "list(round_name)",
    "array_agg": "array_agg(round_name)", "first": "first(company_id)",
    "last": "last(company_id)", "any_value": "any_value(round_name)",
    "mode": "mode(round_name)", "approx_count_distinct": "approx_count_distinct(company_id)",
    "bool_and": "bool_and(amount_usd > 0)", "bool_or": "bool_or(amount_usd > 1e8)",
    "count_if": "count_if(amount_usd > 1e7)", "product": "product(ownership_pct)",
    "filter": "sum(amount_usd) filter (where fund_id = 1)",
    # window functions
    "row_number": "row_number() over (order by amount_usd)",
    "rank": "rank() over (order by amount_usd)",
    "dense_rank": "dense_rank() over (order by amount_usd)",
    "percent_rank": "percent_rank() over (order by amount_usd)",
    "cume_dist": "cume_dist() over (order by amount_usd)",
    "ntile": "ntile(4) over (order by amount_usd)",
    "lag": "lag(amount_usd) over (order by investment_date)",
    "lead": "lead(amount_usd, 1) over (order by investment_date)",
    "first_value": "first_value(amount_usd) over (partition by fund_id order by amount_usd)",
    "last_value": "last_value(amount_usd) over (partition by fund_id order by amount_usd)",
    "nth_value": "nth_value(amount_usd, 2) over (order by amount_usd)",
    "sum over": "sum(amount_usd) over (partition by fund_id)",
    # date and time
    "date_trunc": "date_trunc('month', investment_date)",
    "date_part": "date_part('year', investment_date)",
    "datepart": "datepart('year', investment_date)",
    "extract": "extract(quarter from investment_date)", "year": "year(investment_date)",
    "quarter": "quarter(investment_date)", "month": "month(investment_date)",
    "day": "day(investment_date)", "dayofweek": "dayofweek(investment_date)",
    "dayofyear": "dayofyear(investment_date)", "week": "week(investment_date)",
    "weekofyear": "weekofyear(investment_date)", "isodow": "isodow(investment_date)",
    "monthname": "monthname(investment_date)", "dayname": "dayname(investment_date)",
    "date_diff": "date_diff('day', investment_date, date '2024-01-01')",
    "datediff": "datediff('month', investment_date, date '2024-01-01')",
    "date_sub": "date_sub('day', investment_date, date '2024-01-01')",
    "date_add": "date_add(investment_date, interval 1 month)",
    "age": "age(date '2024-01-01', investment_date)", "make_date": "make_date(2020, 1, 1)",
    "make_timestamp": "make_timestamp(2020, 1, 1, 0, 0, 0)",
    "strftime": "strftime(investment_date, '%Y-%m')",
    "strptime": "strptime('2020-01-31', '%Y-%m-%d')", "current_date": "current_date",
    "today": "today()", "last_day": "last_day(investment_date)",
    "epoch": "epoch(investment_date)", "epoch_ms": "epoch_ms(investment_date)",
    "time_bucket": "time_bucket(interval 3 month, investment_date)",
    "interval arithmetic": "investment_date - interval 1 year",
    "to_days": "investment_date + to_days(10)",
    # strings
    "lower": "lower(company_name)", "upper": "upper(company_name)",
    "trim": "trim(company_name)", "ltrim": "ltrim(company_name)",
    "rtrim": "rtrim(company_name)", "length": "length(company_name)",
    "substr": "substr(company_name, 1, 3)", "substring": "substring(company_name, 1, 3)",
    "replace": "replace(company_name, ', Inc.', '')",
    "concat": "concat(hq_city, ', ', hq_country)",
    "concat_ws": "concat_ws(' / ', sector, hq_country)", "dpipe": "hq_city || '!'",
    "split_part": "split_part(company_name, ',', 1)",
    "starts_with": "starts_with(company_name, 'D')",
    "ends_with": "ends_with(company_name, 'SE')", "contains": "contains(company_name, 'Inc')",
    "regexp_matches": "regexp_matches(company_name, 'Inc')",
    "regexp_replace": "regexp_replace(company_name, '[,.]', '', 'g')",
    "regexp_extract": "regexp_extract(company_name, '^(\\w+)', 1)",
    "like": "company_name like 'D%'", "ilike": "company_name ilike '%data%'",
    "jaro_winkler_similarity": "jaro_winkler_similarity(company_name, 'Databricks')",
    "jaro_similarity": "jaro_similarity(company_name, 'Databricks')",
    "jaccard": "jaccard(company_name, 'Databricks')",
    "levenshtein": "levenshtein(company_name, 'Databricks')",
    "damerau_levenshtein": "damerau_levenshtein(company_name, 'Databricks')",
    "hamming": "hamming('abc', 'abd')", "lpad": "lpad(hq_country, 10, ' ')",
    "rpad": "rpad(hq_country, 10, '.')", "left": "left(company_name, 4)",
    "right": "right(company_name, 4)", "strip_accents": "strip_accents(hq_city)",
    "format": "format('{} in {}', company_name, hq_city)",
    "printf": "printf('%s (%d)', company_name, founded_year)",
    "reverse": "reverse(company_name)", "position": "position('a' in company_name)",
    "strpos": "strpos(company_name, 'a')",
    # math
    "round": "round(ownership_pct, 2)", "floor": "floor(ownership_pct * 100)",
    "ceil": "ceil(ownership_pct)", "ceiling": "ceiling(ownership_pct)",
    "abs": "abs(ownership_pct - 1)", "ln": "ln(founded_year)", "log": "log(founded_year)",
    "log10": "log10(founded_year)", "log2": "log2(founded_year)", "exp": "exp(1)",
    "power": "power(founded_year, 2)", "pow": "pow(founded_year, 2)",
    "sqrt": "sqrt(founded_year)", "greatest": "greatest(founded_year, 2012)",
    "least": "least(founded_year, 2012)", "sign": "sign(founded_year - 2012)",
    "mod": "founded_year % 4", "int div": "founded_year // 10", "trunc": "trunc(1.5)",
    # conditionals and casts
    "coalesce": "coalesce(hq_city, 'n/a')", "nullif": "nullif(hq_city, '')",
    "ifnull": "ifnull(hq_city, 'n/a')", "if": "if(founded_year > 2011, 'new', 'old')",
    "case": "case when founded_year > 2011 then 'new' else 'old' end",
    "cast": "cast(founded_year as varchar)", "try_cast": "try_cast(hq_city as integer)",
    "double colon": "founded_year::double",
    "between": "founded_year between 2010 and 2012", "in list": "sector in ('Fintech')",
    "is distinct": "hq_city is distinct from 'Munich'",
}


@pytest.mark.parametrize("expr", list(VOCABULARY.values()), ids=list(VOCABULARY))
def test_vocabulary_is_allowed_and_runs(con, catalog, expr):
    sql = (f"select {expr} as v from investments join companies using (company_id) "
           "join general_partners on gp_id = lead_gp_id")
    runnable = check(sql, catalog, CAP)
    assert _rows(con, runnable) == _rows(con, sql)


# ---------------------------------------------------------------------- analysis


def test_analyze_resolves_aliases(catalog):
    an = analyze("select f.fund_name, i.amount_usd from funds f join investments i "
                 "on i.fund_id = f.fund_id", catalog)
    assert an.tables == {"funds", "investments"}
    assert an.columns == {("funds", "fund_name"), ("funds", "fund_id"),
                          ("investments", "amount_usd"), ("investments", "fund_id")}
    assert an.kind == "select" and an.statement_count == 1


def test_analyze_resolves_ctes_to_base_tables(catalog):
    an = analyze("with big as (select company_id, amount_usd from investments "
                 "where amount_usd > 1) select c.company_name, b.amount_usd from big b "
                 "join companies c on c.company_id = b.company_id", catalog)
    assert an.tables == {"investments", "companies"}
    assert "big" not in an.tables
    assert an.columns == {("investments", "company_id"), ("investments", "amount_usd"),
                          ("companies", "company_name"), ("companies", "company_id")}


def test_analyze_subqueries_and_correlation(catalog):
    an = analyze("select company_name from companies c where exists (select 1 from exits e "
                 "where e.company_id = c.company_id) and company_id in "
                 "(select company_id from valuations where fair_value_usd > 0)", catalog)
    assert an.tables == {"companies", "exits", "valuations"}
    assert ("exits", "company_id") in an.columns
    assert ("valuations", "fair_value_usd") in an.columns
    assert ("companies", "company_name") in an.columns


def test_analyze_star_expands_to_all_columns(catalog):
    an = analyze("select * from funds", catalog)
    assert an.columns == {("funds", c) for c in catalog.tables["funds"].columns}
    an = analyze("select e.* from exits e join funds f using (fund_id)", catalog)
    assert {("exits", c) for c in catalog.tables["exits"].columns} <= an.columns
    assert ("funds", "fund_name") not in an.columns


def test_analyze_union_branches(catalog):
    an = analyze("select company_name as n from companies union "
                 "select fund_name from funds order by n", catalog)
    assert an.tables == {"companies", "funds"}
    assert an.columns == {("companies", "company_name"), ("funds", "fund_name")}
    assert an.kind == "union"


def test_analyze_unqualified_columns_go_to_their_table(catalog):
    an = analyze("select company_name, amount_usd, round_name from investments "
                 "join companies using (company_id)", catalog)
    assert ("companies", "company_name") in an.columns
    assert ("investments", "amount_usd") in an.columns
    assert ("investments", "round_name") in an.columns
    assert ("companies", "amount_usd") not in an.columns


def test_analyze_functions_and_output_aliases(catalog):
    an = analyze("select date_trunc('year', investment_date) as y, sum(amount_usd) total "
                 "from investments group by y order by total", catalog)
    assert {"date_trunc", "sum"} <= an.functions
    assert an.columns == {("investments", "investment_date"), ("investments", "amount_usd")}
    assert not an.unknown_columns


def test_analyze_reports_unknowns_without_raising(catalog):
    an = analyze("select f.nope, bogus from funds f join fundz z on true", catalog)
    assert "fundz" in an.unknown_tables
    assert any("f.nope" in m for m in an.unknown_columns)
    assert an.tables == {"funds"}


def test_analyze_counts_statements(catalog):
    an = analyze("select fund_name from funds; select company_name from companies", catalog)
    assert an.statement_count == 2 and an.kind == "multiple"
    assert an.tables == {"funds", "companies"}
    assert analyze("drop table funds", catalog).kind == "drop"


def test_analyze_parse_error(catalog):
    with pytest.raises(QueryError) as info:
        analyze("select from where", catalog)
    assert info.value.kind == "parse"


# ----------------------------------------------------------------------- row cap


def test_cap_added_when_missing(con, catalog):
    runnable = check("select * from investments order by amount_usd desc", catalog, 2)
    assert runnable.rstrip().upper().endswith("LIMIT 3")
    rows = con.execute(runnable).fetchall()
    assert len(rows) == 3 and rows[0][6] == max(r[6] for r in rows)


def test_smaller_limit_kept_and_bigger_limit_capped(con, catalog):
    assert check("select * from funds limit 1", catalog, 5).upper().endswith("LIMIT 1")
    runnable = check("select * from investments limit 5000", catalog, 2)
    assert len(con.execute(runnable).fetchall()) == 3


def test_cap_on_union_and_offset(con, catalog):
    runnable = check("select company_name from companies union all "
                     "select fund_name from funds", catalog, 2)
    assert len(con.execute(runnable).fetchall()) == 3
    runnable = check("select investment_id from investments order by 1 limit 10 offset 1",
                     catalog, 2)
    assert [r[0] for r in con.execute(runnable).fetchall()] == [2, 3, 4]


def test_cap_wraps_a_computed_limit(con, catalog):
    runnable = check("select investment_id from investments limit (select 5)", catalog, 2)
    assert len(con.execute(runnable).fetchall()) == 3


# ------------------------------------------------ the allow-list, pinned and audited

SNAPSHOT = Path(__file__).with_name("allowed_functions.txt")
# DuckDB names that read the clock, not the system: allowed on purpose
_CLOCK = {"current_date", "current_timestamp", "current_localtime", "current_localtimestamp",
          "get_current_time", "get_current_timestamp", "today", "now"}
# system state, settings, files, network, sessions, sequences, side effects (as name parts)
_SYSTEM = re.compile(
    r"^(current_|get|set|pg_|duckdb_|has_|txid|read_|sniff_|parquet_|json_execute|glob|http"
    r"|sleep|error|write_|nextval|currval|version|user|session_user|which_secret|load_|install_"
    r"|enable_|disable_|checkpoint|force_)"
    r"|setting|variable|secret|extension|file|path|schema|database|catalog|privilege|_scan$"
    r"|_log$|query|env")


def _snapshot() -> dict[str, str]:
    rows = [line.split() for line in SNAPSHOT.read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    return {name: origin for name, origin in rows}


_TABLE_KINDS = {"table", "table_macro", "pragma"}  # file readers, catalogues, PRAGMAs


def _duckdb_catalogue() -> dict[str, tuple[set[str], bool]]:
    """DuckDB's own functions: name -> (its function types, volatile or with side effects)."""
    with duckdb.connect() as con:
        rows = con.execute(
            "SELECT function_name, list(DISTINCT function_type), "
            "bool_or(has_side_effects OR coalesce(stability = 'VOLATILE', false)) "
            "FROM duckdb_functions() GROUP BY ALL").fetchall()
    return {name: (set(kinds), risky) for name, kinds, risky in rows}


def test_allow_list_matches_the_reviewed_snapshot():
    pinned = _snapshot()
    added, removed = sorted(ALLOWED_FUNCTIONS - set(pinned)), sorted(set(pinned) -
                                                                     ALLOWED_FUNCTIONS)
    assert not added and not removed, (
        f"the allow-list changed without a review: added {added}, removed {removed}; "
        f"review them and update {SNAPSHOT.name}")


def test_snapshot_origins_hold_for_this_duckdb_and_sqlglot():
    catalogue = _duckdb_catalogue()
    sqlglot_names = {n.lower() for f in exp.ALL_FUNCTIONS for n in f.sql_names()}
    actual = {name: "duckdb" if name in catalogue else "sqlglot" if name in sqlglot_names
              else "neither" for name in _snapshot()}
    assert actual == _snapshot()


def test_no_allowed_function_is_a_system_settings_file_or_network_function():
    catalogue = _duckdb_catalogue()
    flagged = {}
    for name in ALLOWED_FUNCTIONS - _CLOCK:
        kinds, risky = catalogue.get(name, (set(), False))
        if kinds and kinds <= _TABLE_KINDS:  # repeat() is a table function and a scalar
            flagged[name] = f"only a {'/'.join(sorted(kinds))} function"
        elif risky:
            flagged[name] = "volatile or with side effects"
        elif _SYSTEM.search(name):
            flagged[name] = "named like a system, settings, file or network function"
    assert flagged == {}


def test_the_audit_flags_what_it_must():
    catalogue = _duckdb_catalogue()
    for name in ("getvariable", "current_setting", "getenv", "read_text", "glob", "version",
                 "current_schema", "duckdb_settings", "pg_sleep", "sleep_ms", "nextval",
                 "write_log", "which_secret", "parquet_scan", "query", "current_user",
                 "random"):
        kinds, risky = catalogue.get(name, (set(), False))
        assert (kinds and kinds <= _TABLE_KINDS) or risky or _SYSTEM.search(name), name


# ------------------------------------------- column resolution: what the guard can see

FUNDS_HAS = ("funds has: committed_capital_usd, fund_id, fund_name, status, strategy, "
             "vintage_year")


@pytest.mark.parametrize("sql,message", [
    ("select nope from funds", f"column nope does not exist; {FUNDS_HAS}"),
    ("select nope", "column nope does not exist; no table is in scope"),
    # an alias is not visible inside its own definition
    ("select nope + 1 as nope from funds", f"column nope does not exist; {FUNDS_HAS}"),
    ("select y from (select fund_id as x from funds) s",
     "column y does not exist; no table is in scope"),
    ("select s.y from (select fund_id as x from funds) s", "column s.y does not exist; s has: x"),
    ("with c(a, b) as (select fund_id, fund_name from funds) select c.z from c",
     "column c.z does not exist; c has: a, b, fund_id, fund_name"),
    ("select q.fund_id from funds", "q.fund_id: q is not a table or alias in this query"),
    ("select f.nope from funds f", f"column f.nope does not exist; {FUNDS_HAS}"),
])
def test_unknown_columns_are_binder_errors_that_say_what_exists(catalog, sql, message):
    with pytest.raises(QueryError) as info:
        check(sql, catalog, CAP)
    assert info.value.kind == "binder" and info.value.message == message


@pytest.mark.parametrize("sql", [
    "select fund_id * 2 as dbl from funds where dbl > 1 order by dbl",
    "select fund_id as k from funds union all select company_id from companies order by k",
    "select fund_id, row_number() over (order by fund_id) as rn from funds qualify rn = 1",
    "select x from (select fund_id as x from funds)",
    "select s.x from (select fund_id as x from funds) s",
    "select v.y from (values (1), (2)) v(y)",
    "with c(a, b) as (select fund_id, fund_name from funds) select a, b from c",
    "select fund_name from funds where exists (select 1 from investments "
    "where amount_usd > 0 and fund_name is not null)",
])
def test_names_from_aliases_subqueries_and_outer_scopes_are_accepted(catalog, sql):
    check(sql, catalog, CAP)

# ======================================================================
# The guard's less travelled paths, each pinned by its exact outcome (the refusal's
# kind and message, or the SQL that runs); written against the survivors of
# `python -m tests.mutate guard`.

TABLES = "companies, exits, funds, general_partners, investments, valuations"
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
    assert outcome("select `a;b`; export database '/tmp/x'", catalog, dialect="spark") == (
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
    # Spark calls sqlglot builds without the written name: matched by sqlglot's own names
    ("select percentile(amount_usd, 0.5) from investments", "spark",
     ("ok", "SELECT PERCENTILE(amount_usd, 0.5) FROM investments LIMIT 101")),
    ("select position('a', fund_name), position('a' in fund_name) from funds", "spark",
     ("ok", "SELECT LOCATE('a', fund_name), LOCATE('a', fund_name) FROM funds LIMIT 101")),
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
    ("select * from a.b.`c-d`.e", "spark", ("refused", TABLE_FUNCTION.format("`c-d`.e"))),
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
    # CTE column lists and derived tables, on the same unqualified tree
    assert outcome("select t.z from (select fund_id, fund_name from funds) t(a, b) join "
                   "companies using (nope)", catalog) == (
        "binder", "column t.z does not exist; t has: a, b, fund_id, fund_name")
    cte = "with c(a, b) as (select fund_id, fund_name from funds) select"
    assert outcome(f"{cte} c.a from c join companies using (nope)", catalog)[0] == "ok"
    assert outcome(f"{cte} c.z from c join companies using (nope)", catalog) == (
        "binder", "column c.z does not exist; c has: a, b, fund_id, fund_name")
    derived = "from (select fund_id as x from funds) t join companies using (nope)"
    assert outcome(f"select x {derived}", catalog)[0] == "ok"
    assert outcome(f"select y {derived}", catalog) == (
        "binder", f"column y does not exist; {COMPANIES_HAS}")
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
    an = analyze("select z.x, f.fund_name from funds f join fundz z on true", catalog)
    assert (an.tables, an.unknown_tables) == ({"funds"}, {"fundz"})
    assert an.columns == {("funds", "fund_name")} and an.unknown_columns == []
    # status.x reads a field of the column status (DuckDB decides whether it has one)
    an = analyze("select status.x from funds", catalog)
    assert an.columns == {("funds", "status")} and an.unknown_columns == []
    # also when the optimizer gave up and the guard reads the unqualified tree
    an = analyze("select status.x from funds join companies using (nope)", catalog)
    assert an.columns == {("funds", "status")} and an.unknown_columns == []


def test_tables_are_still_listed_when_the_scope_walk_fails(catalog):
    # a repeated alias makes sqlglot's scope walk raise: the plain table list remains, without
    # CTE names (in any case) or table functions
    sql = ("with w as (select 1 as x) select fund_name from FUNDS where fund_id in "
           "(select x from W, Fundz f, fundz f, read_csv('y') r)")
    an = analyze(sql, catalog)
    assert (an.tables, an.unknown_tables) == ({"funds"}, {"fundz"})
    assert outcome(sql.replace(", read_csv('y') r", ""), catalog) == (
        "binder", f"unknown table fundz. Did you mean funds? Available tables: {TABLES}")


def test_stars_the_optimizer_left_expand_to_their_tables_columns(catalog):
    funds = {("funds", c) for c in catalog.tables["funds"].columns}
    investments = {("investments", c) for c in catalog.tables["investments"].columns}
    an = analyze("select f.*, i.*, c.company_name from funds f join investments i using (nope) "
                 "join companies c on true", catalog)
    assert an.columns == funds | investments | {("companies", "company_name")}
    an = analyze("select f.*, c.company_name from funds f join companies c using (nope)",
                 catalog)
    assert an.columns == funds | {("companies", "company_name")}


def test_table_functions_are_listed_by_name(catalog):
    assert analyze("SELECT 1 FROM funds f JOIN read_csv('x') r ON true",
                   catalog).table_functions == {"read_csv"}
    assert analyze("SELECT 1 FROM funds f JOIN range(3) r ON true",
                   catalog).table_functions == {"generate_series"}
    assert analyze("SELECT 1 FROM a.b.`c-d`.e", catalog, "spark").table_functions == {"`c-d`.e"}
    an = analyze("select 1 from funds f join sniff_csv('x') r on true join companies c on true",
                 catalog)
    assert (an.table_functions, an.tables) == ({"sniff_csv"}, {"funds", "companies"})
    assert analyze("select 1 from (select 1) t, funds", catalog).tables == {"funds"}


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
    # the written name, also for a call at the very start of the text
    assert analyze("upper('x')", catalog).functions == {"upper"}
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


# ------------------------------------------------------------- the refusals' exact words

ONLY_READ = ("only read-only queries (SELECT, WITH ... SELECT, UNION/INTERSECT/EXCEPT) are "
             "allowed; this statement is ")


@pytest.mark.parametrize(("sql", "expected"), [
    ("   ", ("refused", "the SQL is empty; write one SELECT query")),
    ("-- only", ("refused", "the SQL holds no statement; write one SELECT query")),
    ("select 1" + " " * 19993,
     ("refused", "the SQL is 20,001 characters long; the limit is 20,000: write a shorter "
      "query")),
    ("select 1" + " " * 19992, ("ok", "SELECT 1 LIMIT 101")),
    ("(select 1)", ("ok", "(SELECT 1) LIMIT 101")),
    ("select (1", ("parse", "could not parse the SQL: Expecting ) at line 1, column 9 near '1'")),
    ("select 'unterminated", ("parse", "could not read the SQL: Error tokenizing 'select "
                                       "'unterminate'")),
    ("load httpfs", ("refused", ONLY_READ + "LOAD")),
    ("checkpoint", ("refused", ONLY_READ + "CHECKPOINT")),
    ("drop table funds", ("refused", ONLY_READ + "DROP")),
    ("select 1; drop table funds",
     ("refused", "exactly one statement is allowed, found 2 (SELECT, DROP); send a single "
      "SELECT without a second statement after ';'")),
    ("with d as (delete from funds returning *) select * from d",
     ("refused", "DELETE is not allowed inside a query; only reading is")),
    ("select * into newt from funds",
     ("refused", "SELECT ... INTO creates a table; write a plain SELECT; INTO is not allowed "
      "inside a query; only reading is")),
    ("with recursive r(n) as (select 1 union all select n + 1 from r) select * from r",
     ("refused", "WITH RECURSIVE is not allowed: a recursive query can run without bound; the "
      "fund tables hold no hierarchies, so use joins and window functions")),
    ("select * from funds pivot (sum(committed_capital_usd) for strategy in ('Growth'))",
     ("refused", "PIVOT/UNPIVOT is not allowed; use SUM(...) FILTER (WHERE ...) or CASE inside "
      "aggregates to spread values over columns")),
    ("select * from funds where fund_id = $1",
     ("refused", "query parameters ($1, ?) are not supported; inline the values")),
    ("select * from funds, unnest([1, 2, 3])",
     ("refused", "table functions in FROM are not allowed; select from the catalogue tables")),
    ("select x from funds, lateral (select fund_id as x)",
     ("ok", "SELECT x FROM funds, LATERAL (SELECT fund_id AS x) LIMIT 101")),
    ("select * from funds cross join lateral generate_series(1, fund_id)",
     ("refused", "table functions in FROM are not allowed; select from the catalogue tables")),
    ("select * from funds, lateral unnest([1, 2])",
     ("refused", "table functions in FROM are not allowed; select from the catalogue tables")),
    ("select * from funds natural join investments",
     ("refused", "NATURAL JOIN is not allowed (it joins on every column that happens to share "
      "a name); join with ON or USING (key)")),
    # unknown names alone are the binder's; with a refusal they are listed first
    ("select getenv('x'), a2 from fundz",
     ("refused", f"unknown table fundz. Did you mean funds? Available tables: {TABLES}; "
      f"function(s) not allowed: getenv{NOT_ALLOWED}")),
    # a call sqlglot keeps no written name for is checked by its own name
    ("select cast(fund_id, 'varchar') from funds",
     ("refused", f"function(s) not allowed: cast_to_str_type{NOT_ALLOWED}")),
    ("select fund_id from funds where fund_id in (values (nope))",
     ("binder", f"column nope does not exist; {FUNDS_HAS}")),
    ("select a1, a2, a3, a4, a5 from funds",
     ("binder", "; ".join(f"column a{i} does not exist; {FUNDS_HAS}" for i in range(1, 6)))),
    ("select a1, a2, a3, a4, a5, a6, a7 from funds",
     ("binder", "; ".join(f"column a{i} does not exist; {FUNDS_HAS}" for i in range(1, 6))
      + " (and 2 more)")),
])
def test_refusals_word_for_word(catalog, sql, expected):
    assert outcome(sql, catalog) == expected


def test_analyze_lists_written_calls_not_operators_or_table_functions(catalog):
    assert analyze("select * from read_csv('x')", catalog).functions == set()
    assert analyze("select 1 from read_csv('x') r where upper(r.a) = 'A'",
                   catalog).functions == {"upper"}
    assert analyze("select fund_id ** 2, upper(fund_name) from funds", catalog).functions == {
        "upper"}
    an = analyze("select fund_id ** 2, fund_id // 2, fund_name ~ 'x', not exists (select 1) "
                 "from funds", catalog)
    assert an.functions == set()
    an = analyze("select count(*), date '2024-01-01', fund_id::varchar, [1][1], {'a': 1} "
                 "from funds", catalog)
    assert an.functions == {"count", "struct", "array", "cast"}
