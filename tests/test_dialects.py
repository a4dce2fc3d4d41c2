"""The dialect follows the engine: guard, prompt, tool, recall and gold SQL (no server needed)."""

from __future__ import annotations

import dataclasses
import json
from datetime import date

import duckdb
import pytest

from bot.config import ConfigError, load_config
from eval.metrics import sql_recall
from schemas.catalog import build_catalog
from states.dialects import SPARK_FUNCTIONS, transpile
from states.guard import ALLOWED_FUNCTIONS, allowed_functions, analyze, check
from states.ports import QueryError
from states.prompts import sql_tool, system_prompt
from tests.warehouse_fixture import make_db


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = make_db(tmp_path_factory.mktemp("dialects") / "fund.duckdb")
    con = duckdb.connect(path, read_only=True)
    try:
        yield build_catalog(con, {})
    finally:
        con.close()


@pytest.fixture(scope="module")
def spark_catalog(catalog):
    return dataclasses.replace(catalog, dialect="spark")


def test_the_guard_parses_and_writes_the_engines_dialect(catalog):
    sql = "SELECT `fund_name`, date_format(vintage_year, 'yyyy') FROM funds"
    out = check(sql, catalog, 10, "spark")
    assert out == "SELECT `fund_name`, DATE_FORMAT(vintage_year, 'yyyy') FROM funds LIMIT 11"
    assert check("SELECT fund_name FROM funds", catalog, 10) == \
        'SELECT fund_name FROM funds LIMIT 11'  # DuckDB stays the default
    assert allowed_functions("spark") is SPARK_FUNCTIONS
    assert allowed_functions() is ALLOWED_FUNCTIONS


@pytest.mark.parametrize(("sql", "fragment"), [
    ("SELECT reflect('java.lang.Runtime', 'getRuntime')", "reflect"),
    ("SELECT java_method('java.lang.System', 'getenv', 'HOME')", "java_method"),
    ("SELECT TRANSFORM(fund_name) USING 'cat' AS (x) FROM funds", "TRANSFORM"),
    ("SELECT * FROM parquet.`/etc/passwd`", "drop the qualifier"),
    ("SELECT * FROM spark_catalog.default.funds", "drop the qualifier"),
    ("SELECT /*+ REPARTITION(1000) */ * FROM funds", "hints"),
    ("SELECT * FROM range(10)", "table function"),
    ("SELECT explode(sequence(1, 1000000000))", "explode"),
    ("SELECT secret('scope', 'key')", "secret"),
    ("SELECT strip_accents(fund_name) FROM funds", "strip_accents"),  # DuckDB's, not Spark's
    ("ADD JAR /tmp/x.jar", "ADD"),
    ("SELECT count(*) FROM valuations a, valuations b", "cannot be stopped"),
    ("SELECT count(*) FROM funds a CROSS JOIN funds b", "cannot be stopped"),
    ("SELECT count(*) FROM funds a JOIN funds b ON a.fund_id < b.fund_id", "cannot be stopped"),
    ("WITH a AS (SELECT 'xx' AS s), b AS (SELECT " + "||".join(["s"] * 10) + " AS s FROM a), "
     "c AS (SELECT " + "||".join(["s"] * 10) + " AS s FROM b) SELECT length(s) FROM c",
     "concatenations"),
    ("CACHE TABLE funds", "CACHE"),
    ("SET spark.sql.ansi.enabled = false", "SET"),
])
def test_spark_specific_sql_is_refused(catalog, sql, fragment):
    with pytest.raises(QueryError) as info:
        check(sql, catalog, 10, "spark")
    assert info.value.kind in ("refused", "parse") and fragment in info.value.message, \
        info.value.message


def test_keyed_joins_and_a_few_concatenations_pass_on_spark(catalog):
    for sql in ("SELECT count(*) FROM funds a, investments b WHERE a.fund_id = b.fund_id",
                "SELECT count(*) FROM funds a JOIN investments b USING (fund_id)",
                "SELECT f.fund_name || ' (' || f.status || ')' FROM funds f "
                "JOIN investments i ON i.fund_id = f.fund_id AND i.amount_usd > 5"):
        check(sql, catalog, 10, "spark")
    # DuckDB stops these itself (interrupt, memory limit): the rules are Spark's
    check("SELECT count(*) FROM valuations a, valuations b", catalog, 10)


def test_spark_allow_list_has_no_dangerous_names():
    dangerous = {"reflect", "java_method", "try_reflect", "secret", "http_request", "ai_query",
                 "read_files", "input_file_name", "explode", "sequence", "range", "stack",
                 "inline", "raise_error", "assert_true", "current_user", "transform"}
    assert not dangerous & SPARK_FUNCTIONS


