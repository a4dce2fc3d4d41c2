"""The Spark Connect warehouse against a real local Spark Connect server (conftest.spark_url).

Heavy comparisons are few and whole-corpus: the sample data is the DuckDB sample's, every
legitimate query and reference query gives DuckDB's result (documented exceptions below),
every hostile statement is refused or stopped, the gold evaluation scores 1.0.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.spark_warehouse import SparkWarehouse, redact_url
from bot.warehouse import DuckWarehouse
from eval import metrics as M
from schemas.generate import TABLES
from states.dialects import transpile
from states.guard import check
from states.ports import CURRENT_TURN, Limits, QueryError, QueryResult
from tests.test_hostile_sql import HOSTILE, LEGIT, eval_reference_sql

CORPUS = Path(__file__).parent / "corpus"
SPARK_HOSTILE = [json.loads(line) for line in
                 (CORPUS / "hostile_spark_sql.jsonl").read_text(encoding="utf-8").splitlines()
                 if line.strip()]

# Legitimate DuckDB queries with no Spark equivalent, and why (docs/SPARK.md lists them too).
# The test fails if one of these starts to match (update the list) or another one differs.
SPARK_DIFFERENCES: dict[str, str] = {
    # DuckDB functions Spark does not have: the Spark allow-list refuses them
    "legit:time_bucket_quarters": "date_bin() is DuckDB's",
    "legit:fuzzy_company_match": "jaro/jaccard/damerau similarities are DuckDB's",
    "legit:similarity_join_near_misses": "jaro similarities are DuckDB's",
    "legit:geometric_and_product": "geomean() and entropy() are DuckDB's",
    "legit:age_epoch_date_sub": "age() is DuckDB's",
    "legit:string_split_and_array_to_string": "strip_accents() is DuckDB's",
    # sqlglot writes Spark SQL that Spark rejects or reads otherwise
    "legit:statistics_of_check_sizes": "quantile_cont(x, p) becomes percentile_cont(x, p); "
                                       "Spark wants WITHIN GROUP",
    "legit:date_arithmetic_last_twelve_months": "date + INTERVAL becomes date_add(d, INTERVAL), "
                                                "which takes whole days on Spark",
    "legit:row_number_qualify_latest_mark": "QUALIFY becomes a subquery whose LIMIT applies "
                                            "before the filter",
    "legit:distinct_on_latest": "DISTINCT ON becomes a subquery whose LIMIT applies before "
                                "the filter",
    "legit:printf_and_format": "format('{}', x) becomes format_string, which has no {}",
    "legit:math_functions": "log10(x) becomes log(10, x): floor(log(10, 1e9)) is 8 on Spark",
    # the engines differ
    "legit:databricks_invested_and_latest_value": "Spark wants a correlated scalar subquery "
                                                  "in GROUP BY",
    "legit:extract_and_date_part": "monthname()/dayname() give 'Jul'/'Sun' on Spark",
    "legit:holding_period_days": "datediff(MONTH) counts whole months on Spark, month "
                                 "boundaries on DuckDB",
    "legit:ownership_percent_format": "printf('%.1f') of a DECIMAL fails on Spark (Java "
                                      "Formatter)",
    "legit:percentiles_and_mode": "approximate quantiles and distinct counts: other "
                                  "algorithms, other approximations",
    # rows the SQL leaves in no particular order (ties, list order, any_value)
    "legit:list_and_bool_aggregates": "list order and any_value() are arbitrary",
    "legit:ntile_first_last_value": "first_value over tied dates is arbitrary",
    "legit:age_and_current_date": "ORDER BY years has ties",
    "legit:strip_legal_suffixes": "ORDER BY len ... LIMIT cuts between ties",
    "legit:quoted_identifiers_and_aliases": "ORDER BY committed has ties",
}

# Legitimate queries whose ORDER BY leaves ties and nothing else to tell the engines apart:
# which order the tied rows come in varies from run to run on either engine (Spark's tasks,
# DuckDB's worker threads), so their rows must agree as a bag, in any order.
ORDER_TIES = {"legit:having_filter"}  # ORDER BY funds DESC: many companies share a count


# Hostile statements the guard lets through on Spark whose tasks would run on after the time
# limit's cancel: a keyed join whose key matches thousands of rows loops over the matches of
# one input row without looking at the cancel flag (SECURITY.md, known limits). They are run
# on DuckDB (tests/test_hostile_sql.py); here only their passing the guard is asserted, so
# the shared test server's two cores are not held until the session ends.
SPARK_OUTLIVES_CANCEL = {"cross_join-02"}


@pytest.fixture(scope="module")
def duck(sample_db):
    with DuckWarehouse(sample_db, Limits()) as wh:
        yield wh


# ------------------------------------------------------------------ the sample data


def test_db_init_spark_writes_the_same_sample_warehouse(spark_wh: SparkWarehouse, duck):
    """Same tables, columns, comments and every row (the fixture ran `fundbot db init
    --engine spark`); types are DuckDB's as Spark names them."""
    assert sorted(spark_wh.catalog.tables) == sorted(TABLES) == sorted(duck.catalog.tables)
    for name in TABLES:
        s_doc, d_doc = spark_wh.catalog.tables[name], duck.catalog.tables[name]
        assert list(s_doc.columns) == list(d_doc.columns)
        assert [c.description for c in s_doc.columns.values()] == \
            [c.description for c in d_doc.columns.values()]
        key = next(iter(d_doc.columns))
        s_rows = spark_wh.rows(f"SELECT * FROM {name} ORDER BY {key}")
        d_rows = duck._con.execute(f"SELECT * FROM {name} ORDER BY {key}").fetchall()
        assert len(s_rows) == len(d_rows) > 0
        assert s_rows == [tuple(r) for r in d_rows], name
    types = {c: d.type for c, d in spark_wh.catalog.tables["investments"].columns.items()}
    assert types["amount_usd"] == "decimal(18,2)" and types["investment_date"] == "date"
    assert spark_wh.catalog.as_of == duck.catalog.as_of
    assert spark_wh.catalog.dialect == "spark" and duck.catalog.dialect == "duckdb"


