"""The catalogue: tables and columns read from the DuckDB file, documented from catalog.json.

The database is the truth for what exists (so a user's own DuckDB file works);
catalog.json adds what an analyst knows: meanings, units, caveats, rules.
"""

from __future__ import annotations

import contextlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from states.ports import Catalog, ColumnDoc, TableDoc

DOCS_PATH = Path(__file__).with_name("catalog.json")


@lru_cache(maxsize=8)
def _load_docs_cached(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_docs(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The documentation file (FUNDBOT_CATALOG, else the bundled one); {} if absent."""
    p = Path(path or os.environ.get("FUNDBOT_CATALOG") or DOCS_PATH)
    return _load_docs_cached(str(p.resolve())) if p.exists() else {}


def build_catalog(con, docs: dict[str, Any] | None = None) -> Catalog:
    """Read tables/columns/types (and COMMENTs) of the main schema, overlay the docs."""
    docs = load_docs() if docs is None else docs
    tables = con.execute(
        "SELECT table_name, comment FROM duckdb_tables() WHERE schema_name = 'main' "
        "AND NOT internal UNION ALL SELECT view_name, comment FROM duckdb_views() "
        "WHERE schema_name = 'main' AND NOT internal ORDER BY 1"
    ).fetchall()
    columns = con.execute(
        "SELECT table_name, column_name, data_type, comment FROM duckdb_columns() "
        "WHERE schema_name = 'main' AND NOT internal ORDER BY table_name, column_index"
    ).fetchall()
    as_of = docs.get("as_of", "")
    if docs.get("as_of_sql"):
        # a user's DB may lack the table the docs expect: keep the documented date then
        with contextlib.suppress(duckdb.Error):
            row = con.execute(docs["as_of_sql"]).fetchone()
            as_of = str(row[0]) if row and row[0] is not None else as_of
    return overlay(tables, columns, docs, as_of)


def overlay(tables: list[tuple[str, str | None]],
            columns: list[tuple[str, str, str, str | None]], docs: dict[str, Any],
            as_of: str = "", dialect: str = "duckdb") -> Catalog:
    """The catalogue of what an engine reports, (table, comment) and (table, column, type,
    comment) in order, documented from `docs`; any engine's adapter builds it this way."""
    table_docs = {k.lower(): v for k, v in docs.get("tables", {}).items()}
    by_name: dict[str, TableDoc] = {}
    for tname, tcomment in tables:
        if tname.startswith("_"):
            continue  # private helper tables are not part of the catalogue
        tdoc = table_docs.get(tname.lower(), {})
        by_name[tname.lower()] = TableDoc(
            name=tname, description=tdoc.get("description") or tcomment or "", columns={},
            keywords=list(tdoc.get("keywords", [])),
        )
    for tname, cname, ctype, ccomment in columns:
        t = by_name.get(tname.lower())
        if t is None:
            continue
        tcols = table_docs.get(tname.lower(), {}).get("columns", {})
        cdocs = {k.lower(): v for k, v in tcols.items()}
        t.columns[cname.lower()] = ColumnDoc(
            name=cname, type=ctype, description=cdocs.get(cname.lower()) or ccomment or ""
        )
    return Catalog(tables=by_name, rules=list(docs.get("rules", [])),
                   as_of=as_of or docs.get("as_of", ""), dialect=dialect)
