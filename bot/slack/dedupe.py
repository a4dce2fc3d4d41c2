"""Each Slack event is answered once, across retries, restarts and processes.

Two layers: `seen` is an in-memory check on the request thread, so a retry to this process is
acknowledged and dropped in microseconds; `claim` is the durable record (store.claim_event),
taken off the request thread before anything is posted, and decides across restarts.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections import OrderedDict
from typing import Any

log = logging.getLogger(__name__)

REMEMBER = 50_000  # event ids kept in memory; Slack retries within minutes
PRUNE_EVERY = 10_000  # durable claims between clean-ups of old ids (and once at the first)


class Claims:
    def __init__(self, store: Any, remember: int = REMEMBER):
        self.store = store
        self.remember = remember
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()
        # One durable claim at a time: SQLite serialises writes anyway, and its busy handler
        # sleeps in growing steps, which a burst of events would turn into long waits.
        self._claim_lock = threading.Lock()
        self._claims = itertools.count()
        self._prune = getattr(store, "prune_events", None)

    def seen(self, event_id: str) -> bool:
        """True if this process has had the event before; records it otherwise."""
        with self._seen_lock:
            if event_id in self._recent:
                return True
            self._recent[event_id] = None
            if len(self._recent) > self.remember:
                self._recent.popitem(last=False)
            return False

    def claim(self, event_id: str | None) -> bool:
        """True if nobody answered this event before (None, for payloads without one: True)."""
        if not event_id:
            return True
        with self._claim_lock:
            if self._prune and next(self._claims) % PRUNE_EVERY == 0:
                try:
                    self._prune()
                except Exception:  # housekeeping only; never in the way of an event
                    log.exception("could not prune old event ids")
            try:
                return bool(self.store.claim_event(event_id))
            except Exception:  # a store hiccup should cost a rare duplicate, not a lost question
                log.exception("could not record event %s; answering it anyway", event_id)
                return True
