"""Entity resolution against the sample warehouse's value dictionaries."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from schemas.catalog import load_docs
from schemas.dictionaries import ValueDictionaries, strip_legal, words
from schemas.generate import build
from states.ports import Ambiguity, Entity


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dict") / "fund.duckdb"
    build(path, scale=1.0)
    return path


@pytest.fixture(scope="session")
def con(warehouse: Path):
    c = duckdb.connect(str(warehouse), read_only=True)
    yield c
    c.close()


@pytest.fixture(scope="session")
def vd(con) -> ValueDictionaries:
    return ValueDictionaries.from_connection(con, load_docs()["dictionaries"])


def key_of(con, table: str, key: str, column: str, value: str):
    return con.execute(f"SELECT {key} FROM {table} WHERE {column} = ?", [value]).fetchone()[0]


def only_entity(vd: ValueDictionaries, text: str) -> Entity:
    ents, ambs = vd.resolve(text)
    assert ambs == [], (text, ambs)
    assert len(ents) == 1, (text, ents)
    return ents[0]


def only_ambiguity(vd: ValueDictionaries, text: str) -> Ambiguity:
    ents, ambs = vd.resolve(text)
    assert ents == [], (text, ents)
    assert len(ambs) == 1, (text, ambs)
    return ambs[0]


# ------------------------------------------------------------------ general partners


def test_full_name_resolves_with_table_column_and_key(vd, con) -> None:
    e = only_entity(vd, "What did Adam Brooks invest in last year?")
    assert (e.kind, e.value, e.mention) == ("gp", "Adam Brooks", "Adam Brooks")
    assert (e.table, e.column) == ("general_partners", "full_name")
    assert e.key == key_of(con, "general_partners", "gp_id", "full_name", "Adam Brooks")


@pytest.mark.parametrize("text", ["Rafael", "rafael's deals", "What has Rafael’s team done?",
                                  "RAFAEL", "Rafaël"])
def test_unique_first_name_is_that_gp(vd, text: str) -> None:
    e = only_entity(vd, text)
    assert (e.kind, e.value) == ("gp", "Rafael Ortiz")


@pytest.mark.parametrize("text", ["Adam", "Adam's investments", "what did adam lead in 2023?"])
def test_shared_first_name_is_ambiguous_with_all_candidates(vd, text: str) -> None:
    a = only_ambiguity(vd, text)
    assert a.kind == "gp"
    assert a.mention.lower().startswith("adam")
    assert [c.value for c in a.candidates] == ["Adam Brooks", "Adam Levin"]
    assert all(c.kind == "gp" and c.key is not None for c in a.candidates)


@pytest.mark.parametrize(("text", "who"), [("Levin's companies", "Adam Levin"),
                                           ("deals led by Brooks", "Adam Brooks"),
                                           ("Ortiz", "Rafael Ortiz")])
def test_last_name_alone(vd, text: str, who: str) -> None:
    assert only_entity(vd, text).value == who


def test_full_name_uses_its_words_once(vd) -> None:
    ents, ambs = vd.resolve("Compare Adam Levin with Rafael and Adam")
    assert [e.value for e in ents] == ["Adam Levin", "Rafael Ortiz"]
    assert len(ambs) == 1 and ambs[0].mention == "Adam"


def test_gp_name_typo_is_forgiven(vd) -> None:
    assert only_entity(vd, "what did Adam Brookes do").value == "Adam Brooks"


# ------------------------------------------------------------------------ companies


@pytest.mark.parametrize("text", ["databricks", "DATABRICKS", "Databricks Inc",
                                  "Databricks, Inc.", "how much did we put into databricks?",
                                  "data bricks", "databricks's valuation", "databriks"])
def test_informal_company_names_match_the_legal_name(vd, con, text: str) -> None:
    e = only_entity(vd, text)
    assert (e.kind, e.value) == ("company", "Databricks, Inc.")
    assert (e.table, e.column) == ("companies", "company_name")
    assert e.key == key_of(con, "companies", "company_id", "company_name", "Databricks, Inc.")


@pytest.mark.parametrize(("text", "name"), [
    ("DataBrick Systems", "DataBrick Systems LLC"),
    ("databrick", "DataBrick Systems LLC"),
    ("acme robotics", "Acme Robotics, Inc."),
    ("Acme Robotic Systems valuation", "Acme Robotic Systems Corp."),
    ("acme robotic systems corporation", "Acme Robotic Systems Corp."),
    ("stripewell", "Stripewell Payments, Inc."),
    ("Kite and Key", "Kite & Key, Inc."),
    ("kite & key", "Kite & Key, Inc."),
    ("Helios Energy", "Helios Energy Co."),
    ("helio", "Helio Energy Systems, Inc."),
])
def test_near_miss_names_go_to_the_right_company(vd, text: str, name: str) -> None:
    assert only_entity(vd, text).value == name


@pytest.mark.parametrize(("text", "names"), [
    ("acme", ["Acme Robotic Systems Corp.", "Acme Robotics, Inc."]),
    ("how is northwind doing", ["Northwind Analytica GmbH", "Northwind Analytics Corp."]),
    # fuzzy: equally close to both legal names
    ("northwind analytic", ["Northwind Analytica GmbH", "Northwind Analytics Corp."]),
])
def test_several_close_companies_are_ambiguous(vd, text: str, names: list[str]) -> None:
    a = only_ambiguity(vd, text)
    assert a.kind == "company"
    assert [c.value for c in a.candidates] == names


def test_every_company_resolves_by_its_own_name(vd, con) -> None:
    names = [r[0] for r in con.execute("SELECT company_name FROM companies").fetchall()]
    for name in names:
        ents, ambs = vd.resolve(f"what is {name} worth?")
        assert ambs == [] and [e.value for e in ents] == [name], name
        core = " ".join(strip_legal(words(name)))
        ents, _ = vd.resolve(f"what is {core} worth?")
        assert [e.value for e in ents] == [name], core


def test_stripe_like_words_match_nothing(vd) -> None:
    assert vd.resolve("any Stripe-like payments companies?") == ([], [])


def test_rafael_is_never_a_company(vd) -> None:
    ents, ambs = vd.resolve("Rafael")
    assert [e.kind for e in ents] == ["gp"] and ambs == []


# ---------------------------------------------------------------------------- funds


@pytest.mark.parametrize(("text", "fund"), [
    ("Fund III performance", "Fund III"), ("how is fund 3 doing", "Fund III"),
    ("fund three", "Fund III"), ("Growth Fund II", "Growth Fund II"),
    ("growth fund 2", "Growth Fund II"), ("growth fund two", "Growth Fund II"),
    ("Fund II", "Fund II"), ("opportunity fund i", "Opportunity Fund I"),
])
def test_fund_names(vd, con, text: str, fund: str) -> None:
    e = only_entity(vd, text)
    assert (e.kind, e.value, e.table, e.column) == ("fund", fund, "funds", "fund_name")
    assert e.key == key_of(con, "funds", "fund_id", "fund_name", fund)


def test_fund_names_do_not_overlap(vd) -> None:
    ents, ambs = vd.resolve("Fund I versus Growth Fund I and Fund II")
    assert [e.value for e in ents] == ["Fund I", "Growth Fund I", "Fund II"]
    assert ambs == []


def test_mixed_question(vd) -> None:
    ents, ambs = vd.resolve("How much did Rafael put into databricks from Fund II, "
                            "compared with Adam?")
    assert [(e.kind, e.value) for e in ents] == [("gp", "Rafael Ortiz"),
                                                ("company", "Databricks, Inc."),
                                                ("fund", "Fund II")]
    assert [a.mention for a in ambs] == ["Adam"]


# ----------------------------------------------------------------- false positives

ORDINARY = [
    "how much did we invest this year",
    "what is our total committed capital",
    "top 5 companies by value",
    "which companies did we exit last quarter",
    "what's the total fair value of the portfolio right now",
    "list all investments over $10M in 2023",
    "how many write-offs did we have since 2020",
    "what is the MOIC of each fund",
    "show me the biggest rounds we led",
    "which sector has the most capital invested",
    "how much have we realized from acquisitions",
    "which GP led the most deals",
    "what was our best exit ever",
    "compare invested capital and current value by vintage year",
    "how many companies are headquartered in London",
    "which companies were founded after 2018",
    "what's the average check size for Series A",
    "show the quarterly trend of portfolio value for the last two years",
    "who are the current general partners",
    "which partners have left the firm",
    "what percentage of the portfolio is in fintech",
    "total proceeds from IPOs by year",
    "what is our unrealized gain on healthcare companies",
    "which funds are still investing",
    "how much cash did we put to work in climate and robotics",
    "which growth fund invested the most?",
    "what was the first fund to invest in a seed round",
    "list the five largest holdings by fair value at the end of 2024",
    "tell me about our secondary sales",
    "hello fundbot, thanks for the help!",
]


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_questions_name_nobody(vd, text: str) -> None:
    assert vd.resolve(text) == ([], [])


@pytest.mark.parametrize("text", [
    "", "   ", "!!!???", "🚀🚀🚀", "日本語の質問です", "quelles sont nos meilleures sociétés ?",
    "wie viel haben wir investiert?", "¿cuánto vale nuestra cartera?", "a" * 5000,
    "asdkjh qwe zxc 123 !!!", "'s ' ’ & && _ __ -- ..", "SELECT * FROM companies; DROP TABLE x",
    "\x00\x01 null bytes \ufffd",
])
def test_odd_input_does_not_crash(vd, text: str) -> None:
    ents, ambs = vd.resolve(text)
    assert isinstance(ents, list) and isinstance(ambs, list)
    assert ents == [] and ambs == []


# ------------------------------------------------------------------ properties


def test_mentions_are_slices_of_the_question(vd) -> None:
    text = "Did Rafael's  DataBricks,Inc. stake in Growth-Fund 2 grow?"
    ents, _ = vd.resolve(text)
    assert [e.value for e in ents] == ["Rafael Ortiz", "Databricks, Inc.", "Growth Fund II"]
    for e in ents:
        assert e.mention in text


def test_deterministic_across_builds(vd, con) -> None:
    again = ValueDictionaries.from_connection(con, load_docs()["dictionaries"])
    for text in ["Adam and databricks in Fund III", "acme", "northwind analytic", *ORDINARY]:
        assert again.resolve(text) == vd.resolve(text) == vd.resolve(text)



def test_missing_table_is_skipped(con) -> None:
    spec = [{"kind": "gp", "table": "no_such_table", "key": "id", "value": "name"},
            *load_docs()["dictionaries"]]
    vd2 = ValueDictionaries.from_connection(con, spec)
    assert only_entity(vd2, "Rafael").value == "Rafael Ortiz"


def test_rows_can_be_added_directly() -> None:
    vd2 = ValueDictionaries()
    vd2.add("company", "companies", "company_name", [(1, "Open Door Ltd."), (2, "Zenova GmbH")])
    assert [e.key for e in vd2.resolve("what about zenova and open door")[0]] == [2, 1]