def test_entity_resolution_and_clarification_match_duckdb(spark_wh: SparkWarehouse, duck):
    from eval.cases import load_cases

    questions = [t.question for c in load_cases() for t in c.turns]
    questions += ["how much did adam put into databriks", "Fund 3 vs fund three", "Adam"]
    for q in questions:
        assert spark_wh.resolve(q) == duck.resolve(q), q


# ----------------------------------------------------------- same results as DuckDB


def _outcome(wh, sql: str) -> QueryResult | QueryError:
    try:
        return wh.execute(sql)
    except QueryError as exc:
        return exc


def test_legit_and_reference_sql_give_duckdb_results_on_spark(spark_url: str, duck):
    """Every legitimate query and every eval reference query, transpiled to Spark SQL with
    sqlglot, runs on Spark and gives DuckDB's result, except the documented differences."""
    queries = [(f"legit:{n}", s) for n, _, s in LEGIT]
    queries += [(f"case:{i}", s) for i, s in eval_reference_sql()]

    def compare(name_sql: tuple[str, str]) -> tuple[str, str | None]:
        name, sql = name_sql
        want = duck.execute(sql)
        got = _outcome(wh, transpile(sql, "spark"))
        if isinstance(got, QueryError):
            return name, f"{got.kind}: {got.message}"
        if not M.execution_match(got.columns, got.rows, want.columns, want.rows,
                                 ordered=M.is_ordered(sql) and name not in ORDER_TIES,
                                 allow_extra_columns=False):
            return name, f"different rows: {got.rows[:3]} vs {want.rows[:3]}"
        return name, None

    # a generous time limit: this compares results, the bounds are tested on their own;
    # four at a time, as Slack's workers would send them, so the run stays short
    with SparkWarehouse(spark_url, Limits(query_timeout_s=120)) as wh, \
            ThreadPoolExecutor(max_workers=4) as pool:
        differ = {n: d for n, d in pool.map(compare, queries) if d}
    unexpected = {k: v for k, v in differ.items() if k not in SPARK_DIFFERENCES}
    assert not unexpected, "\n".join(f"{k}: {v}" for k, v in unexpected.items())
    assert set(SPARK_DIFFERENCES) <= set(differ), \
        f"now the same on Spark, drop from the list: {set(SPARK_DIFFERENCES) - set(differ)}"
    assert not [n for n in differ if n.startswith("case:")], "reference SQL must all agree"


# ----------------------------------------------------------------- hostile SQL


