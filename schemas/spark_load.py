"""The sample warehouse on Spark: the generator's DuckDB output written as tables through Spark.

`schemas/generate.py` stays the one generator (same seed, same values); this module copies its
output table by table: the same column names, types (DuckDB's mapped to Spark's by sqlglot) and
comments, the rows sent as Arrow batches over Spark Connect, so it works as well against a
remote cluster as against a local server (nothing is read from the server's disk).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

BATCH_ROWS = 500_000  # rows per Arrow batch sent to Spark (~20 MB for valuations)


def spark_type(duckdb_type: str, dialect: str = "spark") -> str:
    """DuckDB's column type as Spark writes it (VARCHAR -> STRING, INTEGER -> INT)."""
    return exp.DataType.build(duckdb_type, dialect="duckdb").sql(dialect)


def _literal(text: str, dialect: str) -> str:
    return exp.Literal.string(text).sql(dialect)


def _ident(name: str, dialect: str) -> str:
    return exp.to_identifier(name, quoted=True).sql(dialect)


def copy_tables(spark: Any, duckdb_path: str | os.PathLike, tables: list[str] | None = None,
                dialect: str = "spark", batch_rows: int = BATCH_ROWS) -> dict[str, int]:
    """Replace Spark tables with the DuckDB file's (all of its main tables unless named);
    returns the rows written per table."""
    import pyarrow as pa

    con = duckdb.connect(str(duckdb_path), read_only=True)
    counts: dict[str, int] = {}
    try:
        found = con.execute("SELECT table_name, comment FROM duckdb_tables() "
                            "WHERE schema_name = 'main' ORDER BY table_name").fetchall()
        for name, comment in found:
            if tables is not None and name not in tables:
                continue
            cols = con.execute(
                "SELECT column_name, data_type, comment FROM duckdb_columns() "
                "WHERE schema_name = 'main' AND table_name = ? ORDER BY column_index",
                [name]).fetchall()
            defs = ", ".join(
                f"{_ident(c, dialect)} {spark_type(t, dialect)}"
                + (f" COMMENT {_literal(cc, dialect)}" if cc else "") for c, t, cc in cols)
            target = _ident(name, dialect)
            spark.sql(f"DROP TABLE IF EXISTS {target}")
            spark.sql(f"CREATE TABLE {target} ({defs})"
                      + (f" COMMENT {_literal(comment, dialect)}" if comment else ""))
            reader = con.sql(f"SELECT * FROM {_ident(name, 'duckdb')}").to_arrow_reader(
                batch_rows)
            written = 0
            for batch in reader:
                table = pa.Table.from_batches([batch])
                # DuckDB may hand strings as string_view; Spark's Arrow reader wants string
                schema = pa.schema([f.with_type(pa.string()) if pa.types.is_string_view(f.type)
                                    else f for f in table.schema])
                spark.createDataFrame(table.cast(schema)).write.insertInto(name)
                written += table.num_rows
            counts[name] = written
    finally:
        con.close()
    return counts


def build_on_spark(spark: Any, scale: float = 1.0, seed: int | None = None,
                   dialect: str = "spark") -> dict[str, int]:
    """Generate the sample warehouse (schemas.generate, same seed and values) and write it
    through Spark; returns the rows per table."""
    from schemas.generate import DEFAULT_SEED, TABLES, build

    with tempfile.TemporaryDirectory(prefix="fundbot-spark-") as tmp:
        path = Path(tmp) / "fund.duckdb"
        build(str(path), scale=scale, seed=DEFAULT_SEED if seed is None else seed)
        counts = copy_tables(spark, path, list(TABLES), dialect=dialect)
    return {t: counts[t] for t in TABLES if t in counts}
