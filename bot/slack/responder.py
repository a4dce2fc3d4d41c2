"""The bridge between Slack and the core: queue a question, show that it's working, call
`run_turn`, and post what it returns. Listeners call `ask`/`choose` on the request thread;
everything slow happens on the dispatcher's workers, one job at a time per thread.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack import render
from bot.slack.dedupe import Claims
from bot.slack.inbox import GAVE_UP, Inbox, InboxItem, result_from_json, thread_key, turn_trace_id
from bot.slack.worker import Dispatcher, Overloaded
from states.machine import Deps, run_turn
from states.ports import TurnResult

log = logging.getLogger(__name__)

WORKING_STATUS = "is looking into it…"
PLACEHOLDER_WAIT_S = 30.0  # how long a turn waits for its placeholder before posting fresh
TITLE_CHARS = 80
SKIP = "skip"  # the placeholder step's answer when the event was already claimed


@dataclass(frozen=True)
class Ask:
    """One message for the bot: where it was asked and what it said."""

    channel: str
    thread_ts: str  # the thread's root: event.thread_ts or event.ts
    text: str
    user: str | None
    assistant: bool = False  # a DM thread: show status in the assistant panel if we can
    event_id: str | None = None  # claimed durably before anything is posted

    @property
    def thread_id(self) -> str:
        return thread_id(self.channel, self.thread_ts)


@dataclass(frozen=True)
class Choice:
    """A click on a clarification button."""

    channel: str
    thread_ts: str
    message_ts: str  # the clarification message, to show the choice on it
    blocks: list
    option: str
    user: str


def thread_id(channel: str, thread_ts: str) -> str:
    """The core's conversation key for a Slack thread."""
    return f"{channel}:{thread_ts}"


