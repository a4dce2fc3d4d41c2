"""The SQL guard: one sqlglot analysis for the guard and the evaluation metrics.

`analyze()` lists what a statement touches (tables, columns, functions) against the
catalogue; `check()` accepts exactly one read-only query over known tables, columns and
allowed functions, and returns the SQL to run with a row cap. Everything else raises
`QueryError("refused" | "parse", message)` with a message a model or a person can act on.

The executor does not trust this module (see bot/warehouse.py): the guard is for clear
messages and a small attack surface, the sandbox is the wall.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError, SqlglotError, TokenError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers
from sqlglot.optimizer.qualify import qualify
from sqlglot.optimizer.scope import Scope, traverse_scope
from sqlglot.schema import MappingSchema
from sqlglot.tokens import TokenType

from states import bounds
from states.cache import per_catalog
from states.dialects import SPARK_FUNCTIONS, is_spark
from states.ports import Catalog, QueryError

DIALECT = "duckdb"
CAP_ALIAS = "_fundbot_capped"  # alias of the subquery when a row cap needs a wrapper

# The analytic vocabulary, as written in DuckDB SQL (lower case). A function is allowed
# when the name the user wrote is here; operators and special forms that have no written
# name (CAST, CASE, [..], a ** b) are matched by sqlglot's canonical names, also listed.
ALLOWED_FUNCTIONS: frozenset[str] = frozenset(
    {
        # aggregates and statistics
        "sum", "avg", "mean", "count", "min", "max", "median", "quantile", "quantile_cont",
        "quantile_disc", "percentile_cont", "percentile_disc", "approx_quantile", "stddev",
        "stddev_samp", "stddev_pop", "variance", "var_samp", "var_pop", "corr", "covar_pop",
        "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_count", "arg_max",
        "arg_min", "argmax", "argmin", "max_by", "min_by", "string_agg", "group_concat",
        "listagg", "list", "array_agg", "first", "last", "any_value", "mode",
        "approx_count_distinct", "approx_distinct", "bool_and", "bool_or", "logical_and",
        "logical_or", "count_if", "countif", "sumif", "product", "geomean", "geometric_mean",
        "entropy", "kurtosis", "skewness", "fsum", "favg", "sum_no_overflow", "count_star",
        # window functions
        "row_number", "rank", "dense_rank", "percent_rank", "cume_dist", "ntile", "lag",
        "lead", "first_value", "last_value", "nth_value",
        # date and time
        "date_trunc", "datetrunc", "timestamp_trunc", "date_part", "datepart", "extract",
        "year", "quarter", "month", "day", "dayofweek", "day_of_week", "isodow",
        "dayofweek_iso", "dayofyear", "day_of_year", "dayofmonth", "day_of_month", "week",
        "weekofyear", "week_of_year", "yearweek", "isoyear", "hour", "minute", "second",
        "monthname", "dayname", "date_diff", "datediff", "date_sub", "datesub", "date_add",
        "dateadd", "age", "make_date", "date_from_parts", "make_timestamp",
        "timestamp_from_parts", "make_time", "time_from_parts", "strftime", "time_to_str",
        "strptime", "str_to_time", "current_date", "current_timestamp", "today", "last_day",
        "epoch", "time_to_unix", "epoch_ms", "to_timestamp", "unix_to_time", "time_bucket",
        "date_bin", "to_days", "to_months", "to_years", "to_weeks", "century", "decade",
        "millennium",
        # strings
        "lower", "upper", "lcase", "ucase", "trim", "ltrim", "rtrim", "length", "len",
        "char_length", "character_length", "strlen", "substr", "substring", "replace",
        "concat", "concat_ws", "split_part", "starts_with", "startswith", "ends_with",
        "endswith", "suffix", "prefix", "contains", "regexp_matches", "regexp_like",
        "regexp_replace", "regexp_extract", "regexp_full_match", "like", "ilike",
        "jaro_winkler_similarity", "jarowinkler_similarity", "jaro_similarity", "jaccard",
        "levenshtein", "editdist3", "damerau_levenshtein", "hamming", "mismatches", "lpad",
        "rpad", "pad", "left", "right", "strip_accents", "format", "printf", "reverse",
        "repeat", "position", "strpos", "str_position", "instr", "ascii", "chr",
        "string_split", "str_split", "split", "string_to_array", "array_to_string",
        # math
        "round", "floor", "ceil", "ceiling", "abs", "ln", "log", "log10", "log2", "exp",
        "power", "pow", "sqrt", "cbrt", "greatest", "least", "sign", "mod", "trunc",
        "round_even", "even", "pi", "isnan", "isinf", "isfinite", "int_div", "safe_divide",
        "div", "divide", "fdiv",
        # conditionals, casts, literals
        "coalesce", "nullif", "ifnull", "nvl", "if", "iff", "iif", "case", "cast",
        "try_cast", "typeof", "array", "struct", "list_value", "struct_pack",
        "array_length", "array_size", "list_contains", "array_contains", "array_has",
        "list_has",
    }
)

# Statement kinds and nodes that have no place in a read-only question.
_FORBIDDEN_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, name)
    for name in (
        "DDL", "DML", "Command", "Create", "Drop", "Alter", "TruncateTable", "Into", "Set",
        "Pragma", "Attach", "Detach", "Copy", "Install", "Use", "Describe", "Summarize",
        "Show", "Transaction", "Commit", "Rollback", "Kill", "Export", "Refresh", "Cache",
        "Uncache", "LoadData", "Analyze", "Merge", "Grant", "Revoke", "Declare", "Execute",
        "Comment",
    )
    if hasattr(exp, name)
)
_PARAMETER_NODES: tuple[type[exp.Expr], ...] = tuple(
    getattr(exp, n) for n in ("Placeholder", "Parameter", "SessionParameter") if hasattr(exp, n)
)
# sqlglot models some operators as function nodes; unnamed in the text, they are operators
_OPERATORS = (exp.Binary, exp.Connector, exp.Unary, exp.Predicate, exp.SubqueryPredicate)
# DuckDB statements that are not queries, for texts sqlglot cannot parse
_STATEMENT_HEADS = frozenset(
    {
        "INSERT", "UPDATE", "DELETE", "DROP", "CREATE", "ALTER", "TRUNCATE", "ATTACH",
        "DETACH", "COPY", "EXPORT", "IMPORT", "INSTALL", "FORCE", "LOAD", "SET", "RESET",
        "PRAGMA", "CALL", "VACUUM", "CHECKPOINT", "USE", "BEGIN", "START", "COMMIT",
        "ROLLBACK", "ABORT", "EXPLAIN", "DESCRIBE", "SHOW", "SUMMARIZE", "GRANT", "REVOKE",
        "MERGE", "UPSERT", "PREPARE", "EXECUTE", "DEALLOCATE", "ANALYZE", "COMMENT", "PIVOT",
        "UNPIVOT", "UPDATE_EXTENSIONS",
    }
)
_IDENT = re.compile(r"[a-z_][a-z0-9_]*")
_MAX_PROBLEMS = 5  # problems listed in one refusal; more would drown the first
# DuckDB builds the result of repeat/lpad/rpad/printf/format in one allocation that neither
# the memory limit nor an interrupt can stop (repeat('x', 1e9) takes seconds and 2 GB past a
# 128 MB limit and a 1 s timeout), so their sizes must be small literals.
MAX_BUILT_CHARS = 1000
MAX_CONCATENATIONS = 16  # on Spark: at most 2**16 times the longest input, however nested
MAX_SQL_CHARS = 20_000  # a query longer than this is a runaway model, not an analyst's SQL
# a printf spec's flags/width/precision, a format field's contents
_PRINTF_SPEC = re.compile(r"%([^a-zA-Z%]*)")
_FORMAT_FIELD = re.compile(r"\{([^{}]*)(\{?)")
_WIDE = re.compile(r"\d{4,}|\*")  # a width or precision of 1000 or more, or one from an argument


@dataclass
class Analysis:
    """What one SQL text touches, resolved against the catalogue (all names lower-case)."""

    tables: set[str] = field(default_factory=set)
    columns: set[tuple[str, str]] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    statement_count: int = 0
    kind: str = ""  # select, union, insert, drop, command:load, ...; "multiple" for > 1
    unknown_tables: set[str] = field(default_factory=set)
    unknown_columns: list[str] = field(default_factory=list)  # human messages
    table_functions: set[str] = field(default_factory=set)  # functions used as FROM sources


# ------------------------------------------------------------------------ parsing


def allowed_functions(dialect: str = DIALECT) -> frozenset[str]:
    """The function allow-list of `dialect`."""
    return SPARK_FUNCTIONS if is_spark(dialect) else ALLOWED_FUNCTIONS


def _statement_heads(sql: str, dialect: str = DIALECT) -> list[str]:
    """First word of each `;`-separated statement, from the tokens (comments dropped)."""
    heads: list[str] = []
    expect_head = True
    for token in sqlglot.tokenize(sql, read=dialect):
        if token.token_type == TokenType.SEMICOLON:
            expect_head = True
        elif expect_head:
            heads.append(token.text.upper())
            expect_head = False
    return heads


def _refuse_unparsable(sql: str, dialect: str = DIALECT) -> None:
    """sqlglot cannot parse some statements (EXPORT DATABASE ...): refuse them by keyword."""
    try:
        heads = _statement_heads(sql, dialect)
    except TokenError:
        return
    if len(heads) > 1:
        raise QueryError("refused", f"exactly one statement is allowed, found {len(heads)} "
                         f"({', '.join(heads)}); send a single SELECT", sql)
    if heads and heads[0] in _STATEMENT_HEADS:
        raise QueryError("refused", "only read-only queries (SELECT, WITH ... SELECT) are "
                         f"allowed; this statement is {heads[0]}", sql)


def _parse(sql: str, dialect: str = DIALECT) -> list[exp.Expr]:
    """Parse into statements, dropping empty ones (a trailing `;`, a lone comment)."""
    try:
        statements = sqlglot.parse(sql, read=dialect)
    except ParseError as e:
        _refuse_unparsable(sql, dialect)
        err = e.errors[0] if e.errors else {}
        where = f" at line {err.get('line')}, column {err.get('col')}" if err else ""
        near = (err.get("highlight") or "").strip()
        desc = err.get("description") or str(e).splitlines()[0]
        raise QueryError(
            "parse",
            f"could not parse the SQL: {desc}{where}" + (f" near '{near}'" if near else ""),
            sql,
        ) from None
    except TokenError as e:
        raise QueryError("parse", f"could not read the SQL: {e}", sql) from None
    return [s for s in statements if s is not None and not isinstance(s, exp.Semicolon)]


def _kind(statement: exp.Expr, dialect: str = DIALECT) -> str:
    if isinstance(statement, exp.Command):
        return "command:" + str(statement.this).lower()
    if isinstance(statement, exp.Column):  # a bare word such as CHECKPOINT
        return "command:" + statement.sql(dialect).lower()
    if isinstance(statement, exp.Subquery) and isinstance(statement.unnest(), exp.Query):
        return _kind(statement.unnest(), dialect)
    return statement.key.lower()


# ---------------------------------------------------------------------- functions


def _function_names(node: exp.Func, sql: str) -> tuple[str | None, set[str]]:
    """(the name as written when the parser kept its position, sqlglot's canonical names)."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower(), {node.name.lower()}
    canonical = {n.lower() for n in node.sql_names()}
    start, end = node.meta.get("start"), node.meta.get("end")
    if isinstance(start, int) and isinstance(end, int) and 0 <= start <= end < len(sql):
        written = sql[start : end + 1].strip('"`').lower()
        if _IDENT.fullmatch(written):
            return written, canonical
    return None, canonical


def _functions(statement: exp.Expr, sql: str,
               allowed: frozenset[str] = ALLOWED_FUNCTIONS) -> tuple[set[str], list[str]]:
    """(names of the scalar/aggregate/window functions used, the ones not allowed)."""
    used: set[str] = set()
    refused: list[str] = []
    for node in statement.find_all(exp.Func):
        if isinstance(node.parent, exp.Table) and node.arg_key == "this":
            continue  # a table function; reported as such, not as a scalar
        written, canonical = _function_names(node, sql)
        if written is None and isinstance(node, _OPERATORS):
            continue  # AND, EXISTS, a ** b, s ~ 'x': operators, not calls
        name = written or min(canonical)
        used.add(name)
        ok = written in allowed if written else bool(canonical & allowed)
        if not ok:
            refused.append(name)
    return used, refused


def _int_literal(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Neg):
        inner = _int_literal(node.this)
        return -inner if inner is not None else None
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.name)
    return None


