"""The bridge between Slack and the core: queue a question, show that it's working, call
`run_turn`, and post what it returns. Listeners call `ask`/`choose` on the request thread;
everything slow happens on the dispatcher's workers, one job at a time per thread.

While a question waits, the thread shows Slack's assistant status (assistant.threads.setStatus,
which works in channels with chat:write); the answer is streamed with the machine's steps as
task cards (bot.slack.stream). Where either is unavailable it falls back to a placeholder
message that the answer replaces, the same final content either way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from dataclasses import dataclass, replace

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.chart import chart_for_result
from bot.slack import render
from bot.slack.dedupe import Claims
from bot.slack.inbox import GAVE_UP, Inbox, InboxItem, result_from_json, thread_key, turn_trace_id
from bot.slack.names import People
from bot.slack.stream import AnswerStream
from bot.slack.worker import Dispatcher, Overloaded
from states.machine import Deps, run_turn
from states.ports import TurnResult

log = logging.getLogger(__name__)

WORKING_STATUS = "is looking into it…"
PLACEHOLDER_WAIT_S = 30.0  # how long a turn waits for its placeholder before posting fresh
TITLE_CHARS = 80
SKIP = "skip"  # the placeholder step's answer when the event was already claimed
STATUS = ""  # the placeholder step's answer when the assistant status shows instead
RECENT = 5  # questions per user on the Home tab
# Errors that say Slack will not take this content anywhere: try the plain fallback instead.
REJECTED = frozenset({"invalid_blocks", "invalid_blocks_format", "invalid_attachments",
                      "msg_too_long", "too_many_attachments", "invalid_arguments"})


@dataclass(frozen=True)
class Ask:
    """One message for the bot: where it was asked and what it said."""

    channel: str
    thread_ts: str  # the thread's root: event.thread_ts or event.ts
    text: str  # as Slack sent it, minus the bot's own mention; made plain on the worker
    user: str | None
    assistant: bool = False  # a DM thread in the assistant panel: give it a title
    event_id: str | None = None  # claimed durably before anything is posted
    team: str | None = None  # the asker's workspace (streams in channels need it)
    files: bool = False  # the message carried files, which we do not read

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
    index: int  # which option: the options themselves stay in the thread's saved state
    fingerprint: str  # render.option_fingerprint of the option the button showed
    user: str
    team: str | None = None


def thread_id(channel: str, thread_ts: str) -> str:
    """The core's conversation key for a Slack thread."""
    return f"{channel}:{thread_ts}"


