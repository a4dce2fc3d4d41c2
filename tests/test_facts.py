"""The prompt's resolved-name facts pair each column with a value of its own kind: the name
column with the name, the key column with the key (never `company_name = 273`)."""

from __future__ import annotations

import re

from bot.warehouse import DuckWarehouse
from states.ports import Entity, Limits
from states.prompts import facts_block


def test_facts_state_the_name_with_the_name_column_and_the_key_with_the_key(sample_db):
    with DuckWarehouse(sample_db, Limits()) as wh:
        entities, _ = wh.resolve("how much did we invest in databricks?")
        key = wh.sandbox_execute("SELECT company_id FROM companies "
                                 "WHERE company_name = 'Databricks, Inc.'").rows[0][0]
    block = facts_block(entities, [])
    assert "companies.company_name = 'Databricks, Inc.'" in block
    assert f"companies.company_id = {key}" in block
    # no name column is ever set equal to a bare number
    assert not re.search(r"_name = \d", block), block


def test_quotes_in_names_are_valid_sql_literals():
    e = Entity(kind="company", mention="o'reilly", value="O'Reilly Media", table="companies",
               column="company_name", key=7, key_column="company_id")
    block = facts_block([e], [])
    assert "companies.company_name = 'O''Reilly Media'; key companies.company_id = 7" in block
