"""Button clicks: clarification choices, feedback votes, the "add a comment" button, and a
reviewer's Verify / Retire on a proposed verified query."""

from __future__ import annotations

import logging
import re

from slack_bolt import Ack, App

from bot import library
from bot.library import record_feedback
from bot.slack import render
from bot.slack.access import Access, is_dm, is_external
from bot.slack.responder import Choice, Responder

log = logging.getLogger(__name__)


def _where(body: dict) -> tuple[str, str, dict]:
    """(channel, thread root ts, message) of the message holding the clicked button."""
    message = body.get("message") or {}
    channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
    return channel, message.get("thread_ts") or message.get("ts", ""), message


def register(app: App, responder: Responder, access: Access) -> None:
    store, client = responder.deps.store, responder.client
    ui, urgent = responder.dispatcher.ui, responder.dispatcher.urgent
    warehouse = responder.deps.warehouse

    def allowed(body: dict, channel: str, root: str) -> bool:
        user = body["user"]["id"]
        home = {(body.get("team") or {}).get("id"), (body.get("enterprise") or {}).get("id")}
        if not access.external and is_external(home, body["user"].get("team_id"),
                                               bool(body.get("is_ext_shared_channel"))):
            responder.refuse(channel, root, user, is_dm(channel),
                             text=render.external_refusal())
            return False
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
        index, fingerprint = render.clarify_choice(action["value"])
        responder.choose(Choice(channel=channel, thread_ts=root, message_ts=message["ts"],
                                blocks=message.get("blocks") or [], index=index,
                                fingerprint=fingerprint, user=body["user"]["id"],
                                team=body["user"].get("team_id")))

    @app.action(render.FEEDBACK_ACTION)
    def on_feedback(ack: Ack, body: dict, action: dict) -> None:
        ack()
        channel, root, _ = _where(body)
        if not allowed(body, channel, root):
            return
        user = body["user"]["id"]
        vote, trace_id = render.parse_feedback(action["value"])
        proposed = record_feedback(store, warehouse, trace_id, user, vote)
        if vote == "down":  # ask what was wrong while the trigger is fresh (3 s)
            trigger = body["trigger_id"]
            urgent(lambda: client.views_open(trigger_id=trigger,
                                             view=render.feedback_modal(vote, trace_id)))
        else:
            ui(lambda: client.chat_postEphemeral(channel=channel, user=user, thread_ts=root,
                                                 **render.feedback_thanks(vote, trace_id)))
        if proposed is not None and proposed.status == "proposed":
            _ask_reviewers(proposed, user, channel, root)

    def _ask_reviewers(query, user: str, channel: str, root: str) -> None:
        """A reviewer who voted gets the buttons in the thread; otherwise each reviewer by DM."""
        if user in access.reviewers:
            ui(lambda: client.chat_postEphemeral(channel=channel, user=user, thread_ts=root,
                                                 **render.review_request(query)))
            return
        for reviewer in sorted(access.reviewers):
            ui(lambda r=reviewer: client.chat_postMessage(
                channel=r, **render.review_request(query, proposed_by=user)))

    @app.action(re.compile(rf"^{render.REVIEW_ACTION}_(verify|retire)$"))
    def on_review(ack: Ack, body: dict, action: dict) -> None:
        ack()
        user = body["user"]["id"]
        channel = (body.get("channel") or {}).get("id") or body["container"]["channel_id"]
        container = body.get("container") or {}
        decision, query_id = render.parse_review(action["action_id"], action["value"])
        if user not in access.reviewers:  # nothing becomes verified without a named reviewer
            ui(lambda: client.chat_postEphemeral(channel=channel, user=user,
                                                 text=render.NOT_A_REVIEWER))
            return

        def review() -> None:
            try:
                query = (library.verify(store, warehouse, query_id, user) if decision == "verify"
                         else library.retire(store, query_id, user))
            except library.LibraryError as exc:
                client.chat_postEphemeral(channel=channel, user=user,
                                          **render.review_failed(str(exc)))
                return
            done = render.review_done(query, user)
            if container.get("is_ephemeral") or not container.get("message_ts"):
                client.chat_postEphemeral(channel=channel, user=user, **done)
            else:
                client.chat_update(channel=channel, ts=container["message_ts"], **done)
        ui(review)

    @app.action(render.COMMENT_ACTION)
    def on_comment_button(ack: Ack, body: dict, action: dict) -> None:
        ack()
        vote, trace_id = render.parse_feedback(action["value"])
        trigger = body["trigger_id"]
        urgent(lambda: client.views_open(trigger_id=trigger,
                                         view=render.feedback_modal(vote, trace_id)))
