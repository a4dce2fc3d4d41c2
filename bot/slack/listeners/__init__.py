"""Thin Bolt listeners, one file per kind: each turns a Slack payload into a Responder call."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.access import Access
from bot.slack.listeners import actions, assistant, events, home, views
from bot.slack.responder import Responder


def register(app: App, responder: Responder, access: Access) -> None:
    """Attach every listener; the assistant middleware first, so it sees DM threads."""
    app.assistant(assistant.build(responder, access))
    events.register(app, responder, access)
    actions.register(app, responder, access)
    views.register(app, responder, access.reviewers)
    home.register(app, responder, access)
