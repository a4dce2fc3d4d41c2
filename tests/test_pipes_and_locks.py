"""A reader that leaves early (`| head`) and a warehouse locked by a writer give one clear
line and the right exit status, never a traceback; Slack's start-up too."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import EXIT_FAILED, EXIT_PIPE, main
from tests.warehouse_fixture import held_for_writing

FUNDBOT = str(Path(sys.executable).with_name("fundbot"))
BIG = "SELECT valuation_id, repeat('x', 900) AS pad FROM valuations"  # ~1 MB: > a pipe buffer


@pytest.fixture
def own_db(sample_copy) -> str:
    return str(sample_copy)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_a_reader_that_leaves_early_is_no_error(own_db, tmp_path, json_flag):
    env = {"FUNDBOT_DB": own_db, "FUNDBOT_ENV_FILE": "/nonexistent.env", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([FUNDBOT, "sql", *json_flag, BIG], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if json_flag:  # ~1 MB of JSON, more than a pipe holds: like `head -c 100`
        assert proc.stdout.read(100)
    # the table shows 20 rows (~12 KB, which a pipe would hold whole), so its reader leaves
    # before the first write, or the test would race the writer
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == EXIT_PIPE
    assert "Traceback" not in err and "BrokenPipe" not in err and err == "", err


@pytest.fixture
def locked(own_db):
    with held_for_writing(own_db):
        yield own_db


def test_a_locked_warehouse_is_one_clear_line(locked, env, monkeypatch, capsys):
    monkeypatch.setenv("FUNDBOT_DB", locked)
    assert main(["sql", "SELECT 1"]) == EXIT_FAILED
    assert main(["ask", "how many funds do we have?"]) == EXIT_FAILED
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
    monkeypatch.setenv("SLACK_APP_TOKEN", "xapp-test")
    assert main(["slack"]) == EXIT_FAILED
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3
    assert all(line.startswith("fundbot: the warehouse ") and "is locked by another process"
               in line for line in err), err
