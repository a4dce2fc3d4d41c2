"""Button clicks: clarification choices, feedback votes, and the "add a comment" button."""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App

from bot.slack import render
from bot.slack.access import Access, is_dm
from bot.slack.responder import Choice, Responder

log = logging.getLogger(__name__)


def _where(body: dict) -> tuple[str, str, dict]:
    """(channel, thread root ts, message) of the message holding the clicked button."""
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
    return channel, message.get("thread_ts") or message.get("ts", ""), message


def register(app: App, responder: Responder, access: Access) -> None:
    store, client, ui = responder.deps.store, responder.client, responder.dispatcher.ui

    def allowed(body: dict, channel: str, root: str) -> bool:
        user = body["user"]["id"]
        if access.allows(user, channel, is_dm(channel)):
            return True
        responder.refuse(channel, root, user, is_dm(channel))
        return False

    @app.action(re.compile(rf"^{render.CLARIFY_ACTION}_\d+$"))
    def on_clarify(ack: Ack, body: dict, action: dict) -> None:
        ack()
        channel, root, message = _where(body)
        if not allowed(body, channel, root):
            return
        responder.choose(Choice(channel=channel, thread_ts=root, message_ts=message["ts"],
                                blocks=message.get("blocks") or [],
                                option=render.clarify_option(action["value"]),
                                user=body["user"]["id"]))

    @app.action(render.FEEDBACK_ACTION)
    def on_feedback(ack: Ack, body: dict, action: dict) -> None:
        ack()
        channel, root, _ = _where(body)
        if not allowed(body, channel, root):
            return
        user = body["user"]["id"]
        vote, trace_id = render.parse_feedback(action["value"])
        store.save_feedback(trace_id, user, vote)
        if vote == "down":  # ask what was wrong while the trigger is fresh (3 s)
            trigger = body["trigger_id"]
            ui(lambda: client.views_open(trigger_id=trigger,
                                         view=render.feedback_modal(vote, trace_id)))
        else:
            ui(lambda: client.chat_postEphemeral(channel=channel, user=user, thread_ts=root,
                                                 **render.feedback_thanks(vote, trace_id)))

    @app.action(render.COMMENT_ACTION)
    def on_comment_button(ack: Ack, body: dict, action: dict) -> None:
        ack()
        vote, trace_id = render.parse_feedback(action["value"])
        trigger = body["trigger_id"]
        ui(lambda: client.views_open(trigger_id=trigger,
                                     view=render.feedback_modal(vote, trace_id)))
