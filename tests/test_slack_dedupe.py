"""Claims: the in-memory first line and the durable claim behind it."""

from __future__ import annotations

import threading

from bot.slack.dedupe import Claims
from bot.store import SqliteStore


def test_seen_records_once_and_forgets_the_oldest():
    claims = Claims(store=None, remember=2)
    assert claims.seen("Ev1") is False
    assert claims.seen("Ev1") is True
    claims.seen("Ev2")
    claims.seen("Ev3")  # pushes Ev1 out
    assert claims.seen("Ev1") is False


def test_durable_claim_survives_a_new_process(tmp_path):
    path = tmp_path / "state.sqlite3"
    assert Claims(SqliteStore(path)).claim("Ev1") is True
    restarted = Claims(SqliteStore(path))
    assert restarted.claim("Ev1") is False
    assert restarted.claim("Ev2") is True
    assert restarted.claim(None) is True  # payloads without an event id are always handled


def test_concurrent_claims_of_one_event_have_one_winner(tmp_path):
    claims = Claims(SqliteStore(tmp_path / "state.sqlite3"))
    results, gate = [], threading.Barrier(20)

    def go():
        gate.wait()
        results.append(claims.claim("EvSame"))

    threads = [threading.Thread(target=go) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(results) == 20


class _BrokenStore:
    def __init__(self):
        self.pruned = 0

    def claim_event(self, event_id: str) -> bool:
        raise OSError("disk full")

    def prune_events(self) -> int:
        self.pruned += 1
        return 0


def test_a_broken_store_costs_a_duplicate_not_a_lost_question():
    store = _BrokenStore()
    claims = Claims(store)
    assert claims.claim("Ev1") is True
    assert store.pruned == 1  # old ids are pruned on the first claim
