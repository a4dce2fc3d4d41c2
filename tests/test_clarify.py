"""clarify on its own: which replies pick which option, and what the open question keeps."""

from __future__ import annotations

from datetime import date

import pytest

from states import clarify
from states.clarify import pick_option
from states.context import TurnContext
from states.machine import Deps, run_turn
from states.ports import Conversation, Limits, Pending, QueryResult, Trace
from tests.core_fakes import FakeWarehouse, MemoryStore, ScriptedLLM

ADAMS = ["Adam Brooks", "Adam Levin"]
THREE = ["Anna Smith", "Anna Jones", "Bob Smith"]
FUNDS = ["Fund I", "Fund II"]


@pytest.mark.parametrize("reply,options,expected", [
    ("first", ADAMS, "Adam Brooks"), ("the last one", ADAMS, "Adam Levin"),
    ("last", THREE, "Bob Smith"), ("2.", ADAMS, "Adam Levin"), ("1!", ADAMS, "Adam Brooks"),
    ("ADAM LEVIN", ADAMS, "Adam Levin"),
    ("Fund II", FUNDS, "Fund II"),  # "fund i" is inside it: the exact name decides
    ("fund i", FUNDS, "Fund I"),
    ("brooks, adam", ADAMS, "Adam Brooks"),  # "adam" is shared, "brooks" is Adam Brooks's own
    ("jones", THREE, "Anna Jones"),
    ("smith", THREE, None),  # two Smiths
    ("anna", THREE, None),
    ("adam", [], None), ("", ADAMS, None),
])
def test_pick_option_cases(reply, options, expected):
    assert pick_option(reply, options) == expected


def _ctx(reply: str, pending: Pending) -> TurnContext:
    deps = Deps(llm=ScriptedLLM(), warehouse=FakeWarehouse(), store=MemoryStore())
    conv = Conversation("t", status="clarify", pending=pending)
    return TurnContext(deps=deps, conv=conv, text=reply, question=pending.question,
                       trace=Trace(trace_id="x", thread_id="t", question=reply, started_at=""))


def _entity(options: list[str], mention: str) -> Pending:
    return Pending(question="What did he do?", prompt=f"Which {mention} do you mean?",
                   options=list(options), rounds=1, kind="entity", mention=mention)


def test_an_entity_choice_is_settled_and_told_as_quoted_data():
    pending = _entity(["José Álvarez", "José Brito"], "José")
    assert clarify.resume(_ctx("José Álvarez", pending)) == "reply"
    assert pending.settled == {"josé": "José Álvarez"}
    assert pending.facts == ['By "José" the user means "José Álvarez".']  # not \\u00e9


def test_a_choice_among_the_models_options_is_told_with_its_question():
    pending = Pending(question="How big is fund II?", prompt="Committed or invested?",
                      options=["committed capital", "invested capital"], rounds=1, kind="llm")
    assert clarify.resume(_ctx("2", pending)) == "reply"
    assert pending.facts == ['Asked "Committed or invested?", the user chose: '
                             '"invested capital".']
    assert pending.settled == {}


def test_a_free_answer_is_told_verbatim_up_to_500_characters():
    pending = Pending(question="How big?", prompt="Which measure?", rounds=1, kind="llm")
    assert clarify.resume(_ctx("committed capital", pending)) == "reply"
    long = "y" * 600
    assert clarify.resume(_ctx(long, pending)) == "reply"
    assert pending.facts == ['Asked "Which measure?", the user answered: "committed capital".',
                             f'Asked "Which measure?", the user answered: "{"y" * 500}".']


@pytest.mark.parametrize("reply", ["2", "3.", "the second one"])
def test_a_number_past_a_single_option_says_there_is_only_one(reply):
    pending = _entity(["Adam Brooks"], "Adam")
    ctx = _ctx(reply, pending)
    assert clarify.resume(ctx) is None  # asked again
    assert ctx.clarification.startswith(f'"{reply}" is not one of the options: there is only '
                                        "1. Answer with a number from 1 to 1 or a name. Which")
    assert ctx.options == ["Adam Brooks"] and pending.facts == []


def _make(results=None, **limits):
    llm, wh, store = ScriptedLLM(), FakeWarehouse(results), MemoryStore()
    return Deps(llm=llm, warehouse=wh, store=store, limits=Limits(**limits),
                today=date(2026, 10, 15)), llm, store


def test_a_second_question_keeps_the_choice_and_the_answers_and_counts_the_round():
    deps, llm, store = _make()
    run_turn(deps, "r", "What has Adam invested in?")
    llm.text("Which year do you mean?")
    r = run_turn(deps, "r", "Adam Levin")
    assert r.state == "clarify" and r.clarification == "Which year do you mean?"
    pending = store.load("r").pending
    assert pending.prompt == "Which year do you mean?" and pending.rounds == 2
    assert pending.settled == {"adam": "Adam Levin"} and pending.kind == "llm"
    assert pending.facts == ['By "Adam" the user means "Adam Levin".']
    assert pending.question == "What has Adam invested in?"
    # the answer to the second question reaches the model with the first one
    llm.sql("SELECT 1 FROM investments").text("ok")
    deps.warehouse.results["SELECT 1 FROM investments"] = QueryResult(["x"], [(1,)])
    assert run_turn(deps, "r", "2025").state == "answered"
    prompt = llm.history[-2]["messages"][-1]["content"]
    assert 'By "Adam" the user means "Adam Levin".' in prompt
    assert 'Asked "Which year do you mean?", the user answered: "2025".' in prompt


def test_one_clarifying_round_is_named_in_the_singular():
    deps, llm, store = _make(clarify_rounds=1)
    llm.text("Which fund?").text("Which year?")
    assert run_turn(deps, "one", "how much?").state == "clarify"  # the one round allowed
    r = run_turn(deps, "one", "the big one")
    assert r.state == "failed" and r.error_kind == "clarify"
    assert r.answer == ("I still can't tell exactly what you mean after 1 clarifying question "
                        "(the last was: Which year?). Please ask again with full names, a "
                        "fund, or a period.")


def test_two_clarifying_rounds_are_named_in_the_plural():
    deps, llm, store = _make(clarify_rounds=2)
    llm.text("Which fund?").text("Which year?").text("Which quarter?")
    assert run_turn(deps, "two", "how much?").state == "clarify"
    assert run_turn(deps, "two", "the big one").state == "clarify"
    r = run_turn(deps, "two", "last year")
    assert r.state == "failed" and r.answer == (
        "I still can't tell exactly what you mean after 2 clarifying questions (the last was: "
        "Which quarter?). Please ask again with full names, a fund, or a period.")
