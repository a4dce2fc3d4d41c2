"""Slack's assistant side panel: suggested prompts when a thread starts, answers with status."""

from __future__ import annotations

from slack_bolt.middleware.assistant import Assistant

from bot.slack import render
from bot.slack.access import Access
from bot.slack.listeners.events import question_text
from bot.slack.responder import Ask, Responder

GREETING = "Hi! Ask me about the fund's portfolio: investments, valuations, partners, funds."


def build(responder: Responder, access: Access) -> Assistant:
    assistant = Assistant()
    client = responder.client

    @assistant.thread_started
    def started(payload: dict, body: dict) -> None:
        thread = payload["assistant_thread"]
        channel, root = thread["channel_id"], thread["thread_ts"]

        def greet() -> None:
            client.chat_postMessage(channel=channel, thread_ts=root, text=GREETING)
            client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, thread_ts=root, title="Try asking",
                prompts=render.SUGGESTED_PROMPTS)
        responder.once(body.get("event_id"), greet)

    # Any threaded DM from a person lands here, the panel's threads and plain DM threads alike.
    @assistant.user_message
    def user_message(payload: dict, body: dict) -> None:
        if payload.get("subtype") not in (None, "thread_broadcast"):
            return
        channel, user, root = payload["channel"], payload.get("user"), payload["thread_ts"]
        event_id = body.get("event_id")
        if not access.allows(user, channel, is_dm=True):
            responder.refuse(channel, root, user, dm=True, event_id=event_id)
            return
        text = question_text(payload.get("text", ""))
        if not text:
            responder.once(event_id, lambda: client.chat_postMessage(
                channel=channel, thread_ts=root, **render.help_message()))
            return
        responder.ask(Ask(channel=channel, thread_ts=root, text=text, user=user, assistant=True,
                          event_id=event_id))

    return assistant
