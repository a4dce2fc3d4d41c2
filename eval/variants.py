"""Seeded variants of the sample warehouse, for test-suite accuracy.

Each variant has the sample's schema, names and rules (the same companies, funds and GPs
with the same ids) but other values: other rounds, amounts, dates, marks and exits. A query
that is right for the question gives the reference's answer on every variant; one that
hard-codes a figure, or filters on a fact that only happens to hold in the sample, does not.
"""

from __future__ import annotations

from pathlib import Path

from states.ports import Limits, Warehouse

FIRST_VARIANT_SEED = 1  # variant k is built with seed DEFAULT_SEED + k


def variant_seeds(k: int) -> list[int]:
    from schemas.generate import DEFAULT_SEED

    return [DEFAULT_SEED + FIRST_VARIANT_SEED + i for i in range(k)]


def open_variants(k: int, directory: str | Path, limits: Limits) -> list[Warehouse]:
    """Build K variant warehouses under `directory` (about a second each) and open them."""
    from bot.warehouse import open_warehouse
    from schemas.generate import build

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for seed in variant_seeds(k):
        path = d / f"seed-{seed}.duckdb"
        build(path, scale=1.0, seed=seed)
        out.append(open_warehouse(str(path), limits))
    return out
