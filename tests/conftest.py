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