def _wide_format(pattern: str) -> bool:
    """True when a printf/format pattern asks for a width or precision we do not bound."""
    if any(_WIDE.search(spec) for spec in _PRINTF_SPEC.findall(pattern.replace("%%", ""))):
        return True
    return any(nested or re.search(r"\d{4,}", field)
               for field, nested in _FORMAT_FIELD.findall(pattern))


def _size_problems(statement: exp.Expr, sql: str) -> list[str]:
    """Calls whose output size the SQL does not bound by small literals (see MAX_BUILT_CHARS).

    sqlglot parses repeat, lpad and rpad into Repeat and Pad nodes in every dialect we speak;
    printf stays an Anonymous call."""
    problems: list[str] = []
    for node in statement.find_all(exp.Func):
        written, canonical = _function_names(node, sql)
        name = written or min(canonical)
        if isinstance(node, exp.Repeat):
            n = _int_literal(node.args.get("times"))
            if not isinstance(node.this, (exp.Literal, exp.Array)) or n is None or \
                    n > MAX_BUILT_CHARS:
                problems.append(f"repeat() needs a literal text and a literal count of at most "
                                f"{MAX_BUILT_CHARS}")
        elif isinstance(node, exp.Pad):
            n = _int_literal(node.expression)
            if n is None or n > MAX_BUILT_CHARS:
                problems.append(f"{name}() needs a literal length of at most {MAX_BUILT_CHARS}")
        elif isinstance(node, exp.Format) or name == "printf":
            args = node.expressions if isinstance(node, exp.Anonymous) else []
            pattern = node.this if not args else args[0]
            if not (isinstance(pattern, exp.Literal) and pattern.is_string) or \
                    _wide_format(pattern.name):
                problems.append(f"{name}() needs a literal pattern with widths under "
                                f"{MAX_BUILT_CHARS}")
    return problems


