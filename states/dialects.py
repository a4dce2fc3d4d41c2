"""SQL dialects the warehouse may speak: DuckDB (the embedded default) and Spark/Databricks.

The guard parses and checks in the warehouse's dialect with that dialect's allow-list of
functions; the model is told the dialect by name; reference SQL (written in DuckDB SQL in
eval/cases.jsonl) is transpiled with sqlglot for a Spark warehouse.
"""

from __future__ import annotations

import sqlglot

DUCKDB = "duckdb"
SPARK = "spark"
DATABRICKS = "databricks"
SPARK_FAMILY = frozenset({SPARK, DATABRICKS})

_NAMES = {DUCKDB: "DuckDB", SPARK: "Spark SQL", DATABRICKS: "Databricks SQL"}

# The analytic vocabulary of Spark SQL (lower case), as the DuckDB list in guard.py is for
# DuckDB. Left out on purpose: reflect/java_method/try_reflect (call any JVM method on the
# cluster), Databricks' secret()/http_request()/ai_query()/read_files() (secrets, network,
# paid model calls, files), input_file_name() and friends (paths), generators (explode,
# sequence, range, stack: rows without bound), raise_error/assert_true, session and
# catalogue functions (current_user, current_catalog...), and the UDF helpers.
SPARK_FUNCTIONS: frozenset[str] = frozenset(
    {
        # aggregates and statistics
        "sum", "avg", "mean", "count", "min", "max", "median", "percentile",
        "percentile_approx", "approx_percentile", "percentile_cont", "percentile_disc",
        "stddev", "stddev_samp", "stddev_pop", "std", "variance", "var_samp", "var_pop", "corr",
        "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_count",
        "regr_avgx", "regr_avgy", "max_by", "min_by", "collect_list", "collect_set",
        "array_agg", "listagg", "string_agg", "first", "last", "first_value", "last_value",
        "any_value", "mode", "approx_count_distinct", "bool_and", "bool_or", "every", "some",
        "any", "count_if", "kurtosis", "skewness", "try_sum", "try_avg",
        # window functions
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
        "lead", "nth_value",
        # date and time
        "date_trunc", "trunc", "date_part", "datepart", "extract", "year", "quarter", "month",
        "day", "dayofweek", "weekday", "dayofmonth", "dayofyear", "weekofyear", "hour",
        "minute", "second", "monthname", "dayname", "datediff", "date_diff", "timestampdiff",
        "date_add", "dateadd", "date_sub", "timestampadd", "add_months", "months_between",
        "make_date", "make_timestamp", "to_date", "to_timestamp", "date_format",
        "from_unixtime", "unix_timestamp", "unix_date", "current_date", "current_timestamp",
        "now", "curdate", "last_day", "next_day", "date_from_unix_date",
        # strings
        "lower", "upper", "lcase", "ucase", "trim", "ltrim", "rtrim", "btrim", "length", "len",
        "char_length", "character_length", "substr", "substring", "substring_index",
        "replace", "translate", "concat", "concat_ws", "split_part", "startswith", "endswith",
        "contains", "rlike", "regexp", "regexp_like", "regexp_replace", "regexp_extract",
        "regexp_count", "regexp_substr", "like", "ilike", "levenshtein", "soundex", "lpad",
        "rpad", "initcap", "format_number", "format_string", "printf", "reverse", "repeat",
        "position", "locate", "instr", "ascii", "chr", "char", "split", "left", "right",
        "array_join",
        # math
        "round", "bround", "floor", "ceil", "ceiling", "abs", "ln", "log", "log10", "log2",
        "exp", "power", "pow", "sqrt", "cbrt", "greatest", "least", "sign", "signum", "mod",
        "pmod", "pi", "isnan", "nanvl", "div", "try_divide", "try_add", "try_subtract",
        "try_multiply", "negative", "positive",
        # conditionals, casts, literals
        "coalesce", "nullif", "ifnull", "nvl", "nvl2", "if", "iff", "case", "cast", "try_cast",
        "typeof", "isnull", "isnotnull", "equal_null", "array", "struct", "named_struct",
        "array_contains", "array_size", "size", "cardinality", "array_distinct",
        "sort_array", "array_sort", "element_at", "array_position", "array_min",
        "array_max",
        # sqlglot's own names for some of the above, matched when it keeps no written name
        "approx_quantile", "group_concat", "argmax", "argmin", "arg_max", "arg_min",
        "time_str_to_time", "ts_or_ds_to_date", "str_to_time", "time_to_str",
        "quantile", "str_position",  # percentile(), position(): built without a position
    }
)


def is_spark(dialect: str) -> bool:
    return dialect in SPARK_FAMILY


def display_name(dialect: str) -> str:
    """How the model is told which SQL to write ("DuckDB", "Spark SQL")."""
    return _NAMES.get(dialect, dialect)


def transpile(sql: str, dialect: str, read: str = DUCKDB) -> str:
    """`sql` written in `read` as the same query in `dialect` (unchanged when they agree)."""
    if dialect == read:
        return sql
    return sqlglot.transpile(sql, read=read, write=dialect)[0]
