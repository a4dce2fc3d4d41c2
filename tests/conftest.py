"""Shared fixtures: one sample warehouse per test session, built by the real generator."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> str:
    """Path of a scale-1 sample warehouse (read-only for tests: never write to it)."""
    from schemas.generate import build

    path = tmp_path_factory.mktemp("warehouse") / "fund.duckdb"
    build(str(path), scale=1.0)
    return str(path)


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
    """The Spark warehouse with production limits; closed before the server stops."""
    from bot.spark_warehouse import SparkWarehouse
    from states.ports import Limits

    wh = SparkWarehouse(spark_url, Limits())
    yield wh
    wh.close()
