"""The feedback comment modal's submission."""

from __future__ import annotations

import json

from slack_bolt import Ack, App

from bot.library import record_feedback
from bot.slack import render
from bot.slack.responder import Responder


def register(app: App, responder: Responder) -> None:
    store = responder.deps.store

    @app.view(render.FEEDBACK_MODAL)
    def on_submit(ack: Ack, body: dict, view: dict) -> None:
        ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        value = view["state"]["values"]["comment"]["text"].get("value") or ""
        if meta.get("trace_id") and value.strip():
            record_feedback(store, responder.deps.warehouse, meta["trace_id"],
                            body["user"]["id"], meta.get("vote", "down"),
                            comment=value.strip()[:2000])
