"""What depends only on the catalogue is built once per catalogue (issue 9, item 12): the
guard's sqlglot schema and column sets, and schema pruning's word index, whose look-ups must
find exactly what comparing every word of every table would. Speed is in bench/wide.py."""

from __future__ import annotations

import json

import pytest

from bench.wide_catalog import widen
from bot.warehouse import DuckWarehouse
from eval.cases import load_cases
from schemas.catalog import load_docs
from states import guard, pruning
from states.ports import Limits, QueryError


@pytest.fixture(scope="module")
def wide(sample_db, tmp_path_factory):
    path = tmp_path_factory.mktemp("wide") / "wide.duckdb"
    docs = widen(sample_db, path, load_docs(), dense_like=load_docs())
    with DuckWarehouse(str(path), Limits(), docs=docs) as wh:
        yield wh.catalog


def test_the_guard_builds_the_catalogues_schema_once(wide):
    assert len(wide.tables) == 60
    assert guard._schema(wide) is guard._schema(wide)
    assert guard._columns(wide) is guard._columns(wide)
    sql = "SELECT f.fund_name, count(*) FROM funds f JOIN investments i USING (fund_id) GROUP BY 1"
    assert guard.check(sql, wide, 10) == guard.check(sql, wide, 10)


def test_a_new_catalogue_gets_its_own_schema(wide, sample_db):
    with DuckWarehouse(sample_db, Limits()) as wh:
        small = wh.catalog
    assert guard._schema(small) is not guard._schema(wide)
    with pytest.raises(QueryError) as info:
        guard.check("SELECT * FROM limited_partners", small, 10)
    assert "limited_partners" in str(info.value)
    assert guard.check("SELECT * FROM limited_partners", wide, 10)


def _brute_hits(parts, q):
    """The definition: every word of every part of every table, compared with _meets."""
    out = {}
    for name, p in parts.items():
        matched = [part for part in pruning.PART_WEIGHTS
                   if q in p[part] or any(pruning._meets(q, x) for x in p[part])]
        if matched:
            out[name] = matched
    return out


def test_the_pruning_index_finds_what_comparing_every_word_finds(wide):
    index = pruning._index(wide)
    assert pruning._index(wide) is index
    words = set()
    for case in load_cases():
        for turn in case.turns:
            words |= pruning.stems(turn.question)
    words |= {w for p in index.parts.values() for ws in p.values() for w in ws}
    words |= {w[:k] for w in list(words) for k in (3, 4, 5)} | {w + "e" for w in list(words)}
    words |= {"free", "fee", "feee", "base", "basis", "e", "ee", "eeee"}
    assert len(words) > 500
    for q in sorted(words):
        assert index.hits(q) == _brute_hits(index.parts, q), q
    assert index.hits("invest") is index.hits("invest")  # worked out once


def test_pruning_picks_the_same_tables_as_before(wide):
    # the figures of docs/BENCHMARKS.md (economy): needed tables kept at 60 tables
    picked = pruning.relevant_tables(wide, "How much did we invest in Databricks?", [])
    assert {"investments", "companies"} <= set(picked) and len(picked) == pruning.MAX_TABLES
    assert json.dumps(picked) == json.dumps(sorted(picked))
