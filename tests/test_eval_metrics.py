"""The evaluation metrics on hand-computed examples (eval/metrics.py)."""

from __future__ import annotations

import socket
from datetime import date
from decimal import Decimal

import duckdb
import pytest

from eval import metrics as M
from schemas.catalog import build_catalog
from tests.warehouse_fixture import make_db


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    path = make_db(tmp_path_factory.mktemp("metrics") / "fx.duckdb")
    con = duckdb.connect(path, read_only=True)
    try:
        return build_catalog(con, docs={})
    finally:
        con.close()


# --------------------------------------------------------------- table/column recall

JOIN_REF = ("SELECT c.company_name, SUM(i.amount_usd) AS invested FROM investments i "
            "JOIN companies c ON c.company_id = i.company_id GROUP BY c.company_name")


def test_aliases_resolve_to_the_same_tables_and_columns(catalog):
    pred = ("SELECT companies.company_name, sum(investments.amount_usd) FROM investments "
            "JOIN companies USING (company_id) GROUP BY 1")
    r = M.sql_recall(pred, JOIN_REF, catalog)
    assert (r.table_recall, r.column_recall) == (1.0, 1.0)
    assert r.missing_tables == [] and r.missing_columns == []


def test_cte_is_seen_through(catalog):
    pred = ("WITH t AS (SELECT company_id, SUM(amount_usd) AS s FROM investments "
            "GROUP BY company_id) SELECT c.company_name, t.s FROM t JOIN companies c "
            "ON c.company_id = t.company_id")
    r = M.sql_recall(pred, JOIN_REF, catalog)
    assert (r.table_recall, r.column_recall) == (1.0, 1.0)


def test_subquery_tables_count_and_missing_ones_are_named(catalog):
    ref = ("SELECT company_name FROM companies WHERE company_id IN "
           "(SELECT company_id FROM exits)")
    r = M.sql_recall("SELECT company_name FROM companies", ref, catalog)
    # reference: {companies, exits}; {companies.company_id, companies.company_name,
    # exits.company_id}; the prediction has 1 of 2 tables and 1 of 3 columns
    assert r.table_recall == 0.5
    assert r.column_recall == pytest.approx(1 / 3)
    assert r.missing_tables == ["exits"]
    assert r.missing_columns == ["companies.company_id", "exits.company_id"]


def test_select_star_expands_to_every_column(catalog):
    r = M.sql_recall("SELECT fund_name, vintage_year FROM funds", "SELECT * FROM funds",
                     catalog)
    assert r.table_recall == 1.0
    assert r.column_recall == pytest.approx(2 / 6)  # funds has six columns
    # the other way round, a star recalls every column the reference names
    r = M.sql_recall("SELECT f.* FROM funds f", "SELECT fund_name FROM funds", catalog)
    assert r.column_recall == 1.0


def test_union_branches_both_count(catalog):
    ref = "SELECT company_name FROM companies UNION SELECT full_name FROM general_partners"
    r = M.sql_recall("SELECT company_name FROM companies", ref, catalog)
    assert (r.table_recall, r.column_recall) == (0.5, 0.5)
    r = M.sql_recall(ref.replace("UNION", "UNION ALL"), ref, catalog)
    assert (r.table_recall, r.column_recall) == (1.0, 1.0)


def test_extra_columns_and_tables_do_not_lower_recall(catalog):
    pred = ("SELECT f.fund_name, f.vintage_year, f.strategy, COUNT(i.investment_id) "
            "FROM funds f LEFT JOIN investments i ON i.fund_id = f.fund_id GROUP BY ALL")
    r = M.sql_recall(pred, "SELECT fund_name FROM funds", catalog)
    assert (r.table_recall, r.column_recall) == (1.0, 1.0)


def test_empty_or_failed_predictions_recall_nothing(catalog):
    for pred in (None, "", "   ", "SELEC company_name FORM companies WHERE"):
        r = M.sql_recall(pred, JOIN_REF, catalog)
        assert (r.table_recall, r.column_recall) == (0.0, 0.0), pred
        assert r.missing_tables == ["companies", "investments"]
    assert M.sql_recall("SELECT 1", None, catalog).table_recall is None


def test_column_recall_is_undefined_when_the_reference_names_no_column(catalog):
    ref = "SELECT COUNT(*) FROM investments"
    r = M.sql_recall("SELECT COUNT(investment_id) FROM investments", ref, catalog)
    assert (r.table_recall, r.column_recall) == (1.0, None)
    r = M.sql_recall("SELECT COUNT(*) FROM funds", ref, catalog)  # the wrong table
    assert (r.table_recall, r.column_recall) == (0.0, None)
    assert M.sql_recall(None, ref, catalog).column_recall is None


