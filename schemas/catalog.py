"""The catalogue: tables and columns read from the DuckDB file, documented from catalog.json.

The database is the truth for what exists (so a user's own DuckDB file works);
catalog.json adds what an analyst knows: meanings, units, caveats, rules.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import duckdb

from states.ports import Catalog, ColumnDoc, TableDoc

DOCS_PATH = Path(__file__).with_name("catalog.json")


class CatalogError(ValueError):
    """A catalogue file (FUNDBOT_CATALOG) that cannot be used; the message says why."""


@lru_cache(maxsize=8)
def _load_docs_cached(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            docs = json.load(f)
    except FileNotFoundError:
        raise CatalogError(f"FUNDBOT_CATALOG: no file at {path}; write one with "
                           "`fundbot catalog init` or unset FUNDBOT_CATALOG") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"FUNDBOT_CATALOG: {path} is not valid JSON ({exc.msg} at line "
                           f"{exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"FUNDBOT_CATALOG: cannot read {path}: {exc}") from None
    if not isinstance(docs, dict) or not isinstance(docs.get("tables", {}), dict):
        raise CatalogError(f"FUNDBOT_CATALOG: {path} must hold a JSON object shaped like "
                           "schemas/catalog.json (\"tables\": {...})")
    return docs


def load_docs(path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The documentation file: `path`, else FUNDBOT_CATALOG, else the bundled one.

    Raises CatalogError when the file is missing, unreadable or not a JSON object."""
    p = Path(path or os.environ.get("FUNDBOT_CATALOG") or DOCS_PATH)
    return _load_docs_cached(str(p.expanduser().resolve()))


def docs_for(con) -> dict[str, Any]:
    """The documentation for the open warehouse: FUNDBOT_CATALOG when set; else the bundled
    catalogue when the file is the sample (it holds every table the catalogue documents);
    else nothing, so a user's own file is described only by what it says itself."""
    if os.environ.get("FUNDBOT_CATALOG"):
        return load_docs()
    return docs_for_tables([name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()])


def docs_for_tables(present: list[str]) -> dict[str, Any]:
    """docs_for a warehouse holding the tables `present` (any engine)."""
    if os.environ.get("FUNDBOT_CATALOG"):
        return load_docs()
    bundled = load_docs(DOCS_PATH)
    have = {name.lower() for name in present}
    return bundled if {t.lower() for t in bundled.get("tables", {})} <= have else {}


def data_as_of(con, tables: dict[str, TableDoc]) -> str:
    """The rule when no catalogue says: the newest date or timestamp in any column of the
    file that is not later than today ("" when the file has none)."""
    sql = as_of_query(tables)
    if sql is None:
        return ""
    with contextlib.suppress(duckdb.Error):
        row = con.execute(sql).fetchone()
        return str(row[0]) if row and row[0] is not None else ""
    return ""


def as_of_query(tables: dict[str, TableDoc]) -> str | None:
    """data_as_of's query in DuckDB SQL (None when no column holds a date or timestamp)."""
    parts = [f'SELECT max("{c.name}")::DATE AS d FROM "{t.name}" WHERE "{c.name}" <= now()'
             for t in tables.values() for c in t.columns.values()
             if c.type.upper() == "DATE" or c.type.upper().startswith("TIMESTAMP")]
    return f"SELECT max(d) FROM ({' UNION ALL '.join(parts)}) AS dates" if parts else None


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
    catalog = overlay(tables, columns, docs, as_of)
    if not as_of and not docs.get("as_of_sql"):  # no catalogue says: the file's newest date
        catalog.as_of = data_as_of(con, catalog.tables)
    return catalog


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
                   as_of=as_of or docs.get("as_of", ""), audience=docs.get("audience", ""),
                   dialect=dialect)


_NAME_COLUMN = re.compile(r"(^|_)(full_)?name$|^(title|label)$")


def starter_docs(catalog: Catalog) -> dict[str, Any]:
    """A catalogue for `fundbot catalog init`: the file's tables and columns with their
    COMMENTs, empty keywords and rules, and a guessed value dictionary for each table with an
    id first and a name column (the names people will type), all for the user to edit."""
    tables: dict[str, Any] = {}
    dictionaries: list[dict[str, Any]] = []
    for name, doc in catalog.tables.items():
        cols = list(doc.columns.values())
        tables[doc.name] = {"description": doc.description, "keywords": [],
                            "columns": {c.name: c.description for c in cols}}
        key = cols[0].name if cols and re.search(r"(^|_)id$", cols[0].name.lower()) else None
        names = [c.name for c in cols
                 if c.type == "VARCHAR" and _NAME_COLUMN.search(c.name.lower())]
        if key and names:
            value = next((n for n in names if n.lower().startswith("full_")), names[0])
            aliases = [n for n in names if n != value and n.lower() in ("first_name", "last_name")]
            dictionaries.append({"kind": _singular(name), "table": doc.name, "key": key,
                                 "value": value, **({"aliases": aliases} if aliases else {})})
    return {"audience": "", "as_of_sql": "", "rules": [], "tables": tables,
            "dictionaries": dictionaries}


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ses", "xes")):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word
