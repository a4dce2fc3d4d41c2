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


@pytest.fixture
def clean_llm_env(monkeypatch, tmp_path):
    """No .env, pinned dates or endpoints from the developer's shell leak into a run."""
    monkeypatch.setenv("FUNDBOT_ENV_FILE", str(tmp_path / "absent.env"))
    for name in ("FUNDBOT_TODAY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "FUNDBOT_MODEL"):
        monkeypatch.delenv(name, raising=False)
