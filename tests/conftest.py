"""Shared fixtures: one sample warehouse per test session, built by the real generator."""

from __future__ import annotations

import pytest

from tests.fakes.fake_openai import FakeOpenAI


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> str:
    """Path of a scale-1 sample warehouse (read-only for tests: never write to it)."""
    from schemas.generate import build

    path = tmp_path_factory.mktemp("warehouse") / "fund.duckdb"
    build(str(path), scale=1.0)
    return str(path)


@pytest.fixture
def sample_copy(sample_db, tmp_path):
    """A test's own copy of the sample warehouse (a Path), for a warehouse opened on its own."""
    import shutil

    path = tmp_path / "fund.duckdb"
    shutil.copyfile(sample_db, path)
    return path


# The `fundbot` command with the real openai client against a fake endpoint on 127.0.0.1.


@pytest.fixture
def fake():
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def env(monkeypatch, tmp_path, sample_db, fake):
    values = {
        "FUNDBOT_ENV_FILE": str(tmp_path / "no.env"),
        "FUNDBOT_DB": sample_db,
        "FUNDBOT_STATE": str(tmp_path / "state.sqlite3"),
        "FUNDBOT_TODAY": "2026-10-15",
        "OPENAI_BASE_URL": fake.base_url,
        "OPENAI_API_KEY": "sk-test-cli-SECRET",
        "FUNDBOT_MODEL": "fake-model",
        "FUNDBOT_LLM_RETRIES": "1",
    }
    for k in ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(k, raising=False)
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values
@pytest.fixture
def clean_llm_env(monkeypatch, tmp_path):
    """No .env, pinned dates or endpoints from the developer's shell leak into a run."""
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "absent.env"))
    for name in ("FUNDBOT_TODAY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FUNDBOT_MODEL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_server():
    """One real PostgreSQL 15 server for the whole session (tests/pg_fixture.py)."""
    from tests.pg_fixture import PgServer

    server = PgServer()
    yield server
    server.stop()


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh PostgreSQL database for one test."""
    from tests.pg_fixture import pg_database

    yield from pg_database(pg_server)


@pytest.fixture(params=["sqlite", "postgresql"])
def state_url(request, tmp_path) -> str:
    """FUNDBOT_STATE for one test, on each back-end in turn: an SQLite file, a PostgreSQL URL."""
    if request.param == "sqlite":
        return str(tmp_path / "nested" / "state.sqlite3")
    return request.getfixturevalue("pg_url")


@pytest.fixture(scope="session")
def spark_url(tmp_path_factory) -> str:
    """A real local Spark Connect server (the pyspark wheel's, local[2], 127.0.0.1, a temporary
    warehouse directory) holding the sample warehouse, written by `fundbot db init --engine
    spark`: started once per test session, stopped at its end."""
    import os

    from bot.cli import main
    from bot.spark_server import LocalSparkConnect

    server = LocalSparkConnect(tmp_path_factory.mktemp("spark"), driver_memory="1g").start()
    saved = {k: os.environ.get(k) for k in ("FUNDBOT_WAREHOUSE", "FUNDBOT_ENV_FILE")}
    try:
        os.environ["FUNDBOT_WAREHOUSE"] = server.url
        os.environ["FUNDBOT_ENV_FILE"] = os.devnull  # no developer .env in the way
        assert main(["db", "init", "--engine", "spark"]) == 0
    except BaseException:
        server.stop()
        raise
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def spark_wh(spark_url):
    """The Spark warehouse with production limits but a long time limit (the time-limit tests
    use their own: a Spark task cancelled there keeps the cores until its partition ends, and
    the next query must not pay for it); closed before the server stops."""
    from bot.spark_warehouse import SparkWarehouse
    from states.ports import Limits

    wh = SparkWarehouse(spark_url, Limits(query_timeout_s=120))
    yield wh
    wh.close()
