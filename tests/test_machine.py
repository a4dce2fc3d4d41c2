"""The machine as data: legal and illegal transitions, guards, the diagram."""

from __future__ import annotations

import pytest
from transitions import MachineError

from states.machine import TERMINAL, TRANSITIONS, S, build_machine, mermaid


class Model:
    def __init__(self, debug_ok=True, empty_ok=True, clarify_ok=True, reinterpret_ok=True):
        self.debug_ok, self.empty_ok, self.clarify_ok = debug_ok, empty_ok, clarify_ok
        self.reinterpret_ok = reinterpret_ok

    def can_reinterpret(self):
        return self.reinterpret_ok

    def can_debug(self):
        return self.debug_ok

    def can_debug_empty(self):
        return self.empty_ok

    def can_clarify(self):
        return self.clarify_ok


def walk(model, start, *events):
    build_machine(model, start)
    for e in events:
        model.trigger(e)
    return model.state


def test_happy_path():
    assert walk(Model(), S.UNDERSTAND, "sql", "rows", "done", "ok") == "answered"


def test_unverified_answer_goes_back_once_then_is_replaced():
    assert walk(Model(), S.UNDERSTAND, "sql", "rows", "done", "reject") == "interpret"
    assert walk(Model(), S.INTERPRET, "done", "reject", "done", "ok") == "answered"
    assert walk(Model(reinterpret_ok=False), S.VERIFY, "reject") == "replace"
    assert walk(Model(reinterpret_ok=False), S.VERIFY, "reject", "done") == "answered"


def test_debug_then_success():
    assert walk(Model(), S.UNDERSTAND, "sql", "error", "sql", "rows", "done", "ok") == "answered"


def test_error_without_attempts_left_fails():
    assert walk(Model(debug_ok=False), S.UNDERSTAND, "sql", "error") == "failed"


def test_empty_result_goes_to_debug_once_then_interprets():
    assert walk(Model(), S.UNDERSTAND, "sql", "empty") == "debug"
    assert walk(Model(empty_ok=False), S.UNDERSTAND, "sql", "empty") == "interpret"


def test_clarify_guard():
    assert walk(Model(), S.UNDERSTAND, "ask") == "clarify"
    assert walk(Model(clarify_ok=False), S.UNDERSTAND, "ask") == "failed"


def test_resume_from_clarify():
    assert walk(Model(), S.CLARIFY, "reply", "sql", "rows", "done", "ok") == "answered"


@pytest.mark.parametrize("start,event", [
    (S.UNDERSTAND, "rows"),  # no rows before SQL ran
    (S.UNDERSTAND, "done"),
    (S.EXECUTE, "ask"),  # execute cannot ask the user
    (S.CLARIFY, "sql"),  # a clarification resumes at understand, not execute
    (S.INTERPRET, "error"),
    (S.INTERPRET, "ok"),  # an answer is posted only after verify
    (S.VERIFY, "sql"),
    (S.ANSWERED, "sql"),  # terminal
    (S.FAILED, "reply"),
])
def test_illegal_transitions_raise(start, event):
    m = Model()
    build_machine(m, start)
    with pytest.raises(MachineError):
        m.trigger(event)
    assert m.state == start.value  # nothing moved


def test_table_is_complete_and_terminals_have_no_exits():
    sources = {src for _, src, _, _ in TRANSITIONS}
    assert sources == set(S) - TERMINAL
    reachable = {dst for _, _, dst, _ in TRANSITIONS} | {S.UNDERSTAND}
    assert reachable == set(S)


def test_mermaid_names_every_state_and_guard():
    text = mermaid()
    assert "stateDiagram-v2" in text
    for s in S:
        assert s.value in text
    assert "can_debug" in text and "can_clarify" in text


def test_mermaid_is_a_titled_diagram_without_a_current_state():
    text = mermaid()
    lines = text.splitlines()
    assert lines[:4] == ["---", "fundbot", "---", "stateDiagram-v2"]
    # transitions draws the model's current state highlighted: a static diagram has none
    assert not [ln for ln in lines if ln.strip().startswith(("classDef", "Class "))]
    assert "s_active" not in text and "darksalmon" not in text
    assert "  understand --> execute: sql" in lines and text.endswith("\n")