def test_the_model_is_told_the_dialect(catalog, spark_catalog):
    tables = sorted(catalog.tables)
    prompt = system_prompt(spark_catalog, tables, date(2026, 10, 1))
    assert "ONE read-only Spark SQL SELECT query" in prompt and "DuckDB" not in prompt
    assert "DuckDB SELECT" in system_prompt(catalog, tables, date(2026, 10, 1))
    assert "Spark SQL" in json.dumps(sql_tool("spark"))
    assert "Databricks SQL" in json.dumps(sql_tool("databricks"))


def test_recall_reads_the_prediction_in_the_engines_dialect(spark_catalog):
    reference = 'SELECT "fund_name", sum(amount_usd) FROM investments JOIN funds USING (fund_id) ' \
                "GROUP BY ALL"
    predicted = transpile(reference, "spark")
    assert "`" in transpile('SELECT "fund_name" FROM funds', "spark")
    r = sql_recall(predicted, reference, spark_catalog)
    assert r.table_recall == 1.0 and r.column_recall == 1.0, r
    # a Spark-only form DuckDB cannot parse is still read
    r = sql_recall("SELECT `fund_name` FROM `funds`", "SELECT fund_name FROM funds",
                   spark_catalog)
    assert r.column_recall == 1.0
    assert analyze("SELECT `fund_name` FROM funds", spark_catalog, "spark").columns == \
        {("funds", "fund_name")}


def test_gold_answers_in_the_warehouses_dialect():
    from eval.cases import case_from_dict
    from eval.gold import GoldLLM

    case = case_from_dict({"id": "c", "turns": [
        {"question": "q", "sql": "SELECT strftime(investment_date, '%Y') AS y FROM investments",
         "answer_template": "{y}"}]})
    tools = [{"type": "function", "function": {"name": "sql_query"}}]
    reply = GoldLLM(case, dialect="spark").complete([{"role": "user", "content": "q"}], tools)
    sql = json.loads(reply.tool_calls[0].arguments)["sql"]
    assert sql == "SELECT DATE_FORMAT(investment_date, 'yyyy') AS y FROM investments"


def test_warehouse_setting_must_be_a_spark_connect_url():
    assert load_config({"FUNDBOT_WAREHOUSE": "sc://h:15002"}, dotenv=False).warehouse_url
    assert load_config({}, dotenv=False).warehouse_url == ""  # the DuckDB file by default
    with pytest.raises(ConfigError, match="FUNDBOT_WAREHOUSE"):
        load_config({"FUNDBOT_WAREHOUSE": "jdbc:spark://h"}, dotenv=False)


def test_the_nesting_bound_reads_the_sql_in_the_engines_dialect(catalog):
    # $$...$$ is one string to DuckDB but parentheses to Spark: the resource rules (issue 10)
    # must count what the engine's parser will see, for check() and analyze() alike
    sql = "SELECT $$" + "(" * 35 + "1" + ")" * 35 + "$$ AS x FROM funds"
    with pytest.raises(QueryError) as refused:
        check(sql, catalog, 10, "spark")
    assert refused.value.kind == "refused" and "nested too deeply" in refused.value.message
    with pytest.raises(QueryError) as unparsed:
        analyze(sql, catalog, "spark")
    assert "nested too deeply" in unparsed.value.message
    assert check(sql, catalog, 10).endswith("LIMIT 11")  # to DuckDB it is one string


def test_unknown_names_are_binder_errors_in_every_dialect(catalog, spark_catalog):
    # issue 9's rule (a mistyped name is the binder's error, for debug; a path is refused)
    for dialect in ("duckdb", "spark"):
        with pytest.raises(QueryError) as typo:
            check("SELECT fund_nme FROM funds", spark_catalog, 10, dialect)
        assert typo.value.kind == "binder"
        with pytest.raises(QueryError) as path:
            check("SELECT * FROM `/etc/passwd`" if dialect == "spark"
                  else "SELECT * FROM '/etc/passwd'", catalog, 10, dialect)
        assert path.value.kind == "refused"


def test_eval_variants_on_spark_is_a_clear_usage_error(monkeypatch, tmp_path, capsys):
    # --variants builds seeded DuckDB files to run the predicted SQL on; on Spark that SQL is
    # Spark SQL, so the run stops before connecting anywhere (the URL has no server)
    from eval import cli as eval_cli

    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "absent.env"))
    monkeypatch.setenv("FUNDBOT_WAREHOUSE", "sc://127.0.0.1:9")
    code = eval_cli.main(["--model", "gold", "--variants", "1", "--quiet",
                          "--tags", "agg-company-count", "--out", str(tmp_path / "out")])
    assert code == 2
    assert "--variants needs the DuckDB warehouse" in capsys.readouterr().err


def test_the_terminal_shows_the_sql_in_the_engines_dialect():
    # the SQL that ran on Spark, laid out as Spark SQL (read as DuckDB it would not parse)
    from bot.cli import pretty_sql

    shown = pretty_sql("SELECT `fund_name`, \"x\" AS s FROM funds", "spark")
    assert shown.splitlines() == ["SELECT", "  `fund_name`,", "  'x' AS s", "FROM funds"]