# ------------------------------------------------------------ tables and columns


@per_catalog
def _schema(catalog: Catalog) -> MappingSchema:
    """The catalogue as sqlglot's schema, built once: normalising 60 tables' names and types
    for every query was most of the guard's time."""
    return MappingSchema({
        t: {c: (doc.type or "UNKNOWN") for c, doc in tdoc.columns.items()}
        for t, tdoc in catalog.tables.items()
    }, dialect=catalog.dialect)


_columns = per_catalog(Catalog.columns_by_table)


def _lookup(scope: Scope | None, alias: str) -> exp.Table | Scope | None:
    """The source an alias names, searching outwards for correlated subqueries."""
    while scope is not None:
        if alias in scope.sources:
            return scope.sources[alias]
        scope = scope.parent
    return None


def _real_table(source: object, catalog: Catalog) -> str | None:
    if isinstance(source, exp.Table) and isinstance(source.this, exp.Identifier):
        name = source.name.lower()
        return name if name in catalog.tables else None
    return None


def _outputs(scope: Scope) -> set[str] | None:
    """Column names a derived table or CTE exposes; None when unknown (stars, VALUES)."""
    expr = scope.expression
    if not isinstance(expr, exp.Query):
        return None
    if isinstance(expr, exp.Select) and any(isinstance(s, exp.Star) or s.is_star
                                            for s in expr.expressions):
        return None
    names = {n.lower() for n in expr.named_selects}
    names |= {c.lower() for c in scope.outer_columns}  # t(a, b), WITH c(a, b)
    return names or None


