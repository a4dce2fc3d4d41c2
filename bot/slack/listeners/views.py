"""The feedback comment modal's submission; a thumbs-down with a comment goes to the
reviewers (FUNDBOT_REVIEWERS) as a direct message."""

from __future__ import annotations

import json

from slack_bolt import Ack, App

from bot.library import record_feedback
from bot.slack import render
from bot.slack.responder import Responder


def register(app: App, responder: Responder, reviewers: frozenset[str] = frozenset()) -> None:
    store = responder.deps.store

    @app.view(render.FEEDBACK_MODAL)
    def on_submit(ack: Ack, body: dict, view: dict) -> None:
        ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        value = view["state"]["values"]["comment"]["text"].get("value") or ""
        if not (meta.get("trace_id") and value.strip()):
            return
        user, vote, comment = body["user"]["id"], meta.get("vote", "down"), value.strip()[:2000]
        record_feedback(store, responder.deps.warehouse, meta["trace_id"], user, vote,
                        comment=comment)
        if vote == "down" and reviewers:
            trace = store.get_trace(meta["trace_id"])
            message = render.review_dispute(trace.question if trace else "", comment, user,
                                            meta["trace_id"], trace and trace.verified_query)
            for reviewer in sorted(reviewers):
                responder.dispatcher.ui(lambda r=reviewer: responder.client.chat_postMessage(
                    channel=r, **message))
