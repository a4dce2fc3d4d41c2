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
    assert ('means the company "Databricks, Inc." (companies.company_name holds this name; '
            f"its key is companies.company_id = {key})") in block
    # no name column is ever set equal to a bare number
    assert not re.search(r"_name = \d", block), block


def test_text_keys_are_quoted_and_names_appear_once():
    e = Entity(kind="company", mention="o'reilly", value="O'Reilly\nMedia", table="companies",
               column="company_name", key="C-7", key_column="company_code")
    block = facts_block([e], [])
    assert block.count("O'Reilly") == 1 and "\nMedia" not in block  # JSON-escaped, once
    assert 'its key is companies.company_code = "C-7")' in block