def _describe_table(catalog: Catalog, table: str) -> str:
    return f"{table} has: {', '.join(sorted(catalog.tables[table].columns))}"


def _resolve(root: exp.Expr, catalog: Catalog, an: Analysis, dialect: str = DIALECT) -> None:
    """Fill tables/columns/unknowns from sqlglot scopes over `root`."""
    cols = _columns(catalog)
    scopes = traverse_scope(root)
    for scope in scopes:
        for source in scope.sources.values():
            if not isinstance(source, exp.Table):
                continue
            if not isinstance(source.this, exp.Identifier):
                fn = source.this
                an.table_functions.add(
                    (fn.name if isinstance(fn, exp.Anonymous) else fn.sql_name()).lower()
                    if isinstance(fn, exp.Func) else fn.sql(dialect)
                )
                continue
            name = source.name.lower()
            (an.tables if name in catalog.tables else an.unknown_tables).add(name)
    for scope in scopes:
        for star in scope.stars:  # only left when qualify could not expand them
            alias = star.table.lower() if isinstance(star, exp.Column) else ""
            sources = ([_lookup(scope, alias)] if alias
                       else [s for _, s in scope.selected_sources.values()])
            for src in sources:
                t = _real_table(src, catalog)
                if t:
                    an.columns |= {(t, c) for c in cols[t]}
        for col in scope.columns:
            if isinstance(col.this, exp.Star):
                continue
            name, alias = col.name.lower(), col.table.lower()
            if alias:
                _resolve_qualified(scope, name, alias, catalog, an)
            else:
                _resolve_unqualified(scope, col, name, catalog, an)