class Responder:
    """Runs the core for Slack messages and posts the results."""

    def __init__(self, deps: Deps, client: WebClient, dispatcher: Dispatcher, claims: Claims,
                 inbox: Inbox | None = None):
        self.deps = deps
        self.inbox = inbox  # events from the durable inbox are finished through it
        self.client = client
        self.dispatcher = dispatcher
        self.claims = claims
        # The latest placeholder step per thread: the next one waits for it, so placeholders,
        # and so the answers that replace them, appear in the order the questions came.
        self._tails: dict[str, Future] = {}
        self._tails_lock = threading.Lock()

    # ------------------------------------------------- called on the request thread

    def ask(self, ask: Ask) -> None:
        """Queue a question; a placeholder (or assistant status) appears at once.

        The queued turn waits for the durable claim of its event, taken with the placeholder
        off this thread; a redelivery someone already answered stops there."""
        working: Future = Future()
        item = self.inbox.take(ask.event_id) if self.inbox else None
        try:
            ahead = self.dispatcher.submit(ask.thread_id,
                                           lambda: self._answer(ask, working, item))
        except Overloaded:
            log.warning("overloaded; turning away a question in %s", ask.thread_id)
            self.once(ask.event_id, lambda: self._post(ask.channel, ask.thread_ts,
                                                       render.failure(render.OVERLOADED)))
            return

        with self._tails_lock:
            before = self._tails.get(ask.thread_id)
            self._tails[ask.thread_id] = working
        working.add_done_callback(lambda f: self._drop_tail(ask.thread_id, f))

        def claim_and_show() -> str | None:
            if before is not None:
                futures.wait([before], timeout=PLACEHOLDER_WAIT_S)
            if item is None and not self.claims.claim(ask.event_id):
                return SKIP
            if item is not None and item.placeholder:
                return item.placeholder  # posted by an earlier attempt: the answer replaces it
            ts = self._show_working(ask, ahead)
            if item is not None and ts:
                self.inbox.note(item.event_id, placeholder=ts)
            return ts
        self.dispatcher.ui(lambda: _settle(working, claim_and_show))

    def _drop_tail(self, key: str, done: Future) -> None:
        with self._tails_lock:
            if self._tails.get(key) is done:
                del self._tails[key]

    def once(self, event_id: str | None, fn: Callable[[], object]) -> None:
        """Run a quick Slack call off the request thread, if the event is not answered yet."""
        item = self.inbox.take(event_id) if self.inbox else None
        if item is not None:
            self.dispatcher.ui(lambda: self._finishing(item, fn))
            return
        self.dispatcher.ui(lambda: fn() if self.claims.claim(event_id) else None)

    def _finishing(self, item: InboxItem, fn: Callable[[], object]) -> None:
        try:
            fn()
        finally:
            self.inbox.done(item.event_id)

    def give_up(self, item: InboxItem) -> None:
        """An inbox item that failed every attempt: an honest message in place of its
        placeholder (or in its thread), rather than a placeholder forever."""
        channel, _, root = thread_key(json.loads(item.body)).partition(":")
        try:
            if item.placeholder:
                self.client.chat_update(channel=channel, ts=item.placeholder, text=GAVE_UP,
                                        blocks=[])
            elif channel and root:
                self._post(channel, root, {"text": GAVE_UP})
        except SlackClientError:
            log.warning("could not tell %s that its question was given up", channel)

    def choose(self, choice: Choice) -> None:
        """Queue a clarification click; it answers exactly as typing the option would."""
        try:
            self.dispatcher.submit(thread_id(choice.channel, choice.thread_ts),
                                   lambda: self._chosen(choice))
        except Overloaded:
            self.dispatcher.ui(lambda: self._post(choice.channel, choice.thread_ts,
                                                  render.failure(render.OVERLOADED)))

    def refuse(self, channel: str, thread_ts: str, user: str | None, dm: bool,
               event_id: str | None = None) -> None:
        """A polite no, seen only by the asker where Slack allows it."""
        def post() -> None:
            text = render.refusal()
            if dm or not user:
                self._post(channel, thread_ts, {"text": text})
            else:
                self.client.chat_postEphemeral(channel=channel, user=user, text=text,
                                               thread_ts=thread_ts)
        self.once(event_id, post)

    # ---------------------------------------------------------- on the workers

    def _answer(self, ask: Ask, working: Future, item: InboxItem | None = None) -> None:
        if item is None:
            return self._answer_once(ask, working, None)
        try:
            self._answer_once(ask, working, item)
        finally:
            self.inbox.done(item.event_id)

    def _answer_once(self, ask: Ask, working: Future, item: InboxItem | None) -> None:
        try:
            placeholder = working.result(timeout=PLACEHOLDER_WAIT_S)
        except TimeoutError:  # the placeholder never came; post the answer fresh
            placeholder = None
        if placeholder is SKIP:
            log.info("event %s was answered before; skipping", ask.event_id)
            return
        if item is not None and not self.inbox.still_mine(item.event_id):
            return
        if ask.assistant:
            self._title_if_new(ask)
        result = self._earlier_result(item)
        if result is not None:  # an earlier attempt ran the turn: only deliver it
            seconds = 0.0
        else:
            trace_id = turn_trace_id(item.event_id) if item else None
            result, seconds = self._run(ask.thread_id, ask.text, ask.user, trace_id)
            if item is not None:
                self.inbox.note(item.event_id, result=result)
        if item is not None and not self.inbox.still_mine(item.event_id):
            return  # the new holder delivers the noted result into the same placeholder
        self._deliver(ask.channel, ask.thread_ts, placeholder, result, seconds)

    def _earlier_result(self, item: InboxItem | None) -> TurnResult | None:
        """What an earlier (interrupted) attempt at this event produced, if its turn ran."""
        if item is None or item.attempts <= 1:
            return None
        if item.result:
            return result_from_json(item.result)
        trace = self.deps.store.get_trace(turn_trace_id(item.event_id))
        if trace is None or not trace.final_state:
            return None  # the turn never finished, so it left the thread as it was: run it
        sql = trace.sql_attempts[-1].sql if trace.sql_attempts else None
        return TurnResult(thread_id=trace.thread_id, state=trace.final_state,
                          answer=trace.answer, sql=sql, trace_id=trace.trace_id)

    def _chosen(self, choice: Choice) -> None:
        conv = self.deps.store.load(thread_id(choice.channel, choice.thread_ts))
        pending = conv.pending
        if conv.status != "clarify" or pending is None or (
                pending.options and choice.option not in pending.options):
            # An old button: its question was answered (by a typed reply or another click).
            self.client.chat_postEphemeral(channel=choice.channel, user=choice.user,
                                           thread_ts=choice.thread_ts, text=render.STALE_CHOICE)
            return
        try:
            self.client.chat_update(channel=choice.channel, ts=choice.message_ts,
                                    text=f"Chose {choice.option}",
                                    blocks=render.choice_made(choice.blocks, choice.user,
                                                              choice.option))
        except SlackClientError:
            log.warning("could not mark the clarification as answered", exc_info=True)
        placeholder = self._placeholder(choice.channel, choice.thread_ts, 0)
        result, seconds = self._run(thread_id(choice.channel, choice.thread_ts), choice.option,
                                    choice.user)
        self._deliver(choice.channel, choice.thread_ts, placeholder, result, seconds)

    def _run(self, key: str, text: str, user: str | None,
             trace_id: str | None = None) -> tuple[TurnResult, float]:
        start = time.monotonic()
        try:
            result = run_turn(self.deps, key, text, user=user, trace_id=trace_id)
        except Exception:  # run_turn should not raise; if it does, the user still hears back
            log.exception("run_turn raised for %s", key)
            result = TurnResult(thread_id=key, state="failed", answer=render.INTERNAL,
                                error_kind="internal")
        return result, time.monotonic() - start

    def _deliver(self, channel: str, thread_ts: str, placeholder: str | None,
                 result: TurnResult, seconds: float) -> None:
        message = render.result_message(result, seconds)
        posted = self._replace_or_post(channel, thread_ts, placeholder, message)
        if not posted:
            # Slack refused the rich message (say, a block it doesn't take): plain text still helps.
            plain = {"text": (result.answer or result.clarification or render.INTERNAL)[:3000]}
            self._replace_or_post(channel, thread_ts, placeholder, plain)
        if result.state == "answered" and (len(result.rows) > render.TABLE_ROWS
                                           or result.truncated):
            self._upload_csv(channel, thread_ts, result)

    def _replace_or_post(self, channel: str, thread_ts: str, placeholder: str | None,
                         message: render.Message) -> bool:
        if placeholder:
            try:
                self.client.chat_update(channel=channel, ts=placeholder, **message)
                return True
            except SlackApiError as err:
                log.warning("chat.update failed (%s); posting instead", err.response.get("error"))
        try:
            self._post(channel, thread_ts, message)
            return True
        except SlackClientError:
            log.exception("could not post to %s", channel)
            return False

    def _upload_csv(self, channel: str, thread_ts: str, result: TurnResult) -> None:
        name = f"fundbot-{result.trace_id or 'result'}.csv"
        try:
            self.client.files_upload_v2(
                channel=channel, thread_ts=thread_ts, filename=name, title=name,
                content=render.rows_csv(result.columns, result.rows),
            )
        except SlackClientError:
            log.exception("CSV upload failed for %s", result.trace_id)

    # ------------------------------------------------------------- Slack bits

    def _show_working(self, ask: Ask, ahead: int) -> str | None:
        """Set the assistant status, or post a placeholder; returns the placeholder's ts."""
        if ask.assistant:
            try:
                self.client.assistant_threads_setStatus(
                    channel_id=ask.channel, thread_ts=ask.thread_ts, status=WORKING_STATUS)
                return None
            except SlackApiError:
                pass  # a plain DM thread, not the assistant panel: fall back to a placeholder
        return self._placeholder(ask.channel, ask.thread_ts, ahead)

    def _placeholder(self, channel: str, thread_ts: str, ahead: int) -> str | None:
        try:
            return self._post(channel, thread_ts, render.working(ahead))["ts"]
        except SlackClientError:
            log.warning("could not post a placeholder in %s", channel, exc_info=True)
            return None

    def _title_if_new(self, ask: Ask) -> None:
        conv = self.deps.store.load(ask.thread_id)
        if conv.history or conv.status != "idle":
            return
        title = ask.text if len(ask.text) <= TITLE_CHARS else ask.text[: TITLE_CHARS - 1] + "…"
        try:
            self.client.assistant_threads_setTitle(channel_id=ask.channel,
                                                   thread_ts=ask.thread_ts, title=title)
        except SlackApiError:
            pass  # not an assistant-panel thread

    def _post(self, channel: str, thread_ts: str, message: render.Message) -> dict:
        return self.client.chat_postMessage(channel=channel, thread_ts=thread_ts, **message).data


def _settle(future: Future, fn) -> None:
    """Resolve `future` with fn()'s value, or None if it raised, so no waiter hangs."""
    value = None
    try:
        value = fn()
    finally:
        future.set_result(value)
