"""The app's own surfaces: the Home tab, and suggested prompts in its Messages tab (the agent
DM, where prompts are set for the whole conversation, without a thread_ts)."""

from __future__ import annotations

from slack_bolt import App, BoltContext

from bot.slack import render
from bot.slack.access import Access
from bot.slack.responder import Responder


def register(app: App, responder: Responder, access: Access) -> None:
    client, ui = responder.client, responder.dispatcher.ui

    @app.event("app_home_opened")
    def on_home_opened(event: dict, context: BoltContext) -> None:
        user = event.get("user") or context.user_id
        if event.get("tab") == "messages":
            channel = event.get("channel") or context.channel_id
            ui(lambda: client.assistant_threads_setSuggestedPrompts(
                channel_id=channel, title="Try asking", prompts=render.SUGGESTED_PROMPTS))
            return
        if event.get("tab") == "home" and user:
            # Someone not allowed to ask sees how to get access, not what the data holds.
            allowed = access.allows(user, "", is_dm=True)
            ui(lambda: client.views_publish(
                user_id=user, view=responder.home(user) if allowed else render.home_refusal()))