def _resolve_qualified(scope: Scope, name: str, alias: str,
                       catalog: Catalog, an: Analysis) -> None:
    src = _lookup(scope, alias)
    if isinstance(src, exp.Table):
        t = _real_table(src, catalog)
        if t is None:
            return  # unknown table or table function: reported on its own
        if name in catalog.tables[t].columns:
            an.columns.add((t, name))
        else:
            an.unknown_columns.append(
                f"column {alias}.{name} does not exist; {_describe_table(catalog, t)}"
            )
    elif isinstance(src, Scope):
        outs = _outputs(src)
        if outs is not None and name not in outs:
            an.unknown_columns.append(
                f"column {alias}.{name} does not exist; {alias} has: {', '.join(sorted(outs))}"
            )
    else:
        # `s.field` on a struct column looks like a qualified column; accept it as such
        for _, s in scope.selected_sources.values():
            t = _real_table(s, catalog)
            if t and alias in catalog.tables[t].columns:
                an.columns.add((t, alias))
                return
        an.unknown_columns.append(
            f"{alias}.{name}: {alias} is not a table or alias in this query"
        )


def _is_alias_ref(scope: Scope, col: exp.Column, name: str) -> bool:
    """An output alias used later (ORDER BY total, WHERE dbl > 1, QUALIFY rn = 1)."""
    expr = scope.expression
    if isinstance(expr, exp.SetOperation):
        return name in {n.lower() for n in expr.named_selects}
    if not isinstance(expr, exp.Select):
        return False
    for projection in expr.expressions:
        if (isinstance(projection, exp.Alias) and projection.alias.lower() == name
                and not any(a is projection for a in _ancestors(col))):
            return True
    return False


def _ancestors(node: exp.Expr):
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


def _resolve_unqualified(scope: Scope, col: exp.Column, name: str, catalog: Catalog,
                         an: Analysis) -> None:
    s: Scope | None = scope
    while s is not None:
        real = [_real_table(src, catalog) for _, src in s.selected_sources.values()]
        hits = [t for t in real if t and name in catalog.tables[t].columns]
        derived = [src for _, src in s.selected_sources.values() if isinstance(src, Scope)]
        opaque = [src for _, src in s.selected_sources.values()
                  if isinstance(src, exp.Table) and _real_table(src, catalog) is None]
        if hits:
            an.columns |= {(t, name) for t in hits}  # ambiguity is DuckDB's to report
            return
        if any((o := _outputs(d)) is None or name in o for d in derived) or opaque:
            return  # a CTE/subquery column, or a source we cannot see into
        if s is scope and _is_alias_ref(scope, col, name):
            return
        s = s.parent
    tables = sorted({t for _, src in scope.selected_sources.values()
                     if (t := _real_table(src, catalog))})
    where = "; ".join(_describe_table(catalog, t) for t in tables) or "no table is in scope"
    an.unknown_columns.append(f"column {name} does not exist; {where}")


