"""The guard's resource rules: nesting depth, table references, and the size of built strings.

These give clear refusals for the queries that would exhaust the sandbox; they are not the
wall. The wall is the SQL worker process (bot/sqlpool.py): memory, CPU and a deadline set
by the operating system, which hold whatever a rule here misses.

- Nesting is measured on the tokens, before sqlglot parses (its recursive-descent parser
  and optimizer would raise RecursionError a few dozen levels down).
- NATURAL JOIN and more than MAX_TABLE_REFS table references are refused before the
  optimizer's qualify step, whose cost (and DuckDB's planner's) grows steeply with joins.
- Every string-valued expression gets an upper estimate of its length, bottom-up, through
  CTE and subquery columns; builders (repeat, pads, concat/||, replace, regexp_replace)
  whose estimate passes MAX_BUILT_STRING, and edit distances whose matrix passes
  MAX_EDIT_CELLS, are refused.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp
from sqlglot.errors import TokenError
from sqlglot.tokens import TokenType

DIALECT = "duckdb"
MAX_NESTING = 30  # parentheses + CASE + unary NOT/- levels; sqlglot recurses ~40 levels deep
MAX_TABLE_REFS = 16  # table references in one query (FROM, JOIN, subqueries, CTEs)
MAX_BUILT_STRING = 100_000  # characters a string expression may build
MAX_EDIT_CELLS = 1_000_000  # len(a) * len(b) of an edit-distance call: its O(n*m) matrix
COLUMN_CHARS = 100  # assumed length of a catalogue column's value (data, not a builder)
AGGREGATE_ROWS = 100  # assumed rows under a string aggregate (string_agg, list)
_CAP = 10**15  # estimates stop growing here

_UNARY = {TokenType.NOT, TokenType.DASH, TokenType.PLUS, TokenType.TILDE}
_OPENERS = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.CASE}
_CLOSERS = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.END}
_EDIT_DISTANCE = {"levenshtein", "damerau_levenshtein", "editdist3", "hamming", "mismatches",
                  "jaro_similarity", "jaro_winkler_similarity", "jarowinkler_similarity",
                  "jaccard"}
_STRING_AGGREGATES = (exp.GroupConcat, exp.ArrayAgg)


# ------------------------------------------------------------------------ nesting


def nesting_problem(sql: str, dialect: str = DIALECT) -> str | None:
    """A refusal when the SQL nests deeper than MAX_NESTING levels, from its tokens alone
    (tokenized in the warehouse's `dialect`)."""
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except TokenError:
        return None  # the parser reports it
    levels: list[int] = [0]  # unary operators open at each bracket level
    deepest = depth = 0
    for token in tokens:
        kind = token.token_type
        if kind in _OPENERS:
            depth += 1
            levels.append(0)
        elif kind in _CLOSERS and len(levels) > 1:
            depth -= 1 + levels.pop()
        elif kind in _UNARY:
            levels[-1] += 1
            depth += 1
        elif levels[-1] and kind not in _UNARY:
            depth -= levels[-1]  # the unary chain ended at an operand
            levels[-1] = 0
        deepest = max(deepest, depth)
    if deepest > MAX_NESTING:
        return nesting_message(deepest)
    return None


def nesting_message(depth: int | None = None) -> str:
    found = f" ({depth} levels)" if depth else ""
    return (f"the SQL is nested too deeply{found}; the limit is {MAX_NESTING} levels of "
            "parentheses, subqueries, CASE and NOT: use CTEs (WITH) and flatter conditions")


# ------------------------------------------------------------------------- shape


def shape_problems(statement: exp.Expr) -> list[str]:
    """NATURAL JOIN and too many table references."""
    problems: list[str] = []
    refs = 0
    for node in statement.walk():
        if isinstance(node, exp.Join) and (node.args.get("method") or "").upper() == "NATURAL":
            problems.append("NATURAL JOIN is not allowed (it joins on every column that "
                            "happens to share a name); join with ON or USING (key)")
        elif isinstance(node, exp.Table) and isinstance(node.this, exp.Identifier):
            refs += 1
    if refs > MAX_TABLE_REFS:
        problems.append(f"the query references tables {refs} times; the limit is "
                        f"{MAX_TABLE_REFS}: join fewer tables or reuse a CTE")
    return list(dict.fromkeys(problems))


# -------------------------------------------------------------- built strings


def _name(node: exp.Expr) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else node.key


def _int(node: exp.Expr | None) -> int | None:
    if isinstance(node, exp.Literal) and node.is_int:
        return int(node.name)
    return None


def _branches(query: exp.Expr) -> list[exp.Select]:
    """The SELECTs whose projections a query outputs (every branch of a UNION)."""
    out: list[exp.Select] = []
    stack = [query]
    while stack:
        q = stack.pop()
        if isinstance(q, exp.SetOperation):
            stack += [q.this, q.expression]
        elif isinstance(q, exp.Subquery):
            stack.append(q.this)
        elif isinstance(q, exp.Select):
            out.append(q)
    return out


def _definitions(statement: exp.Expr) -> dict[str, dict[str, list[exp.Expr]]]:
    """alias -> output column -> the expressions that define it, for CTEs and subqueries."""
    defs: dict[str, dict[str, list[exp.Expr]]] = {}
    for node in statement.find_all(exp.CTE, exp.Subquery):
        alias = (node.alias_or_name or "").lower()
        if not alias or not isinstance(node.this, exp.Query):
            continue
        names = [n.lower() for n in node.this.named_selects]
        columns = defs.setdefault(alias, {})
        for select in _branches(node.this):
            for i, projection in enumerate(select.expressions):
                key = names[i] if i < len(names) else projection.alias_or_name.lower()
                if key:
                    columns.setdefault(key, []).append(projection)
    for table in statement.find_all(exp.Table):  # FROM cte AS c: c.col is the CTE's column
        name, alias = table.name.lower(), table.alias_or_name.lower()
        if name in defs and alias != name:
            defs.setdefault(alias, defs[name])
    return defs


def _estimate(node: exp.Expr, est: dict[int, int], defs: dict, by_name: dict) -> int:
    """An upper bound on the characters `node` yields, from its children's bounds."""
    def of(child: exp.Expr | None) -> int:
        return est.get(id(child), 0) if child is not None else 0

    if isinstance(node, exp.Literal):
        return len(node.name)
    if isinstance(node, exp.Column):
        table, name = node.table.lower(), node.name.lower()
        sources = defs.get(table, {}).get(name) if table else by_name.get(name)
        return max((of(e) for e in sources), default=0) if sources else COLUMN_CHARS
    if isinstance(node, exp.Repeat):
        times = _int(node.args.get("times"))
        return of(node.this) * (times if times is not None else _CAP)
    if isinstance(node, exp.Pad):
        width = _int(node.expression)
        # exactly `width` characters: DuckDB and Spark cut a longer input to the width
        return width if width is not None else _CAP
    if isinstance(node, exp.Replace):
        pattern = node.expression
        width = len(pattern.name) if isinstance(pattern, exp.Literal) and pattern.name else 1
        grow = max(1, -(-of(node.args.get("replacement")) // width))
        return of(node.this) * grow
    if isinstance(node, exp.RegexpReplace):
        # a pattern can match at every position: each character may become the replacement
        return of(node.this) * (of(node.args.get("replacement")) + 1)
    if isinstance(node, _STRING_AGGREGATES):
        return sum(of(c) for c in node.iter_expressions()) * AGGREGATE_ROWS
    if isinstance(node, (exp.DPipe, exp.Concat, exp.Format)) or (
            isinstance(node, exp.Anonymous) and _name(node) == "printf"):
        return sum(of(c) for c in node.iter_expressions())
    if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Query):
        selects = node.this.selects
        return max((of(s) for s in selects), default=0)
    return max((of(c) for c in node.iter_expressions()), default=0)


def _builders(node: exp.Expr) -> str | None:
    """The name of a string builder, or None. sqlglot parses repeat, the pads, concat and
    concat_ws (a Concat) into their own nodes in every dialect we speak; only printf stays an
    Anonymous call."""
    if isinstance(node, exp.DPipe):
        return "||"
    if isinstance(node, (exp.Repeat, exp.Pad, exp.Replace, exp.RegexpReplace, exp.Concat)):
        return _name(node) + "()"
    return None


def size_problems(statement: exp.Expr) -> list[str]:
    """String builders and edit distances whose estimated size passes the limits."""
    defs = _definitions(statement)
    by_name: dict[str, list[exp.Expr]] = {}
    for columns in defs.values():
        for name, exprs in columns.items():
            by_name.setdefault(name, []).extend(exprs)
    order = list(statement.walk(bfs=True))[::-1]  # children before their parents
    est: dict[int, int] = {}
    for _ in range(len(defs) + 2):  # a column's bound may come from a later-listed source
        changed = False
        for node in order:
            value = min(_estimate(node, est, defs, by_name), _CAP)
            if est.get(id(node)) != value:
                est[id(node)] = value
                changed = True
        if not changed:
            break
    problems: list[str] = []
    for node in order[::-1]:  # outermost first
        builder = _builders(node)
        if builder and est[id(node)] > MAX_BUILT_STRING and not _inside_reported(node, est):
            problems.append(f"{builder} can build a string of up to "
                            f"{_size(est[id(node)])} characters; the limit is "
                            f"{MAX_BUILT_STRING:,}: do not nest or chain string builders "
                            "(replace, ||, repeat) over built strings")
        name = _name(node)
        if name in _EDIT_DISTANCE:
            args = list(node.iter_expressions())[:2]
            if len(args) == 2 and est[id(args[0])] * est[id(args[1])] > MAX_EDIT_CELLS:
                problems.append(f"{name}() of strings of up to "
                                f"{_size(est[id(args[0])])} and "
                                f"{_size(est[id(args[1])])} characters needs a matrix over the "
                                f"limit of {MAX_EDIT_CELLS:,} cells; compare columns or short "
                                "literals")
    return list(dict.fromkeys(problems))


def _inside_reported(node: exp.Expr, est: dict[int, int]) -> bool:
    """True when an enclosing builder is over the limit too (report only the outermost)."""
    parent = node.parent
    while parent is not None:
        if _builders(parent) and est.get(id(parent), 0) > MAX_BUILT_STRING:
            return True
        parent = parent.parent
    return False


def _size(n: int) -> str:
    return "unbounded" if n >= _CAP else f"{n:,}"
