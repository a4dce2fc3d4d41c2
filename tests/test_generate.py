"""The sample warehouse: shape, documentation, required facts, integrity, determinism."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import duckdb
import pytest
from rapidfuzz import fuzz

from schemas.catalog import build_catalog, load_docs
from schemas.dictionaries import strip_legal, words
from schemas.generate import AS_OF, DEFAULT_SEED, TABLES, build

PKS = {"general_partners": "gp_id", "funds": "fund_id", "companies": "company_id",
       "investments": "investment_id", "valuations": "valuation_id", "exits": "exit_id"}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("wh") / "fund.duckdb"
    return path, build(path, scale=1.0)


@pytest.fixture(scope="session")
def con(built: tuple[Path, dict[str, int]]):
    c = duckdb.connect(str(built[0]), read_only=True)
    yield c
    c.close()


def one(con, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchone()[0]


def checksums(path: Path) -> dict[str, str]:
    c = duckdb.connect(str(path), read_only=True)
    try:
        out = {}
        for t, pk in PKS.items():
            h = hashlib.sha256()
            for row in c.execute(f"SELECT * FROM {t} ORDER BY {pk}").fetchall():
                h.update(repr(row).encode())
            out[t] = h.hexdigest()
        return out
    finally:
        c.close()


# ------------------------------------------------------------------------- shape


def test_exactly_the_six_tables_and_no_views(con) -> None:
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE NOT internal").fetchall()}
    views = con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()[0]
    assert tables == set(TABLES)
    assert views == 0


def test_row_counts_near_targets(built, con) -> None:
    _, counts = built
    for t in TABLES:
        assert counts[t] == one(con, f"SELECT count(*) FROM {t}")
    assert counts["general_partners"] == 12
    assert counts["funds"] == 8
    assert counts["companies"] == 400
    assert 1700 <= counts["investments"] <= 2500
    assert 24_000 <= counts["valuations"] <= 36_000
    assert 100 <= counts["exits"] <= 800


def test_types_and_primary_keys(con) -> None:
    types = {(t, c): ty for t, c, ty in con.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE NOT internal").fetchall()}
    for (t, c), ty in types.items():
        if c.endswith("_usd"):
            assert ty == "DECIMAL(18,2)", (t, c)
        if c.endswith("_date"):
            assert ty == "DATE", (t, c)
        if c.endswith("_id"):
            assert ty in ("INTEGER", "BIGINT"), (t, c)
    assert types[("investments", "ownership_pct")].startswith("DECIMAL")
    pks = {(r[0], tuple(r[1])) for r in con.execute(
        "SELECT table_name, constraint_column_names FROM duckdb_constraints() "
        "WHERE constraint_type = 'PRIMARY KEY'").fetchall()}
    assert pks == {(t, (pk,)) for t, pk in PKS.items()}


def test_every_table_and_column_is_documented(con) -> None:
    docs = load_docs()
    for t, comment in con.execute(
            "SELECT table_name, comment FROM duckdb_tables() WHERE NOT internal").fetchall():
        assert comment and len(comment) > 30, t
        assert docs["tables"][t]["description"] == comment
    cols = con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                       "WHERE NOT internal").fetchall()
    assert len(cols) == sum(len(d["columns"]) for d in docs["tables"].values())
    for t, c, comment in cols:
        assert comment and len(comment) > 10, (t, c)
        assert docs["tables"][t]["columns"][c] == comment


def test_catalogue_built_from_the_warehouse(con) -> None:
    cat = build_catalog(con, load_docs())
    assert set(cat.tables) == set(TABLES)
    assert cat.as_of == AS_OF.isoformat() == load_docs()["as_of"]
    assert all(col.description for t in cat.tables.values() for col in t.columns.values())
    assert cat.tables["valuations"].columns["fair_value_usd"].type == "DECIMAL(18,2)"
    rules = " ".join(cat.rules).lower()
    for needle in ("newest valuation", "first name", "legal", "whole firm", "us dollars",
                   "2026-09-30"):
        assert needle in rules, needle
    kinds = [d["kind"] for d in load_docs()["dictionaries"]]
    assert kinds == ["gp", "company", "fund"]


# ------------------------------------------------------------------ required facts


def test_general_partners(con) -> None:
    rows = con.execute("SELECT first_name, last_name, full_name, email, end_date "
                       "FROM general_partners").fetchall()
    firsts = [r[0] for r in rows]
    names = {r[2] for r in rows}
    assert {"Adam Brooks", "Adam Levin"} <= names
    assert firsts.count("Adam") == 2
    assert firsts.count("Rafael") == 1
    others = [f for f in firsts if f != "Adam"]
    assert len(others) == len(set(others)) == 10
    assert all(r[2] == f"{r[0]} {r[1]}" for r in rows)
    assert all(r[3].endswith("@northbeam.vc") for r in rows)
    assert any(r[4] is not None for r in rows), "someone has left the firm"


def test_funds(con) -> None:
    rows = con.execute("SELECT fund_name, vintage_year, committed_capital_usd, status "
                       "FROM funds").fetchall()
    names = {r[0] for r in rows}
    assert {"Fund I", "Fund II", "Fund III", "Growth Fund I", "Growth Fund II"} <= names
    assert min(r[1] for r in rows) == 2012
    assert max(r[1] for r in rows) == 2025
    assert all(r[2] >= 100_000_000 for r in rows)
    assert {r[3] for r in rows} <= {"Investing", "Harvesting", "Liquidated"}
    # nobody has invested more than their LPs committed
    over = one(con, "SELECT count(*) FROM funds f WHERE committed_capital_usd < "
                    "(SELECT sum(amount_usd) FROM investments i WHERE i.fund_id = f.fund_id)")
    assert over == 0


def test_databricks_held_by_several_funds_over_several_rounds(con) -> None:
    funds, rounds, lead_gps = con.execute(
        "SELECT count(DISTINCT fund_id), count(DISTINCT round_name), "
        "list(DISTINCT g.full_name ORDER BY g.full_name) FROM investments i "
        "JOIN companies c USING (company_id) JOIN general_partners g ON g.gp_id = i.lead_gp_id "
        "WHERE c.company_name = 'Databricks, Inc.'").fetchone()
    assert funds >= 2
    assert rounds >= 4
    assert "Adam Brooks" in lead_gps and "Adam Levin" in lead_gps
    current = one(con, "SELECT count(*) FROM valuations v JOIN companies c USING (company_id) "
                       "WHERE c.company_name = 'Databricks, Inc.' "
                       "AND valuation_date = DATE '2026-09-30'")
    assert current == funds, "every fund that holds Databricks has a current mark"


def test_company_names_have_suffixes_and_near_misses(con) -> None:
    names = [r[0] for r in con.execute("SELECT company_name FROM companies").fetchall()]
    assert len(names) == len(set(names))
    for suffix in (", Inc.", " LLC", " Ltd.", " Corp."):
        assert sum(n.endswith(suffix) for n in names) >= 5, suffix
    for n in ("Databricks, Inc.", "DataBrick Systems LLC", "Acme Robotics, Inc.",
              "Acme Robotic Systems Corp.", "Stripewell Payments, Inc."):
        assert n in names
    # no company sounds like a GP's name: "Rafael" must mean the partner
    gp_words = {w.lower() for r in con.execute(
        "SELECT first_name, last_name FROM general_partners").fetchall() for w in r}
    for n in names:
        for w in strip_legal(words(n)):
            assert w not in gp_words, n
            assert fuzz.ratio(w, "rafael") < 75, n


def test_company_attributes(con) -> None:
    statuses = {r[0] for r in con.execute("SELECT DISTINCT status FROM companies").fetchall()}
    assert statuses == {"Active", "Acquired", "Public", "Shut Down"}
    assert one(con, "SELECT count(DISTINCT sector) FROM companies") >= 10
    assert one(con, "SELECT count(DISTINCT hq_country) FROM companies") >= 5
    assert one(con, "SELECT count(*) FROM companies c WHERE founded_year > "
                    "(SELECT min(year(investment_date)) FROM investments i "
                    "WHERE i.company_id = c.company_id)") == 0
    # every company in the portfolio was invested in
    assert one(con, "SELECT count(*) FROM companies WHERE company_id NOT IN "
                    "(SELECT company_id FROM investments)") == 0


# ---------------------------------------------------------------- time and marks


def test_activity_in_every_quarter_up_to_as_of(con) -> None:
    quarters = [(y, q) for y in range(2012, 2027) for q in range(1, 5)
                if date(y, 3 * q, 1) <= AS_OF]
    inv = {(r[0], r[1]) for r in con.execute(
        "SELECT DISTINCT year(investment_date), quarter(investment_date) "
        "FROM investments").fetchall()}
    marks = {(r[0], r[1]) for r in con.execute(
        "SELECT DISTINCT year(valuation_date), quarter(valuation_date) "
        "FROM valuations").fetchall()}
    assert set(quarters) <= inv
    assert set(quarters) == marks
    assert one(con, "SELECT max(valuation_date) FROM valuations") == AS_OF
    assert one(con, "SELECT max(investment_date) FROM investments") <= AS_OF
    assert one(con, "SELECT max(exit_date) FROM exits") <= AS_OF


def test_marks_are_quarter_ends_one_per_holding_and_quarter(con) -> None:
    assert one(con, "SELECT count(*) FROM valuations "
                    "WHERE valuation_date <> last_day(valuation_date) "
                    "OR month(valuation_date) NOT IN (3, 6, 9, 12)") == 0
    assert one(con, "SELECT count(*) FROM (SELECT fund_id, company_id, valuation_date "
                    "FROM valuations GROUP BY ALL HAVING count(*) > 1)") == 0
    assert one(con, "SELECT count(*) FROM valuations WHERE fair_value_usd < 0") == 0


def test_marks_span_first_investment_to_exit_or_as_of(con) -> None:
    bad = con.execute("""
        WITH h AS (
            SELECT fund_id, company_id, min(investment_date) AS first_inv
            FROM investments GROUP BY ALL),
        m AS (
            SELECT fund_id, company_id, min(valuation_date) AS first_mark,
                   max(valuation_date) AS last_mark, count(*) AS n
            FROM valuations GROUP BY ALL)
        SELECT h.*, m.*, e.exit_date FROM h
        LEFT JOIN m USING (fund_id, company_id)
        LEFT JOIN exits e USING (fund_id, company_id)
        WHERE m.n IS NULL
           OR m.first_mark <> last_day(h.first_inv + INTERVAL ((3 - (month(h.first_inv) - 1) % 3)
                                       - 1) MONTH)
           OR (e.exit_date IS NULL AND m.last_mark <> DATE '2026-09-30')
           OR (e.exit_date IS NOT NULL AND (m.last_mark >= e.exit_date
                                            OR m.last_mark < e.exit_date - INTERVAL 92 DAY))
           OR m.n <> (year(m.last_mark) * 4 + quarter(m.last_mark))
                     - (year(m.first_mark) * 4 + quarter(m.first_mark)) + 1
        LIMIT 5""").fetchall()
    assert bad == []


def test_exits(con) -> None:
    kinds = {r[0] for r in con.execute("SELECT DISTINCT exit_type FROM exits").fetchall()}
    assert kinds == {"Acquisition", "IPO", "Secondary Sale", "Write-off"}
    assert one(con, "SELECT count(*) FROM exits WHERE exit_type = 'Write-off' "
                    "AND proceeds_usd <> 0") == 0
    assert one(con, "SELECT count(*) FROM exits WHERE exit_type <> 'Write-off' "
                    "AND proceeds_usd <= 0") == 0
    # one exit per holding, after its first investment, and no investment after it
    assert one(con, "SELECT count(*) FROM (SELECT fund_id, company_id FROM exits "
                    "GROUP BY ALL HAVING count(*) > 1)") == 0
    assert one(con, "SELECT count(*) FROM exits e JOIN investments i USING "
                    "(fund_id, company_id) WHERE i.investment_date >= e.exit_date") == 0
    # company status agrees with company-level exits
    assert one(con, "SELECT count(*) FROM companies c WHERE status = 'Shut Down' AND NOT "
                    "EXISTS (SELECT 1 FROM exits e WHERE e.company_id = c.company_id "
                    "AND exit_type = 'Write-off')") == 0


def test_investment_values(con) -> None:
    lo, hi = con.execute("SELECT min(ownership_pct), max(ownership_pct) "
                         "FROM investments").fetchone()
    assert 0 < lo and hi <= 100
    assert one(con, "SELECT min(amount_usd) FROM investments") > 0
    rounds = {r[0] for r in con.execute("SELECT DISTINCT round_name FROM investments")
              .fetchall()}
    assert {"Seed", "Series A", "Series B", "Series C"} <= rounds


def test_foreign_keys_hold(con) -> None:
    checks = [
        "SELECT count(*) FROM investments WHERE fund_id NOT IN (SELECT fund_id FROM funds)",
        ("SELECT count(*) FROM investments WHERE company_id NOT IN "
         "(SELECT company_id FROM companies)"),
        ("SELECT count(*) FROM investments WHERE lead_gp_id NOT IN "
         "(SELECT gp_id FROM general_partners)"),
        ("SELECT count(*) FROM valuations v WHERE NOT EXISTS (SELECT 1 FROM investments i "
         "WHERE i.fund_id = v.fund_id AND i.company_id = v.company_id "
         "AND i.investment_date <= v.valuation_date)"),
        ("SELECT count(*) FROM exits x WHERE NOT EXISTS (SELECT 1 FROM investments i "
         "WHERE i.fund_id = x.fund_id AND i.company_id = x.company_id)"),
        # the lead GP was at the firm on the day
        ("SELECT count(*) FROM investments i JOIN general_partners g ON g.gp_id = i.lead_gp_id "
         "WHERE i.investment_date < g.start_date OR i.investment_date > g.end_date"),
    ]
    for sql in checks:
        assert one(con, sql) == 0, sql


# ------------------------------------------------------------------ the build itself


def test_same_seed_same_data_other_seed_other_data(built, tmp_path: Path) -> None:
    path, _ = built
    again = tmp_path / "again.duckdb"
    build(again, scale=1.0, seed=DEFAULT_SEED)
    assert checksums(again) == checksums(path)
    # The files are not byte-identical: DuckDB stamps each new file with random header
    # bytes. Equal table contents are the promise.
    other = tmp_path / "other.duckdb"
    build(other, scale=1.0, seed=DEFAULT_SEED + 1)
    differ = {t for t, h in checksums(other).items() if h != checksums(path)[t]}
    assert {"companies", "investments", "valuations", "exits"} <= differ


def test_rebuild_replaces_file_and_leaves_no_temporaries(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "w.duckdb"
    path.parent.mkdir()
    path.write_bytes(b"not a database")
    Path(f"{path}.wal").write_bytes(b"stale wal")
    counts = build(path, scale=0.1)
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.duckdb"]
    c = duckdb.connect(str(path), read_only=True)
    try:
        assert one(c, "SELECT count(*) FROM companies") == counts["companies"] == 40
        # small scales keep the cast and the required facts
        assert one(c, "SELECT count(*) FROM general_partners") == 12
        assert one(c, "SELECT count(*) FROM funds") == 8
        assert one(c, "SELECT count(*) FROM companies WHERE company_name = 'Databricks, Inc.'")
    finally:
        c.close()


def test_scale_grows_rows(tmp_path: Path) -> None:
    counts = build(tmp_path / "s3.duckdb", scale=3.0)
    assert counts["companies"] == 1200
    assert 3 * 1700 <= counts["investments"] <= 3 * 2500
    assert 3 * 24_000 <= counts["valuations"] <= 3 * 36_000
    assert 12 < counts["general_partners"] < 24
    assert 8 < counts["funds"] < 16


def test_bad_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        build(tmp_path / "x.duckdb", scale=0)
