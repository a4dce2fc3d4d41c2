"""Mentions in channels, plain replies to a pending clarification, and direct messages."""

from __future__ import annotations

import html
import re

from slack_bolt import App, BoltContext

from bot.slack import render
from bot.slack.access import Access, is_dm
from bot.slack.responder import Ask, Responder, thread_id

_MENTION = re.compile(r"<@[A-Z0-9]+>")
_HANDLED_SUBTYPES = (None, "thread_broadcast")  # edits, joins and bot posts are not questions


def question_text(text: str) -> str:
    """The question without mentions of the bot, with Slack's &amp;/&lt;/&gt; undone."""
    return html.unescape(_MENTION.sub(" ", text or "")).strip()


def register(app: App, responder: Responder, access: Access) -> None:
    store = responder.deps.store

    def submit(event: dict, event_id: str | None) -> None:
        channel, user = event["channel"], event.get("user")
        dm = is_dm(channel, event.get("channel_type"))
        root = event.get("thread_ts") or event["ts"]
        if not access.allows(user, channel, dm):
            responder.refuse(channel, root, user, dm, event_id)
            return
        text = question_text(event.get("text", ""))
        if not text:
            responder.once(event_id, lambda: responder.client.chat_postMessage(
                channel=channel, thread_ts=root, **render.help_message()))
            return
        responder.ask(Ask(channel=channel, thread_ts=root, text=text, user=user,
                          event_id=event_id))

    @app.event("app_mention")
    def on_mention(event: dict, body: dict) -> None:
        submit(event, body.get("event_id"))

    @app.event("message")
    def on_message(event: dict, body: dict, context: BoltContext) -> None:
        if event.get("subtype") not in _HANDLED_SUBTYPES or event.get("bot_id"):
            return
        channel = event.get("channel", "")
        if is_dm(channel, event.get("channel_type")):
            submit(event, body.get("event_id"))  # threaded DMs go to the assistant middleware
            return
        text = event.get("text") or ""
        if context.bot_user_id and f"<@{context.bot_user_id}>" in text:
            return  # the app_mention event for this message answers it
        root = event.get("thread_ts")
        if root and store.load(thread_id(channel, root)).status == "clarify":
            submit(event, body.get("event_id"))  # a plain reply to our clarifying question