def test_is_ordered_looks_at_the_outer_query_only():
    assert M.is_ordered("SELECT a FROM t ORDER BY a")
    assert M.is_ordered("SELECT a FROM t UNION SELECT b FROM u ORDER BY 1")
    assert not M.is_ordered("SELECT * FROM (SELECT a FROM t ORDER BY a) s")
    assert not M.is_ordered("SELECT COUNT(*) FROM t")


# ------------------------------------------------------------------ value recall


def test_values_in_result_rows_strings_ignore_case_numbers_tolerate():
    values = ["Databricks, Inc.", 236_500_000, "2013-09-17"]
    rows = [("databricks, inc.", Decimal("236500000.00"), date(2013, 9, 17))]
    assert M.value_recall(values, ["c", "invested", "d"], rows) == (1.0, [])
    assert M.value_recall([236_500_000], ["x"], [(236_500_000.004,)])[0] == 1.0
    assert M.value_recall([236_500_000], ["x"], [(236_600_000,)]) == (0.0, [236_500_000])
    # a different company with a similar name is not the same string
    assert M.value_recall(["Databricks, Inc."], ["c"], [("DataBrick Systems LLC",)])[0] == 0.0


@pytest.mark.parametrize("text", [
    "We invested $1.2M.", "We invested 1,200,000 USD.", "We invested 1.2 million dollars.",
    "We invested USD 1200000.", "We invested $1.20m", "we invested $1,200K",
])
def test_numbers_in_prose_match_in_any_usual_format(text):
    assert M.text_has(1_200_000, text)


def test_numbers_in_prose_respect_the_precision_written():
    assert M.text_has(850_400, "a check of $850K")  # rounds to what is written
    assert not M.text_has(862_000, "a check of $850K")  # 862K would be written $862K
    assert M.text_has(2_838_211_236, "worth $2.84B")
    assert not M.text_has(2_838_211_236, "worth $2.48B")
    assert M.text_has(0.125, "a stake of 12.5%") and M.text_has(12.5, "a stake of 12.5%")
    assert M.text_has(3.6271, "a MOIC of 3.63x")
    assert M.text_has(-2_100_000, "a loss of -$2.1M") and not M.text_has(2_100_000, "-$2.1M")
    # brackets are asides in prose, not negative amounts
    assert M.text_has(236_500_000, "Databricks, Inc. ($236.5M)")
    assert not M.text_has(3, "in Q3")  # digits inside a word are not numbers


def test_strings_and_dates_in_prose():
    assert M.text_has("Databricks, Inc.", "We put $236.5M into databricks.")
    assert not M.text_has("DataBrick Systems LLC", "We put $236.5M into databricks.")
    assert M.text_has("Adam Levin", "Led by ADAM LEVIN in 2019.")
    assert not M.text_has("Adam Levin", "Led by Adam Brooks.")
    for spelled in ("2013-09-17", "September 17, 2013", "Sep 17, 2013", "17 September 2013"):
        assert M.text_has("2013-09-17", f"first invested on {spelled}"), spelled


def test_wrong_number_in_fluent_text_keeps_rouge_high_and_value_recall_low():
    # the case study's warning: a fluent answer with the wrong figures
    reference = ("We invested $236.5M in Databricks, Inc.; it is worth $2.84B as of "
                 "2026-09-30.")
    predicted = ("We invested $263.5M in Databricks, Inc.; it is worth $2.48B as of "
                 "2026-09-30.")
    scores = M.rouge(predicted, reference)
    assert scores["rouge1"] > 0.85 and scores["rougeL"] > 0.85
    recall, missed = M.value_recall([236_500_000, 2_838_211_236], text=predicted)
    assert recall == 0.0 and missed == [236_500_000, 2_838_211_236]
    assert M.value_recall([236_500_000, 2_838_211_236], text=reference)[0] == 1.0


def test_value_recall_counts_a_value_found_in_rows_or_text():
    values = ["Fund I", 42]
    assert M.value_recall(values, ["f"], [("Fund I",)], text="There were 42.")[0] == 1.0
    assert M.value_recall(values, ["f"], [("Fund I",)])[0] == 0.5


def test_value_recall_of_empty_or_failed_predictions():
    assert M.value_recall([1, "x"], [], []) == (0.0, [1, "x"])
    assert M.value_recall([1, "x"], text="") == (0.0, [1, "x"])
    assert M.value_recall([1, "x"], text=None) == (0.0, [1, "x"])
    assert M.value_recall([], ["a"], [(1,)]) == (None, [])  # nothing to recall: undefined