def _analyze_query(statement: exp.Expr, catalog: Catalog, an: Analysis,
                   dialect: str = DIALECT) -> None:
    tree = normalize_identifiers(statement.copy(), dialect=dialect)
    try:
        # qualified in place: copying the tree first for the rare failure cost a third of
        # the guard's time; a failure normalises a fresh copy instead
        tree = qualify(tree, dialect=dialect, schema=_schema(catalog),
                       validate_qualify_columns=False, quote_identifiers=False)
    except (SqlglotError, KeyError, ValueError, TypeError):
        # e.g. an unknown column; the unqualified tree still resolves most of it
        tree = normalize_identifiers(statement.copy(), dialect=dialect)
    try:
        _resolve(tree, catalog, an, dialect)
    except (SqlglotError, KeyError, ValueError, TypeError):
        # the scope walk itself failed: fall back to the plain table list
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        for t in tree.find_all(exp.Table):
            if isinstance(t.this, exp.Identifier) and t.name.lower() not in ctes:
                name = t.name.lower()
                (an.tables if name in catalog.tables else an.unknown_tables).add(name)


def analyze(sql: str, catalog: Catalog, dialect: str = DIALECT) -> Analysis:
    """Tables, columns and functions `sql` references; raises QueryError("parse") only."""
    # the same bound as check(), whatever the parser manages
    deep = bounds.nesting_problem(sql, dialect)
    if deep:
        raise QueryError("parse", deep, sql)
    try:
        return _analyze(sql, catalog, dialect)
    except RecursionError:
        raise QueryError("parse", bounds.nesting_message(), sql) from None


def _analyze(sql: str, catalog: Catalog, dialect: str = DIALECT) -> Analysis:
    statements = _parse(sql, dialect)
    an = Analysis(statement_count=len(statements))
    an.kind = _kind(statements[0], dialect) if len(statements) == 1 else (
        "multiple" if statements else "empty")
    for statement in statements:
        used, _ = _functions(statement, sql)
        an.functions |= used
        if isinstance(statement, exp.Query):
            _analyze_query(statement, catalog, an, dialect)
        else:
            for t in statement.find_all(exp.Table):
                if isinstance(t.this, exp.Identifier) and t.name.lower() in catalog.tables:
                    an.tables.add(t.name.lower())
    return an


# -------------------------------------------------------------------------- check


def _refuse(message: str, sql: str) -> QueryError:
    return QueryError("refused", message, sql)


def _structure_problems(statement: exp.Expr, dialect: str = DIALECT) -> list[str]:
    problems: list[str] = []
    for node in statement.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            what = node.key.upper()  # a node inside a query: never a Command or a Column
            problems.append(f"{what} is not allowed inside a query; only reading is")
        elif isinstance(node, exp.Select) and node.args.get("into"):
            problems.append("SELECT ... INTO creates a table; write a plain SELECT")
        elif isinstance(node, exp.With) and node.args.get("recursive"):
            problems.append(
                "WITH RECURSIVE is not allowed: a recursive query can run without bound; "
                "the fund tables hold no hierarchies, so use joins and window functions"
            )
        elif isinstance(node, exp.Pivot):
            problems.append("PIVOT/UNPIVOT is not allowed; use SUM(...) FILTER (WHERE ...) "
                            "or CASE inside aggregates to spread values over columns")
        elif isinstance(node, _PARAMETER_NODES):
            problems.append("query parameters ($1, ?) are not supported; inline the values")
        elif isinstance(node, (exp.Unnest, exp.Lateral)) and isinstance(
                node.parent, (exp.From, exp.Join)) and not (
                isinstance(node, exp.Lateral) and isinstance(node.this, exp.Subquery)):
            problems.append("table functions in FROM are not allowed; "
                            "select from the catalogue tables")
        elif isinstance(node, exp.Table):
            problems.extend(_table_problems(node, dialect))
        elif is_spark(dialect):
            problems.extend(_spark_problems(node))
    return problems


