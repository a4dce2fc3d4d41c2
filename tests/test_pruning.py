"""Schema pruning on a catalogue too large to send whole."""

from __future__ import annotations

from states.ports import Catalog, ColumnDoc, Entity, TableDoc
from states.pruning import MAX_TABLES, relevant_tables, stem, tables_named


def table(name, cols, description="", keywords=()):
    return TableDoc(name, description, {c: ColumnDoc(c, "INTEGER") for c in cols},
                    list(keywords))


CORE = [
    table("general_partners", ["gp_id", "full_name"], "The firm's partners.", ["partner", "led"]),
    table("funds", ["fund_id", "fund_name", "vintage_year"], "Our funds.", ["fund"]),
    table("companies", ["company_id", "company_name", "sector"], "Portfolio companies."),
    table("investments", ["investment_id", "fund_id", "company_id", "lead_gp_id", "amount_usd",
                          "investment_date"], "Each cheque.", ["invest", "deal", "put into"]),
    table("valuations", ["valuation_id", "fund_id", "company_id", "valuation_date",
                         "fair_value_usd"], "Quarterly marks.", ["worth", "value"]),
]
# distractors: tables keyed by company_id/fund_id too, with words that overlap questions
NOISE = [table(f"company_metric_{i}", ["company_id", "metric_year", "value_usd"],
               "A yearly company metric.") for i in range(12)]
NOISE += [table(f"fund_report_{i}", ["fund_id", "report_year", "amount_usd"],
                "Fund reporting by year.") for i in range(12)]


def catalog(tables):
    return Catalog(tables={t.name: t for t in tables})


WIDE = catalog(CORE + NOISE)
DATABRICKS = Entity("company", "databricks", "Databricks, Inc.", "companies", "company_name", 7)
PRIYA = Entity("gp", "Priya", "Priya Raman", "general_partners", "full_name", 4)


def test_small_catalogue_is_sent_whole():
    small = catalog(CORE)
    assert relevant_tables(small, "anything", []) == list(small.tables)


def test_wide_catalogue_is_capped():
    assert len(relevant_tables(WIDE, "how much did we invest in databricks", [DATABRICKS])) \
        <= MAX_TABLES


def test_fact_table_joining_named_things_is_kept():
    sent = relevant_tables(WIDE, "Which of our funds hold Databricks?", [DATABRICKS])
    # the question names a fund and a company; investments links them
    assert {"funds", "companies", "investments"} <= set(sent)


def test_dimension_of_a_picked_fact_table_is_added():
    # "invest" picks investments; the partner named is a GP; the company names live in
    # companies, which investments references
    sent = relevant_tables(WIDE, "What did Priya invest in this year?", [PRIYA])
    assert {"general_partners", "investments", "companies"} <= set(sent)


def test_keywords_from_the_docs_count():
    sent = relevant_tables(WIDE, "What is it worth now?", [DATABRICKS])
    assert "valuations" in sent


def test_informal_wording_reaches_the_fact_table():
    sent = relevant_tables(WIDE, "How much did we put into databricks by year?", [DATABRICKS])
    assert "investments" in sent and "companies" in sent


def test_follow_up_keeps_the_previous_tables():
    keep = tables_named("SELECT sum(amount_usd) FROM investments i JOIN funds f USING "
                        "(fund_id)", WIDE)
    assert set(keep) == {"investments", "funds"}
    sent = relevant_tables(WIDE, "And in 2025?", [], keep=keep)
    assert {"investments", "funds"} <= set(sent)


def test_nothing_matches_sends_the_most_connected():
    sent = relevant_tables(WIDE, "zzz qqq", [])
    assert sent and "investments" in sent


def test_stem():
    assert stem("investments") == stem("invest") == "invest"
    assert stem("companies") == "company" and stem("valuations") == "valuat"