def test_derive_values_skips_keys_and_nulls_and_dedupes():
    cols = ["company_id", "company_name", "invested", "exit_date"]
    rows = [(7, "Databricks, Inc.", Decimal("236500000.00"), None),
            (8, "DATABRICKS, INC.", Decimal("1.50"), date(2024, 2, 22))]
    assert M.derive_values(cols, rows) == ["Databricks, Inc.", 236500000, 1.5, "2024-02-22"]
    assert M.derive_values(cols, rows, value_columns=["INVESTED"]) == [236500000, 1.5]
    assert M.derive_values(cols, rows, max_rows=1) == ["Databricks, Inc.", 236500000]
    # without ORDER BY the database may return rows in any order: the head is canonical
    unordered = [("b", 2), ("a", 1), ("c", None)]
    assert M.derive_values(["n", "v"], unordered, max_rows=2, ordered=False) == ["a", 1, "b", 2]
    assert M.canonical_rows([(2, None), (1, "x"), (1, None)]) == [(1, None), (1, "x"), (2, None)]


# ------------------------------------------------------------------------- ROUGE


def test_rouge_f1_on_hand_computed_example():
    # reference 4 tokens, prediction 4 tokens, 3 unigrams shared -> P = R = F1 = 0.75;
    # bigrams: ref {we invested, invested 12, 12 million}, pred shares 2 of 3 -> 2/3
    s = M.rouge("we invested 12 dollars", "we invested 12 million")
    assert s["rouge1"] == pytest.approx(0.75)
    assert s["rouge2"] == pytest.approx(2 / 3)
    assert s["rougeL"] == pytest.approx(0.75)
    assert M.rouge("same words here", "same words here") == {
        "rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}
    assert M.rouge("", "a reference") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    assert M.rouge(None, "a reference")["rouge1"] == 0.0
    assert M.rouge("anything", None) is None


def test_rouge_needs_no_download_or_network(monkeypatch):
    import nltk

    def no_network(*args, **kwargs):
        raise AssertionError("ROUGE tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(nltk, "download", no_network)
    monkeypatch.setattr(M, "_scorer", None)  # build the scorer under the block
    s = M.rouge("the investments were made", "the investment was made")
    assert 0.5 < s["rouge1"] < 1.0  # stemming: investments ~ investment


# ------------------------------------------------------------ execution accuracy


def test_execution_ignores_column_order_and_names():
    assert M.execution_match(["total", "name"], [(2, "y"), (1, "x")],
                             ["name", "invested"], [("x", 1), ("y", 2)])


def test_execution_row_order_counts_only_when_the_reference_orders():
    ref = [("a", 3), ("b", 2), ("c", 1)]
    rev = list(reversed(ref))
    assert M.execution_match(["n", "v"], rev, ["n", "v"], ref, ordered=False)
    assert not M.execution_match(["n", "v"], rev, ["n", "v"], ref, ordered=True)
    assert M.execution_match(["n", "v"], ref, ["n", "v"], ref, ordered=True)


def test_execution_compares_bags_with_numeric_tolerance():
    assert not M.execution_match(["a"], [(1,), (2,), (2,)], ["a"], [(1,), (1,), (2,)])
    assert M.execution_match(["a"], [(100.0000001,)], ["a"], [(Decimal("100.00"),)])
    assert M.execution_match(["a"], [(1234.57,)], ["a"], [(1234.5678,)])  # ROUND(x, 2)
    assert not M.execution_match(["a"], [(101,)], ["a"], [(100,)])
    assert M.execution_match(["d"], [("2024-01-01",)], ["d"], [(date(2024, 1, 1),)])
    assert M.execution_match(["a", "b"], [(None, 1)], ["a", "b"], [(None, 1)])


def test_execution_extra_columns_allowed_unless_strict():
    pred_cols, pred = ["company_name", "invested"], [("Databricks, Inc.", 236_500_000)]
    assert M.execution_match(pred_cols, pred, ["invested"], [(236_500_000,)])
    assert not M.execution_match(pred_cols, pred, ["invested"], [(236_500_000,)],
                                 allow_extra_columns=False)
    assert not M.execution_match(["invested"], [(236_500_000,)], pred_cols, pred)


def test_execution_needs_columns_that_line_up_row_by_row():
    # each column's values match as a bag, but the rows pair them differently
    ref = [("a", 1), ("b", 2)]
    assert not M.execution_match(["n", "v"], [("a", 2), ("b", 1)], ["n", "v"], ref)


def test_execution_of_empty_and_failed_results():
    assert M.execution_match([], [], ["a"], []) is False  # no columns at all
    assert M.execution_match(["a"], [], ["a"], [])
    assert not M.execution_match(["a"], [], ["a"], [(1,)])
    assert not M.execution_match(["a"], [(1,)], ["a"], [])


# ---------------------------------------------------------------- classification


def test_precision_and_recall_of_clarifications():
    pairs = [(True, True), (True, False), (False, True), (False, False), (True, True)]
    assert M.precision_recall(pairs) == (2 / 3, 2 / 3)
    assert M.precision_recall([(False, False)]) == (None, None)
    assert M.mean([None, 1.0, 0.0]) == 0.5 and M.mean([None]) is None
