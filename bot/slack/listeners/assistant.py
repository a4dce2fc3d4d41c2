"""Slack's assistant threads (the agent DM): suggested prompts when a thread starts, answers
with status and streaming like anywhere else."""

from __future__ import annotations

from slack_bolt import BoltContext
from slack_bolt.middleware.assistant import Assistant

from bot.slack import render
from bot.slack.access import Access
from bot.slack.listeners.events import ignored, submit
from bot.slack.responder import Responder

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

    # The user switched channels with the panel open. Our answers do not depend on the channel
    # they are looking at, so there is nothing to save; without this listener Bolt's default
    # store rewrites the greeting's metadata on every switch.
    @assistant.thread_context_changed
    def context_changed() -> None:
        return None

    # Any threaded DM from a person lands here, the panel's threads and plain DM threads alike.
    @assistant.user_message
    def user_message(payload: dict, body: dict, context: BoltContext) -> None:
        if ignored(payload, access):
            return
        submit(responder, access, payload, body, context, payload["thread_ts"], assistant=True)

    return assistant
