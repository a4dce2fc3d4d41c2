"""A tiny hand-made DuckDB file with the six fund tables, for guard and executor tests.

Independent of schemas/generate.py on purpose: these tests pin the guard and the sandbox,
not the sample data.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

DDL = """
CREATE TABLE general_partners (gp_id INTEGER PRIMARY KEY, first_name VARCHAR,
    last_name VARCHAR, full_name VARCHAR, email VARCHAR, title VARCHAR, start_date DATE,
    end_date DATE);
CREATE TABLE funds (fund_id INTEGER PRIMARY KEY, fund_name VARCHAR, vintage_year INTEGER,
    committed_capital_usd DECIMAL(18,2), strategy VARCHAR, status VARCHAR);
CREATE TABLE companies (company_id INTEGER PRIMARY KEY, company_name VARCHAR, sector VARCHAR,
    hq_city VARCHAR, hq_country VARCHAR, founded_year INTEGER, status VARCHAR);
CREATE TABLE investments (investment_id INTEGER PRIMARY KEY, fund_id INTEGER,
    company_id INTEGER, lead_gp_id INTEGER, round_name VARCHAR, investment_date DATE,
    amount_usd DECIMAL(18,2), ownership_pct DOUBLE);
CREATE TABLE valuations (valuation_id INTEGER PRIMARY KEY, fund_id INTEGER,
    company_id INTEGER, valuation_date DATE, fair_value_usd DECIMAL(18,2));
CREATE TABLE exits (exit_id INTEGER PRIMARY KEY, fund_id INTEGER, company_id INTEGER,
    exit_date DATE, exit_type VARCHAR, proceeds_usd DECIMAL(18,2));

INSERT INTO general_partners VALUES
 (1, 'Adam', 'Brooks', 'Adam Brooks', 'adam.brooks@fund.example', 'General Partner',
  '2012-01-01', NULL),
 (2, 'Adam', 'Levin', 'Adam Levin', 'adam.levin@fund.example', 'Managing Partner',
  '2015-06-01', NULL),
 (3, 'Maria', 'Chen', 'Maria Chen', 'maria.chen@fund.example', 'General Partner',
  '2010-03-15', '2022-12-31');
INSERT INTO funds VALUES
 (1, 'Fund I', 2014, 150000000, 'Early stage', 'harvesting'),
 (2, 'Fund II', 2018, 300000000, 'Early stage', 'investing'),
 (3, 'Growth Fund I', 2021, 500000000, 'Growth', 'investing');
INSERT INTO companies VALUES
 (1, 'Databricks, Inc.', 'Data infrastructure', 'San Francisco', 'USA', 2013, 'active'),
 (2, 'Stripe, Inc.', 'Fintech', 'San Francisco', 'USA', 2010, 'active'),
 (3, 'Celonis SE', 'Enterprise software', 'Munich', 'Germany', 2011, 'active'),
 (4, 'Looker Data Sciences', 'Analytics', 'Santa Cruz', 'USA', 2012, 'exited');
INSERT INTO investments VALUES
 (1, 1, 1, 1, 'Series A', '2014-05-01', 10000000, 0.12),
 (2, 1, 4, 3, 'Series A', '2015-02-10', 5000000, 0.10),
 (3, 2, 1, 1, 'Series C', '2018-09-01', 20000000, 0.03),
 (4, 2, 2, 2, 'Series B', '2019-01-15', 15000000, 0.02),
 (5, 3, 3, 2, 'Series D', '2021-07-01', 40000000, 0.04),
 (6, 3, 1, 1, 'Series G', '2021-02-01', 25000000, 0.005);
INSERT INTO valuations VALUES
 (1, 1, 1, '2023-12-31', 250000000),
 (2, 2, 1, '2023-12-31', 90000000),
 (3, 2, 2, '2023-12-31', 60000000),
 (4, 3, 3, '2023-12-31', 55000000),
 (5, 3, 1, '2023-12-31', 30000000),
 (6, 1, 1, '2022-12-31', 200000000);
INSERT INTO exits VALUES
 (1, 1, 4, '2019-06-06', 'Acquisition', 26000000);
"""

# A query the guard accepts that runs for a long time: 6^14 rows counted.
HEAVY = "select count(*) from " + ", ".join(f"investments t{i}" for i in range(14))

TABLES = ("general_partners", "funds", "companies", "investments", "valuations", "exits")


def make_db(path: str | Path) -> str:
    """Create the fixture database at `path` (which must not exist) and return its path."""
    path = str(path)
    con = duckdb.connect(path)
    try:
        con.execute(DDL)
        con.execute("CHECKPOINT")
    finally:
        con.close()
    return path


def copied_warehouse(sample_db: str, tmp_path_factory, name: str, limits):
    """A DuckWarehouse on a copy of the sample file, closed after the test module (a generator
    for a fixture to `yield from`): its own file and SQL workers, nothing shared."""
    import shutil

    from bot.warehouse import DuckWarehouse

    path = tmp_path_factory.mktemp(name) / "fund.duckdb"
    shutil.copyfile(sample_db, path)
    wh = DuckWarehouse(str(path), limits)
    try:
        yield wh
    finally:
        wh.close()


@contextmanager
def held_for_writing(path: str | Path) -> Iterator[int]:
    """The file held open for writing by another process, as a loader would; yields its PID."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
         "print('held', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
