"""A user's own DuckDB file (a shop, not a fund): no fund catalogue, rules or wording; the
as-of date from the data; FUNDBOT_CATALOG errors at start-up; `fundbot catalog init`."""

from __future__ import annotations

import json
import re

import duckdb
import pytest

from bot.cli import main
from bot.warehouse import DuckWarehouse
from states.ports import Limits
from states.prompts import system_prompt


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("shop") / "shop.duckdb")
    con = duckdb.connect(path)
    con.execute("CREATE TABLE customers (customer_id INTEGER, customer_name VARCHAR, "
                "city VARCHAR)")
    con.execute("COMMENT ON TABLE customers IS 'People who bought from the shop'")
    con.execute("CREATE TABLE orders (order_id INTEGER, customer_id INTEGER, "
                "order_date DATE, due_date DATE, total DECIMAL(10,2))")
    con.execute("INSERT INTO customers VALUES (1, 'Ada Lovelace', 'London'), "
                "(2, 'Grace Hopper', 'New York')")
    # the newest order is 2026-04-29; a due date in 2099 is a plan, not data
    con.execute("INSERT INTO orders VALUES (1, 1, DATE '2026-03-02', DATE '2026-04-01', 10), "
                "(2, 2, DATE '2026-04-29', DATE '2099-01-01', 25.5)")
    con.close()
    return path


@pytest.fixture
def shop_env(env, shop, monkeypatch):
    monkeypatch.setenv("FUNDBOT_DB", shop)
    monkeypatch.delenv("FUNDBOT_CATALOG", raising=False)
    return env


def test_a_non_fund_file_gets_no_fund_catalogue(shop, monkeypatch):
    monkeypatch.delenv("FUNDBOT_CATALOG", raising=False)
    with DuckWarehouse(shop, Limits()) as wh:
        cat = wh.catalog
    assert cat.rules == [] and cat.as_of == "2026-04-29"
    assert cat.tables["customers"].description == "People who bought from the shop"
    prompt = system_prompt(cat, list(cat.tables), cat_today())
    for fund_word in ("venture", "general partner", r"\bfunds?\b", "analyst rules"):
        assert not re.search(fund_word, prompt.lower()), fund_word


def cat_today():
    from datetime import date

    return date(2026, 5, 1)


def test_the_sample_keeps_its_catalogue(sample_db, monkeypatch):
    monkeypatch.delenv("FUNDBOT_CATALOG", raising=False)
    with DuckWarehouse(sample_db, Limits()) as wh:
        assert wh.catalog.rules and wh.catalog.as_of == "2026-09-30"
        assert "general partners" in system_prompt(wh.catalog, ["funds"], cat_today())


def test_ask_on_a_shop_shows_the_shops_date_and_a_neutral_prompt(shop_env, fake, capsys):
    fake.enqueue_tool_call("SELECT count(*) AS n FROM orders").enqueue_text("2 orders.")
    assert main(["ask", "how many orders are there?"]) == 0
    out = capsys.readouterr().out
    assert "data as of 2026-04-29" in out
    sent = json.dumps([r.body["messages"] for r in fake.chat_requests])
    assert "venture" not in sent and "general partner" not in sent


@pytest.mark.parametrize("content, why", [(None, "no file at"),
                                          ('{"tables": {', "is not valid JSON"),
                                          ("[1, 2]", "must hold a JSON object")])
def test_a_bad_catalogue_path_or_file_is_one_error_at_start_up(shop_env, tmp_path, monkeypatch,
                                                               capsys, content, why):
    path = tmp_path / "my-catalog.json"
    if content is not None:
        path.write_text(content)
    monkeypatch.setenv("FUNDBOT_CATALOG", str(path))
    for argv in (["sql", "SELECT 1"], ["ask", "how many orders?"]):
        assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all(line.startswith("fundbot: FUNDBOT_CATALOG") and why in line
                                 for line in err), err


def test_catalog_init_writes_a_starter_to_edit(shop_env, shop, tmp_path, monkeypatch, capsys):
    out = tmp_path / "shop-catalog.json"
    assert main(["catalog", "init", "--db", shop, "--out", str(out)]) == 0
    assert "FUNDBOT_CATALOG=" in capsys.readouterr().out
    docs = json.loads(out.read_text())
    assert set(docs["tables"]) == {"customers", "orders"}
    assert docs["tables"]["customers"]["description"] == "People who bought from the shop"
    assert set(docs["tables"]["orders"]["columns"]) == {"order_id", "customer_id", "order_date",
                                                        "due_date", "total"}
    assert docs["dictionaries"] == [{"kind": "customer", "table": "customers",
                                     "key": "customer_id", "value": "customer_name"}]
    assert main(["catalog", "init", "--db", shop, "--out", str(out)]) == 2  # no overwrite
    # the starter is a working catalogue: its dictionary resolves the shop's names
    monkeypatch.setenv("FUNDBOT_CATALOG", str(out))
    with DuckWarehouse(shop, Limits()) as wh:
        entities, _ = wh.resolve("what did grace hopper order?")
        assert [(e.value, e.key, e.key_column) for e in entities] == [
            ("Grace Hopper", 2, "customer_id")]
        assert wh.catalog.as_of == "2026-04-29"