class Responder:
    """Runs the core for Slack messages and posts the results."""

    def __init__(self, deps: Deps, client: WebClient, dispatcher: Dispatcher, claims: Claims,
                 inbox: Inbox | None = None, streaming: bool = True):
        self.deps = deps
        self.inbox = inbox  # events from the durable inbox are finished through it
        self.client = client
        self.dispatcher = dispatcher
        self.claims = claims
        self.streaming = streaming
        self.people = People(client)
        # Each user's latest questions for the Home tab: (question, channel, thread root).
        self._recent: dict[str, deque[tuple[str, str, str]]] = {}
        self._workspace_url: str | None = None
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
        queued = [False]  # set below, read by the job: was another question ahead of it?
        item = self.inbox.take(ask.event_id) if self.inbox else None
        try:
            ahead = self.dispatcher.submit(ask.thread_id,
                                           lambda: self._answer(ask, working, queued, item))
        except Overloaded:
            log.warning("overloaded; turning away a question in %s", ask.thread_id)
            self.once(ask.event_id, lambda: self._post(ask.channel, ask.thread_ts,
                                                       render.failure(render.OVERLOADED)))
            return
        queued[0] = bool(ahead)

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

    def home(self, user: str) -> dict:
        """The Home tab for `user`: what we answer, examples, the data's date, their questions."""
        catalog = getattr(self.deps.warehouse, "catalog", None)
        tables = {doc.name: doc.description for doc in catalog.tables.values()} if catalog \
            else {}
        with self._tails_lock:
            recent = list(reversed(self._recent.get(user, ())))
        return render.home_view(tables, getattr(catalog, "as_of", ""),
                                [(q, self._permalink(c, ts)) for q, c, ts in recent])

    def _remember(self, ask: Ask) -> None:
        if not ask.user:
            return
        with self._tails_lock:
            mine = self._recent.setdefault(ask.user, deque(maxlen=RECENT))
            for item in [i for i in mine if i[1:] == (ask.channel, ask.thread_ts)]:
                mine.remove(item)  # one line per thread: its latest question
            mine.append((ask.text, ask.channel, ask.thread_ts))

    def _permalink(self, channel: str, ts: str) -> str | None:
        if self._workspace_url is None:
            try:
                self._workspace_url = self.client.auth_test().get("url") or ""
            except SlackClientError:
                return None
        if not self._workspace_url:
            return None
        return f"{self._workspace_url.rstrip('/')}/archives/{channel}/p{ts.replace('.', '')}"

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
               event_id: str | None = None, text: str | None = None) -> None:
        """A polite no, seen only by the asker where Slack allows it."""
        text = text or render.refusal()

        def post() -> None:
            if dm or not user:
                self._post(channel, thread_ts, {"text": text})
            else:
                self.client.chat_postEphemeral(channel=channel, user=user, text=text,
                                               thread_ts=thread_ts)
        self.once(event_id, post)

    # ---------------------------------------------------------- on the workers

    def _answer(self, ask: Ask, working: Future, queued: list[bool],
                item: InboxItem | None = None) -> None:
        if item is None:
            return self._answer_once(ask, working, queued, None)
        try:
            self._answer_once(ask, working, queued, item)
        finally:
            self.inbox.done(item.event_id)

    def _answer_once(self, ask: Ask, working: Future, queued: list[bool],
                     item: InboxItem | None) -> None:
        try:
            placeholder = working.result(timeout=PLACEHOLDER_WAIT_S)
        except TimeoutError:  # the placeholder never came; post the answer fresh
            placeholder = None
        if placeholder is SKIP:
            log.info("event %s was answered before; skipping", ask.event_id)
            return
        if item is not None and not self.inbox.still_mine(item.event_id):
            return
        # Slack's markup into words, other people's mentions into their names (users.info).
        ask = replace(ask, text=self.people.plain(ask.text))
        self._remember(ask)
        if ask.assistant:
            self._title_if_new(ask)
        if placeholder == STATUS and queued[0]:
            self._status(ask.channel, ask.thread_ts)  # the earlier answer cleared it
        self._turn(ask.channel, ask.thread_ts, ask.text, ask.user, ask.team, placeholder,
                   render.FILES_NOTE if ask.files else None, item)

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
        options = pending.options if pending else []
        option = options[choice.index] if 0 <= choice.index < len(options) else None
        if (conv.status != "clarify" or option is None
                or render.option_fingerprint(option) != choice.fingerprint):
            # An old button: its question was answered (by a typed reply or another click).
            self.client.chat_postEphemeral(channel=choice.channel, user=choice.user,
                                           thread_ts=choice.thread_ts, text=render.STALE_CHOICE)
            return
        try:
            self.client.chat_update(channel=choice.channel, ts=choice.message_ts,
                                    text=f"Chose {option}",
                                    blocks=render.choice_made(choice.blocks, choice.user, option))
        except SlackClientError:
            log.warning("could not mark the clarification as answered", exc_info=True)
        placeholder = STATUS if self._status(choice.channel, choice.thread_ts) else \
            self._placeholder(choice.channel, choice.thread_ts, 0)
        self._turn(choice.channel, choice.thread_ts, option, choice.user, choice.team,
                   placeholder)

    def _turn(self, channel: str, thread_ts: str, text: str, user: str | None,
              team: str | None, placeholder: str | None, note: str | None = None,
              item: InboxItem | None = None) -> None:
        """Run one turn, streaming its steps when the thread shows a status, and deliver it.
        An inbox item whose earlier attempt already ran the turn only has it delivered."""
        stream = None
        result = self._earlier_result(item)
        if result is not None:
            seconds = 0.0
        else:
            if self.streaming and placeholder == STATUS:
                stream = AnswerStream(self.client, channel, thread_ts, user, team)
            trace_id = turn_trace_id(item.event_id) if item else None
            result, seconds = self._run(thread_id(channel, thread_ts), text, user, trace_id,
                                        self._progress(stream, item) if stream else None)
            if item is not None:
                self.inbox.note(item.event_id, result=result)
        if item is not None and not self.inbox.still_mine(item.event_id):
            return  # the new holder delivers the noted result
        message = render.result_message(result, seconds)
        if note:
            message = render.with_note(message, note)
        if stream is not None and stream.finish(message, failed=result.state == "failed"):
            posted = True
        else:
            if stream is not None and stream.ts:
                placeholder = stream.ts  # the stream broke off: its message takes the answer
            posted = self._replace_or_post(channel, thread_ts, placeholder, message)
        if not posted:
            # Slack refused the rich message (say, a block it doesn't take): plain text still helps.
            self._replace_or_post(channel, thread_ts, placeholder, render.plain(result))
        if result.state == "answered" and (len(result.rows) > render.TABLE_ROWS
                                           or result.truncated):
            self._upload_csv(channel, thread_ts, result)
        if result.state == "answered":
            self._upload_chart(channel, thread_ts, result)

    def _progress(self, stream: AnswerStream, item: InboxItem | None) -> Callable[[str], None]:
        """Each step streamed; once the streamed message exists, the inbox records it as the
        item's placeholder, so a process that takes the item over after a crash finishes that
        message instead of posting the answer a second time."""
        noted: list[str] = []

        def step(state: str) -> None:
            stream.step(state)
            if item is not None and not noted and stream.ts:
                noted.append(stream.ts)
                self.inbox.note(item.event_id, placeholder=stream.ts)

        return step

    def _run(self, key: str, text: str, user: str | None, trace_id: str | None = None,
             progress: Callable[[str], None] | None = None) -> tuple[TurnResult, float]:
        start = time.monotonic()
        try:
            result = run_turn(self.deps, key, text, user=user, trace_id=trace_id,
                              progress=progress)
        except Exception:  # run_turn should not raise; if it does, the user still hears back
            log.exception("run_turn raised for %s", key)
            result = TurnResult(thread_id=key, state="failed", answer=render.INTERNAL,
                                error_kind="internal")
        return result, time.monotonic() - start

    def _replace_or_post(self, channel: str, thread_ts: str, placeholder: str | None,
                         message: render.Message) -> bool:
        if placeholder:
            try:
                self.client.chat_update(channel=channel, ts=placeholder, **message)
                return True
            except SlackApiError as err:
                error = err.response.get("error")
                if error in REJECTED:  # the content, not the message: the caller goes plain
                    log.warning("Slack refused the message (%s)", error)
                    return False
                log.warning("chat.update failed (%s); posting instead", error)
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

    def _upload_chart(self, channel: str, thread_ts: str, result: TurnResult) -> None:
        """The answer's chart as a PNG in the thread, described in its alt text; when the
        result deserves none, or drawing fails, the answer stands alone."""
        chart = chart_for_result(result)
        if chart is None:
            return
        name = f"fundbot-chart-{result.trace_id or 'result'}.png"
        try:
            self.client.files_upload_v2(channel=channel, thread_ts=thread_ts, filename=name,
                                        title="Chart of this answer", content=chart.png,
                                        alt_txt=chart.alt)
        except SlackClientError:
            log.exception("chart upload failed for %s", result.trace_id)

    # ------------------------------------------------------------- Slack bits

    def _show_working(self, ask: Ask, ahead: int) -> str | None:
        """Set the assistant status (STATUS), or else post a placeholder and return its ts."""
        if self._status(ask.channel, ask.thread_ts):
            return STATUS
        return self._placeholder(ask.channel, ask.thread_ts, ahead)

    def _status(self, channel: str, thread_ts: str) -> bool:
        try:
            self.client.assistant_threads_setStatus(
                channel_id=channel, thread_ts=thread_ts, status=WORKING_STATUS,
                loading_messages=render.LOADING)
            return True
        except SlackApiError as err:  # an older workspace: a placeholder message instead
            log.info("no assistant status in %s (%s)", channel, err.response.get("error"))
            return False

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
