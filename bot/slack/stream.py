"""One answer streamed into its thread with Slack's chat streaming (chat.startStream /
appendStream / stopStream, through slack_sdk's ChatStream, which Bolt's `say_stream` also
returns): the machine's steps appear as task cards while they happen, then the answer text,
and the stream stops with the rest of the message (context, SQL, buttons).

Any Slack error turns the stream off and `finish` says False: the caller then delivers the
same message the old way (chat.update of the stream's message if it had started, else a new
post), so an older workspace or an interrupted stream still gets the whole answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.slack import render

log = logging.getLogger(__name__)


class AnswerStream:
    def __init__(self, client: WebClient, channel: str, thread_ts: str, user: str | None,
                 team: str | None):
        self.client = client
        self.channel = channel
        self.thread_ts = thread_ts
        # recipient_* are required outside DMs: the stream is shown to the asker as it grows.
        self._stream = client.chat_stream(channel=channel, thread_ts=thread_ts,
                                          recipient_user_id=user, recipient_team_id=team,
                                          task_display_mode="timeline")
        self.ok = True
        self._step: str | None = None

    @property
    def ts(self) -> str | None:
        """The streamed message's ts once it started (a fallback updates it), else None."""
        return self._stream.ts

    def step(self, state: str) -> None:
        """The machine entered `state`: the previous step is done, this one is under way."""
        if not self.ok:
            return
        chunks = [render.task(self._step, "complete")] if self._step else []
        chunks.append(render.task(state, "in_progress"))
        self._step = state
        self._call(lambda: self._stream.append(chunks=chunks))

    def finish(self, message: render.Message, failed: bool = False) -> bool:
        """Stream the message's text and stop with its other blocks; False if Slack refused."""
        if not self.ok:
            return False
        text, blocks, attachments = render.for_stream(message)
        if self._step:
            last = render.task(self._step, "error" if failed else "complete")
            if not self._call(lambda: self._stream.append(chunks=[last])):
                return False
        if not self._call(lambda: self._stream.stop(markdown_text=text, blocks=blocks)):
            return False
        if attachments:  # the table: Slack takes it from attachments, which streams don't carry
            try:
                self.client.chat_update(channel=self.channel, ts=self.ts,
                                        text=message.get("text", ""), attachments=attachments)
            except SlackClientError:
                log.warning("could not add the table to the streamed answer; posting it")
                try:
                    self.client.chat_postMessage(channel=self.channel, thread_ts=self.thread_ts,
                                                 text=message.get("text", ""),
                                                 attachments=attachments)
                except SlackClientError:
                    log.exception("could not post the table in %s", self.channel)
        return True

    def _call(self, fn: Callable[[], object]) -> bool:
        try:
            fn()
            return True
        except SlackClientError as err:  # SlackApiError, or the SDK's own "stream not started"
            error = err.response.get("error") if isinstance(err, SlackApiError) else repr(err)
            log.warning("streaming stopped in %s (%s); falling back to post-and-update",
                        self.channel, error)
            self.ok = False
            return False
