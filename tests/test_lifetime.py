"""Who owns DuckDB objects: no thread keeps a cursor past its query, and every command
closes the warehouse before it returns (a cursor destroyed at interpreter exit aborts the
process with status 134). The 200-start loop is `python -m bench.run --only exits`."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import pytest

from bot.cli import main
from bot.warehouse import DuckWarehouse
from states.ports import Limits, QueryError

QUERY = "SELECT count(*) FROM valuations"


def _timers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "fundbot-query-timer"]


@pytest.fixture
def own_db(sample_copy) -> str:
    return str(sample_copy)


def test_no_query_timer_outlives_its_query(own_db):
    with DuckWarehouse(own_db, Limits(), docs={}) as wh:
        for _ in range(20):
            assert wh.execute(QUERY).rows[0][0] > 0
            assert _timers() == []  # the timer (and the cursor it could interrupt) is gone
        with pytest.raises(QueryError):
            wh.execute("SELECT nope FROM valuations")
        assert _timers() == []


def test_sql_command_closes_the_warehouse_before_returning(own_db, monkeypatch, capsys):
    monkeypatch.setenv("FUNDBOT_DB", own_db)
    monkeypatch.setenv("FUNDBOT_ENV_FILE", "/nonexistent.env")
    assert main(["sql", "--json", QUERY]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0][0] > 0
    assert _timers() == []
    # a read-write connection in this process is refused while a read-only one is open
    con = duckdb.connect(own_db)
    con.close()


def test_sql_command_exits_zero_as_a_process(own_db, tmp_path):
    fundbot = Path(sys.executable).with_name("fundbot")
    env = {"FUNDBOT_DB": own_db, "FUNDBOT_ENV_FILE": "/nonexistent.env", "PATH": "/usr/bin:/bin"}
    for _ in range(3):
        done = subprocess.run([str(fundbot), "sql", "--json", QUERY], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows"][0][0] > 0


def test_one_shot_commands_start_one_sql_worker(own_db, monkeypatch, capsys):
    """A command that answers one thing starts one warm worker, whatever FUNDBOT_SQL_WORKERS
    says for the servers (each worker is a process start and a warehouse opened)."""
    started: list[list[str]] = []
    popen = subprocess.Popen

    def counting(args, *a, **kw):
        started.append(list(args))
        return popen(args, *a, **kw)
    monkeypatch.setattr(subprocess, "Popen", counting)
    monkeypatch.setenv("FUNDBOT_DB", own_db)
    monkeypatch.setenv("FUNDBOT_ENV_FILE", "/nonexistent.env")
    monkeypatch.setenv("FUNDBOT_SQL_WORKERS", "3")
    assert main(["sql", "--json", QUERY]) == 0
    assert json.loads(capsys.readouterr().out)["rows"][0][0] > 0
    assert len([a for a in started if "bot.sqlworker" in a]) == 1


def test_the_cli_does_not_import_what_only_a_turn_needs():
    # inflect costs about 2 s of CPU to import (typeguard instruments it): `fundbot sql` and
    # the SQL workers never need it, a turn that checks a name loads it then
    code = "import sys, bot.cli, bot.sqlworker, states.guard; print('inflect' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).parents[1])
    assert (done.returncode, done.stdout.strip()) == (0, "False"), done.stderr