def _table_problems(table: exp.Table, dialect: str = DIALECT) -> list[str]:
    if not isinstance(table.this, exp.Identifier):
        fn = table.this
        name = fn.name if isinstance(fn, exp.Anonymous) else (
            fn.sql_name() if isinstance(fn, exp.Func) else fn.sql(dialect))
        return [(f"table function {name.lower()}() is not allowed: queries may only read "
                 "the catalogue tables (no files, no generated series, no system views)")]
    # Spark has no "main": any qualifier names another schema or a file (parquet.`/path`)
    home = None if is_spark(dialect) else "main"
    if table.args.get("catalog") or (table.db and table.db.lower() != home):
        return [(f"{table.sql(dialect)}: only the tables of the {home or 'warehouse'} schema "
                 "are available; drop the qualifier")]
    return []


_SYSTEM_PREFIXES = ("duckdb_", "sqlite_", "pg_", "information_schema")


def _probe(name: str) -> bool:
    """An unknown table name that reads as a file path, a URL or a system view: a refusal,
    where a mistyped table is only a binder error."""
    return any(ch in name for ch in "/\\.:") or name.startswith(_SYSTEM_PREFIXES)


def _looks_like_path(name: str) -> bool:
    return any(ch in name for ch in "/\\.:")


def _spark_problems(node: exp.Expr) -> list[str]:
    """Spark forms that run programs, reach outside the query, or cannot be stopped."""
    if isinstance(node, exp.QueryTransform):
        return ["TRANSFORM ... USING runs a program on the cluster; it is not allowed"]
    if isinstance(node, exp.Hint):
        return ["query hints are not allowed; write the query without /*+ ... */"]
    if node.parent is None and _concatenations(node) > MAX_CONCATENATIONS:
        # Spark folds constant strings while planning, in the driver, where no interrupt
        # reaches: s||s through a few CTEs builds gigabytes before any task starts
        return [f"more than {MAX_CONCATENATIONS} string concatenations in one query are not "
                "allowed on Spark; build long texts in the answer, not in SQL"]
    if isinstance(node, exp.Select) and _nested_loop_join(node):
        # Spark runs it as a nested-loop join whose tasks do not notice a cancel: they keep
        # the cluster's cores busy long after the time limit (seen: 15 minutes on local[2])
        return ["a join without an equality between columns of both sides (a cross join, a "
                "comma join without a WHERE key, a join ON an inequality) is not allowed on "
                "Spark: it cannot be stopped once started; join on keys (a.id = b.id)"]
    return []


def _concatenations(tree: exp.Expr) -> int:
    return sum(1 for _ in tree.find_all(exp.DPipe)) + sum(
        max(0, len(c.expressions) - 1) for c in tree.find_all(exp.Concat))  # and ConcatWs


def _column_equality(condition: exp.Expr | None) -> bool:
    return condition is not None and any(
        isinstance(eq.left, exp.Column) and isinstance(eq.right, exp.Column)
        for eq in condition.find_all(exp.EQ))


def _nested_loop_join(select: exp.Select) -> bool:
    where = select.args.get("where")
    for join in select.args.get("joins") or []:
        if join.args.get("using") or isinstance(join.this, exp.Lateral):
            continue
        on = join.args.get("on")
        if not _column_equality(on if on is not None else where):
            return True
    return False