def test_hostile_sql_is_refused_or_stopped_on_spark(spark_url: str, capsys):
    """Issue 5's DuckDB corpus and the Spark-specific one: refused by the guard (in the
    Spark dialect), or for the resource bombs stopped by the time limit or capped in rows."""
    limits = Limits(query_timeout_s=2.0, max_rows=100)
    outcomes: dict[str, int] = {}
    with SparkWarehouse(spark_url, limits) as wh:
        for case in HOSTILE + SPARK_HOSTILE:
            if case["id"] in SPARK_OUTLIVES_CANCEL:  # documented: the guard lets it through
                check(case["sql"], wh.catalog, limits.max_rows, wh.dialect)
                outcomes["outlives a cancel"] = outcomes.get("outlives a cancel", 0) + 1
                continue
            out = _outcome(wh, case["sql"])
            if isinstance(out, QueryResult):
                assert out.truncated and len(out.rows) == limits.max_rows, case["id"]
                kind = "truncated"
            else:
                kind = out.kind
                assert kind in ("refused", "parse", "timeout"), (case["id"], kind, out.message)
                assert out.message and "\n" not in out.message and len(out.message) <= 700
                if case["expect"] in ("refused", "parse"):
                    assert kind in ("refused", "parse"), (case["id"], kind, out.message)
            outcomes[kind] = outcomes.get(kind, 0) + 1
        # nothing was written: the sample tables are all there, unchanged in size
        assert sorted(t.name for t in wh.spark.catalog.listTables()) == sorted(TABLES)
        assert wh.rows("SELECT count(*) FROM funds") == [(8,)]
    with capsys.disabled():
        print(f"\n[hostile SQL on Spark] tried: {len(HOSTILE) + len(SPARK_HOSTILE)} "
              f"({len(SPARK_HOSTILE)} Spark-specific); outcomes: {dict(sorted(outcomes.items()))}")


# --------------------------------------------------------------------- bounds

# Slow by design (~2.2M joined rows, a string distance on each) yet bounded: a task Spark is
# told to cancel still finishes its partition (SECURITY.md, known limits), so the work left
# after the time limit must stay small enough not to hold the shared test server's cores.
SLOW_SQL = ("SELECT count(*) AS n FROM valuations a JOIN valuations b ON a.company_id = "
            "b.company_id WHERE levenshtein(concat(a.valuation_date, b.fair_value_usd, "
            "a.fair_value_usd), concat(b.valuation_date, a.fair_value_usd, b.fair_value_usd)) < 3")


def test_a_slow_query_is_interrupted_at_the_time_limit(spark_url: str):
    """The watchdog interrupts the query's operation tag; Spark cancels its jobs and the
    session answers the next query."""
    limits = Limits(query_timeout_s=2.0)
    with SparkWarehouse(spark_url, limits) as wh:
        box: dict[str, Any] = {}
        worker = threading.Thread(target=lambda: box.update(out=_outcome(wh, SLOW_SQL)))
        worker.start()
        worker.join(timeout=limits.query_timeout_s + 60)  # generous: a loaded machine
        assert not worker.is_alive(), "the query was not interrupted"
        out = box["out"]
        assert isinstance(out, QueryError) and out.kind == "timeout", out
        assert "2 s" in out.message
        wh.limits.query_timeout_s = 300  # the session answers once the cores are free again
        assert wh.execute("SELECT count(*) AS n FROM funds").rows == [(8,)]


def test_a_turn_tag_cancels_the_turns_queries(spark_url: str):
    """Queries of a turn carry `fundbot-turn-<trace id>`: cancelling that tag stops them."""
    with SparkWarehouse(spark_url, Limits(query_timeout_s=120)) as wh:
        box: dict[str, Any] = {}

        def turn() -> None:
            CURRENT_TURN.set("t3st")
            box["out"] = _outcome(wh, SLOW_SQL)

        worker = threading.Thread(target=turn)
        worker.start()
        cancelled: list[str] = []
        while worker.is_alive() and not cancelled:  # until the operation has registered
            cancelled = wh.spark.interruptTag("fundbot-turn-t3st")
            worker.join(timeout=0.2)
        worker.join(timeout=60)
        assert not worker.is_alive() and cancelled
        out = box["out"]
        assert isinstance(out, QueryError) and out.kind == "runtime" and "cancelled" in \
            out.message, out


def test_rows_are_capped_in_the_sql_and_the_fetch(spark_wh: SparkWarehouse):
    res = spark_wh.execute("SELECT * FROM valuations")
    assert res.truncated and len(res.rows) == spark_wh.limits.max_rows
    # without the guard (no LIMIT in the SQL) the fetch is still capped
    res = spark_wh.sandbox_execute("SELECT * FROM valuations")
    assert res.truncated and len(res.rows) == spark_wh.limits.max_rows


