"""The durable Slack inbox: every Events API delivery is written to the store before Slack gets
its 200, and workers in any process lease it from there, so no acknowledged question is lost
when a process dies, and none is answered twice.

- `accept(body)` runs on the ack path (the HTTP fast path, or Bolt middleware in Socket Mode):
  one INSERT keyed by the event id, which also de-duplicates Slack's retries across processes.
- The pump (one thread per process) leases items, oldest first and in each thread's order
  (store.inbox_lease), and hands each to Bolt as it would have arrived, marked with this
  process's private token so the middleware lets it through. The listeners then call the
  Responder as before; the Responder reports back through `take`, `note` and `done`.
- A heartbeat renews this process's leases every lease/3; a dead process stops renewing, so its
  items are free after `lease_s` (FUNDBOT_INBOX_LEASE_S, 30 s) for any process, itself after
  a restart included. What the dead one had done travels with the item: the placeholder it
  posted (the answer replaces it) and the turn's result once the turn had finished (posted
  without running the turn again). An item that fails MAX_ATTEMPTS times gets an honest
  message in place of its placeholder.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import socket
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from typing import Any

from bot.store import InboxItem
from states.ports import StoreError, TurnResult

log = logging.getLogger(__name__)

HEADER = "x-fundbot-inbox"
MAX_ATTEMPTS = 3
PRUNE_EVERY_S = 3600.0
GAVE_UP = ("Sorry, I couldn't finish answering this question (I was interrupted more than "
           "once). Please ask it again.")
_BY_APP: weakref.WeakKeyDictionary[Any, Inbox] = weakref.WeakKeyDictionary()


def inbox_of(app: Any) -> Inbox | None:
    """The inbox create_app attached to a Bolt app (the HTTP server's ack path uses it)."""
    return _BY_APP.get(app)


def attach(app: Any, inbox: Inbox) -> None:
    _BY_APP[app] = inbox


def thread_key(body: dict) -> str:
    """The conversation a delivery belongs to: channel:thread root, as the Responder keys
    turns; deliveries without one (app_home_opened...) are their own key."""
    event = body.get("event") or {}
    thread = event.get("assistant_thread") or {}
    channel = event.get("channel") or thread.get("channel_id") or event.get("user") or ""
    root = event.get("thread_ts") or thread.get("thread_ts") or event.get("ts")
    if isinstance(channel, dict):  # channel_created and kin carry an object
        channel = channel.get("id", "")
    return f"{channel}:{root}" if channel and root else f"event:{body.get('event_id')}"


def turn_trace_id(event_id: str) -> str:
    """The trace id of the turn that answers an event: the same on every attempt, so a
    worker taking over can see whether the turn already ran."""
    return "ev" + uuid.uuid5(uuid.NAMESPACE_URL, f"slack-event:{event_id}").hex[:14]


def result_json(result: TurnResult) -> str:
    return json.dumps(dataclasses.asdict(result), default=str, ensure_ascii=False)


def result_from_json(data: str) -> TurnResult:
    d = json.loads(data)
    d["rows"] = [tuple(r) for r in d.get("rows", [])]
    names = {f.name for f in dataclasses.fields(TurnResult)}
    return TurnResult(**{k: v for k, v in d.items() if k in names})


class Inbox:
    def __init__(self, store: Any, *, lease_s: float = 30.0, capacity: int = 16,
                 poll_s: float = 0.5, quiet: Any = None):
        self.store = store
        self.lease_s = lease_s
        self.capacity = max(1, capacity)
        self.poll_s = poll_s
        self.quiet = quiet
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.token = secrets.token_hex(16)  # marks our own re-dispatch; never leaves the process
        self._lock = threading.Lock()
        self._items: dict[str, InboxItem] = {}  # leased here and not finished
        self._taken: set[str] = set()  # handed to the Responder, which finishes them
        self._wake = threading.Event()
        self._stop = threading.Event()  # the pump
        self._closed = threading.Event()  # the heartbeat
        self._threads: list[threading.Thread] = []
        self.dispatch: Callable[[InboxItem], None] | None = None
        self.give_up: Callable[[InboxItem], None] | None = None

    # ------------------------------------------------------------- ack path

    def accept(self, body: dict | bytes | str) -> bool | None:
        """Record a delivery before it is acknowledged. True: new; False: a retry of one any
        process has; None: the store failed (the caller handles the event directly, as a
        store hiccup should cost at most a rare duplicate, never a lost question)."""
        raw = body if isinstance(body, str) else (
            body.decode("utf-8") if isinstance(body, bytes) else json.dumps(body))
        parsed = json.loads(raw) if not isinstance(body, dict) else body
        event_id = parsed.get("event_id")
        if not event_id:
            return None
        try:
            new = self.store.inbox_put(event_id, thread_key(parsed), raw)
        except StoreError as err:
            log.error("inbox write failed, handling %s directly: %s", event_id, err.message)
            return None
        if new:
            self._wake.set()
        return new

    def is_ours(self, headers: dict) -> bool:
        value = headers.get(HEADER)
        value = value[0] if isinstance(value, list | tuple) and value else value
        return bool(value) and secrets.compare_digest(str(value), self.token)

    # ---------------------------------------------------------------- workers

    def start(self) -> Inbox:
        for target, name in ((self._pump, "fundbot-inbox"), (self._beat, "fundbot-lease")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Take no more items (the ones already taken are still finished)."""
        self._stop.set()
        self._wake.set()

    def close(self) -> None:
        """Give back whatever is still leased here, for another process to take now."""
        self.stop()
        self._closed.set()
        for thread in self._threads:
            thread.join(timeout=5)
        try:
            released = self.store.inbox_release(self.owner)
            if released:
                log.info("gave back %d unfinished Slack deliveries", released)
        except StoreError as err:
            log.warning("could not give back leased deliveries (they expire): %s", err.message)

    def _pump(self) -> None:
        next_prune = time.monotonic()
        while not self._stop.is_set():
            if time.monotonic() >= next_prune:  # finished items and old event ids
                next_prune = time.monotonic() + PRUNE_EVERY_S
                try:
                    self.store.prune_events()
                except StoreError as err:
                    log.warning("could not prune old Slack deliveries: %s", err.message)
            self._wake.wait(self.poll_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            with self._lock:
                room = self.capacity - len(self._items)
            if room <= 0:
                continue
            try:
                items = self.store.inbox_lease(self.owner, room, self.lease_s)
            except StoreError as err:
                log.error("could not lease Slack deliveries: %s", err.message)
                self._stop.wait(min(5.0, self.lease_s / 3))
                continue
            for item in items:
                self._handle(item)
            if len(items) == room:
                self._wake.set()  # there may be more

    def _handle(self, item: InboxItem) -> None:
        with self._lock:
            self._items[item.event_id] = item
        if item.attempts > 1:
            log.warning("taking over Slack event %s (attempt %d)", item.event_id, item.attempts)
        try:
            if item.attempts > MAX_ATTEMPTS and item.result is None:
                if self.give_up is not None:
                    self.give_up(item)
            elif self.dispatch is not None:
                if self.quiet is not None:
                    self.quiet.wait()  # acknowledgements first
                self.dispatch(item)
        except Exception:  # one bad delivery must not stop the pump
            log.exception("Slack event %s failed", item.event_id)
        with self._lock:
            taken = item.event_id in self._taken
        if not taken:  # ignored, refused at once, or failed: nothing more will happen
            self.done(item.event_id)

    def _beat(self) -> None:
        # Runs until close(), past stop(): the items already taken keep their leases while
        # they finish.
        while not self._closed.wait(self.lease_s / 3):
            self._renew()

    def _renew(self) -> None:
        if not self.pending:
            return
        try:
            self.store.inbox_renew(self.owner, self.lease_s)
        except StoreError as err:
            log.warning("could not renew leases: %s", err.message)

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._items)

    # ------------------------------------------------- the Responder's hooks

    def take(self, event_id: str | None) -> InboxItem | None:
        """The Responder answers this event and will call `done`; the item as leased (with
        what an earlier attempt did), or None if the event did not come through the inbox."""
        with self._lock:
            item = self._items.get(event_id or "")
            if item is not None:
                self._taken.add(item.event_id)
            return item

    def still_mine(self, event_id: str) -> bool:
        """Before a turn and before its answer is posted: is the lease still ours? A process
        stalled past its lease has lost the item to another, which answers it instead."""
        try:
            if self.store.inbox_hold(event_id, self.owner, self.lease_s):
                return True
        except StoreError as err:  # cannot tell: answering beats losing the question
            log.warning("could not check the lease of %s: %s", event_id, err.message)
            return True
        log.warning("lost the lease of %s to another process; leaving it to that one",
                    event_id)
        return False

    def note(self, event_id: str, *, placeholder: str | None = None,
             result: TurnResult | None = None) -> None:
        try:
            self.store.inbox_note(event_id, placeholder=placeholder,
                                  result=result_json(result) if result is not None else None)
        except StoreError as err:  # only a takeover would miss it
            log.warning("could not note progress of %s: %s", event_id, err.message)

    def done(self, event_id: str) -> None:
        try:
            self.store.inbox_done(event_id, self.owner)
        except StoreError as err:
            log.error("could not mark %s answered (it may be answered again): %s", event_id,
                      err.message)
        with self._lock:
            self._items.pop(event_id, None)
            self._taken.discard(event_id)
        self._wake.set()  # room for more