def _unknown_table_message(name: str, catalog: Catalog) -> str:
    if _looks_like_path(name):
        return (f"'{name}' looks like a file path or URL; reading files is not allowed, "
                "only the catalogue tables")
    close = difflib.get_close_matches(name, list(catalog.tables), n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    return (f"unknown table {name}.{hint} Available tables: "
            f"{', '.join(sorted(catalog.tables))}")


def _cap(query: exp.Query, cap: int) -> exp.Query:
    """Bound the rows to `cap`; keeps ORDER BY and a smaller LIMIT the query already has."""
    limit = query.args.get("limit")
    if limit is None and not query.args.get("offset"):
        return query.limit(cap)
    if isinstance(limit, exp.Limit) and not limit.args.get("offset"):
        value = limit.expression
        if isinstance(value, exp.Literal) and value.is_int and not limit.args.get("limit_options"):
            return query if int(value.name) <= cap else query.limit(cap)
    return exp.select("*").from_(query.subquery(CAP_ALIAS)).limit(cap)


def check(sql: str, catalog: Catalog, max_rows: int, dialect: str = DIALECT) -> str:
    """The SQL to run for `sql`, or QueryError("refused" | "parse").

    The returned SQL (in `dialect`; regenerated from the analysed tree, so what was
    checked is what runs) yields at most `max_rows + 1` rows: a (max_rows+1)-th row
    means the answer was truncated, and the executor fetches no more than that.
    """
    try:
        return _check(sql, catalog, max_rows, dialect)
    except RecursionError:  # a shape the token count missed; never a traceback
        raise _refuse(bounds.nesting_message(), sql) from None


def _check(sql: str, catalog: Catalog, max_rows: int, dialect: str = DIALECT) -> str:
    if not sql or not sql.strip():
        raise _refuse("the SQL is empty; write one SELECT query", sql)
    if len(sql) > MAX_SQL_CHARS:
        raise _refuse(f"the SQL is {len(sql):,} characters long; the limit is "
                      f"{MAX_SQL_CHARS:,}: write a shorter query", sql)
    deep = bounds.nesting_problem(sql, dialect)
    if deep:
        raise _refuse(deep, sql)
    statements = _parse(sql, dialect)
    if not statements:
        raise _refuse("the SQL holds no statement; write one SELECT query", sql)
    if len(statements) > 1:
        kinds = ", ".join(_kind(s, dialect).replace("command:", "").upper() for s in statements)
        raise _refuse(
            f"exactly one statement is allowed, found {len(statements)} ({kinds}); "
            "send a single SELECT without a second statement after ';'", sql)
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        what = _kind(statement, dialect).replace("command:", "").upper()
        raise _refuse(
            f"only read-only queries (SELECT, WITH ... SELECT, UNION/INTERSECT/EXCEPT) are "
            f"allowed; this statement is {what}", sql)

    problems = _structure_problems(statement, dialect) + bounds.shape_problems(statement)
    if problems:  # fatal on their own; resolving columns on top would only add noise
        raise _refuse("; ".join(dict.fromkeys(problems)), sql)
    an = Analysis(statement_count=1, kind=_kind(statement, dialect))
    _analyze_query(statement, catalog, an, dialect)
    # names that do not exist are a binder error, as DuckDB would report them, not a refusal
    # (a file path or a system view is a refusal: only the catalogue tables may be read)
    unknown: list[str] = []
    for t in sorted(an.unknown_tables):
        (problems if _probe(t) else unknown).append(_unknown_table_message(t, catalog))
    unknown += sorted(set(an.unknown_columns))
    _, refused_fns = _functions(statement, sql, allowed_functions(dialect))
    if refused_fns:
        problems.append(
            f"function(s) not allowed: {', '.join(sorted(set(refused_fns)))}; use standard "
            "aggregates, window, date, string, math and conditional functions")
    problems += _size_problems(statement, sql)
    problems += bounds.size_problems(statement)
    if problems or unknown:
        unique = list(dict.fromkeys(unknown + problems))
        more = f" (and {len(unique) - _MAX_PROBLEMS} more)" if len(unique) > _MAX_PROBLEMS else ""
        raise QueryError("refused" if problems else "binder",
                         "; ".join(unique[:_MAX_PROBLEMS]) + more, sql)

    return _cap(statement, max_rows + 1).sql(dialect=dialect)