def test_results_are_capped_in_bytes_and_close_is_final_as_on_duckdb(spark_url: str):
    """The same Warehouse port as DuckDB's (issue 10): FUNDBOT_MAX_RESULT_BYTES drops the rows
    past it (truncated) and refuses a single row over it; close() may be called twice, and a
    closed warehouse answers every query with a typed error, never a pyspark traceback."""
    limits = Limits(max_result_bytes=2_000)
    wh = SparkWarehouse(spark_url, limits)
    try:
        res = wh.execute("SELECT company_name FROM companies ORDER BY company_id")
        assert res.truncated and 0 < len(res.rows) < limits.max_rows
        with pytest.raises(QueryError) as big:
            wh.sandbox_execute("SELECT repeat('x', 3000) AS s")
        assert big.value.kind == "runtime" and "2,000-byte" in big.value.message
        with pytest.raises(QueryError) as not_text:
            wh.execute(None)  # type: ignore[arg-type]
        assert not_text.value.kind == "parse"
    finally:
        wh.close()
    wh.close()
    for run in (wh.execute, wh.sandbox_execute):
        with pytest.raises(QueryError) as closed:
            run("SELECT count(*) FROM funds")
        assert closed.value.kind == "runtime" and "closed" in closed.value.message


def test_errors_are_typed_and_one_line(spark_wh: SparkWarehouse):
    with pytest.raises(QueryError) as info:
        spark_wh.execute("SELECT fund_nam FROM funds")
    # a mistyped name is a binder error (issue 9), for debug to repair, as on DuckDB
    assert info.value.kind == "binder" and "fund_name" in info.value.message
    err = _outcome(spark_wh, "SELECT CAST('x' AS INT) AS n FROM funds")  # ANSI mode: an error
    assert isinstance(err, QueryError) and err.kind == "runtime"
    assert "\n" not in err.message and "JVM" not in err.message and "SQLSTATE" not in \
        err.message, err.message


def test_the_url_token_is_never_shown():
    url = "sc://example.cloud.databricks.com:443/;token=dapiSECRET123;x-databricks-cluster-id=1"
    assert redact_url(url) == "sc://example.cloud.databricks.com:443"
    from bot.config import load_config

    config = load_config({"FUNDBOT_WAREHOUSE": url}, dotenv=False)
    assert "dapiSECRET123" not in repr(config)


# ------------------------------------------------------------------ the core on Spark


def test_the_model_is_told_to_write_spark_sql(spark_wh: SparkWarehouse, tmp_path):
    from bot.store import SqliteStore
    from eval.cases import load_cases
    from eval.gold import GoldLLM
    from states.machine import Deps, run_turn

    case = next(c for c in load_cases() if c.expect == "answer" and len(c.turns) == 1)
    gold = GoldLLM(case, dialect=spark_wh.catalog.dialect)
    store = SqliteStore(str(tmp_path / "state.sqlite3"))
    try:
        r = run_turn(Deps(llm=gold, warehouse=spark_wh, store=store), "t1", case.turns[0].question)
    finally:
        store.close()
    assert r.state == "answered", r
    first = gold.history[0]
    system = first["messages"][0]["content"]
    assert "ONE read-only Spark SQL SELECT query" in system and "DuckDB" not in system
    assert "Spark SQL" in first["tools"][0]["function"]["description"]
    assert r.sql == transpile(case.turns[0].sql, "spark")


def test_gold_evaluation_scores_one_on_spark(spark_url: str, tmp_path, monkeypatch):
    """`fundbot eval --model gold` with FUNDBOT_WAREHOUSE=sc://...: one case of every tag
    (the full run is in docs/BENCHMARKS.md; every reference query is compared above)."""
    from eval import cli
    from eval.cases import load_cases

    picked: dict[str, str] = {}
    for case in load_cases():
        for tag in case.tags:
            picked.setdefault(tag, case.id)
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("FUNDBOT_WAREHOUSE", spark_url)
    monkeypatch.setenv("FUNDBOT_QUERY_TIMEOUT_S", "120")  # results, not speed, on a busy box
    for name in ("FUNDBOT_TODAY", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    code = cli.main(["--model", "gold", "--out", str(tmp_path), "--concurrency", "4", "--quiet",
                     "--tags", ",".join(sorted(set(picked.values())))])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    s = report["summary"]
    assert s["cases"] == len(set(picked.values())) >= 10
    assert report["meta"]["engine"] == "spark" and report["meta"]["db"] == spark_url
    for metric in ("table_recall", "column_recall", "value_recall", "execution_accuracy",
                   "outcome_accuracy", "clarification_recall", "refusal_recall", "pass_rate"):
        assert s[metric] == 1.0, metric
    assert s["stale_cases"] == 0 and s["errors"] == 0 and s["failed_turns"] == 0
