"""Mentions in channels, plain replies to a pending clarification, and direct messages."""

from __future__ import annotations

from slack_bolt import App, BoltContext

from bot.slack import names, render
from bot.slack.access import Access, from_bot, is_dm, is_external
from bot.slack.responder import Ask, Responder, thread_id

# Edits, deletions, joins and bot posts are not questions; a message with files is (we answer
# its text and say that files are not read).
_HANDLED_SUBTYPES = (None, "thread_broadcast", "file_share")


def ignored(event: dict, access: Access) -> bool:
    """Events nobody should answer: edits (Slack re-sends an edited mention with `edited`),
    other subtypes, and anything written by a bot or an app not on the allow-list."""
    if event.get("subtype") not in _HANDLED_SUBTYPES or event.get("edited"):
        return True
    return from_bot(event) and not access.allows_bot(event)


def outsider(event: dict, body: dict, context: BoltContext) -> bool:
    """A person from another organisation (Slack Connect)."""
    home = {body.get("team_id"), body.get("enterprise_id"), context.team_id,
            context.enterprise_id}
    for auth in body.get("authorizations") or ():
        home |= {auth.get("team_id"), auth.get("enterprise_id")}
    user_team = event.get("user_team") or (event.get("user_profile") or {}).get("team")
    return is_external(home, user_team, bool(body.get("is_ext_shared_channel")))


def submit(responder: Responder, access: Access, event: dict, body: dict,
           context: BoltContext, root: str, assistant: bool = False) -> None:
    """Screen one message from a person and queue it, refuse it, or send help."""
    channel, user = event["channel"], event.get("user")
    event_id = body.get("event_id")
    dm = assistant or is_dm(channel, event.get("channel_type"))
    if outsider(event, body, context) and not access.external:
        responder.refuse(channel, root, user, dm, event_id, text=render.external_refusal())
        return
    if not access.allows(user, channel, dm):
        responder.refuse(channel, root, user, dm, event_id)
        return
    text = names.strip_bot(event.get("text", ""), context.bot_user_id).strip()
    files = bool(event.get("files")) or event.get("subtype") == "file_share"
    if not names.plain(text):
        message = render.help_message()
        if files:
            message = render.with_note(message, render.FILES_NOTE)
        responder.once(event_id, lambda: responder.client.chat_postMessage(
            channel=channel, thread_ts=root, **message))
        return
    responder.ask(Ask(channel=channel, thread_ts=root, text=text, user=user,
                      assistant=assistant, event_id=event_id, files=files,
                      team=event.get("user_team") or event.get("team") or body.get("team_id")))


def register(app: App, responder: Responder, access: Access) -> None:
    store = responder.deps.store

    def waiting_for_someone_else(channel: str, root: str | None, user: str | None) -> bool:
        """The thread's pending clarification belongs to another person."""
        if not root:
            return False
        conv = store.load(thread_id(channel, root))
        asker = conv.pending.asker if conv.status == "clarify" and conv.pending else None
        return bool(asker) and user != asker

    @app.event("app_mention")
    def on_mention(event: dict, body: dict, context: BoltContext) -> None:
        if ignored(event, access):
            return
        channel, root, user = event["channel"], event.get("thread_ts"), event.get("user")
        if waiting_for_someone_else(channel, root, user):
            # Not taken as the answer to someone else's question: say so, only to them.
            responder.refuse(channel, root, user, False, body.get("event_id"),
                             text=render.WAITING_FOR_ASKER)
            return
        submit(responder, access, event, body, context, root or event["ts"])

    @app.event("message")
    def on_message(event: dict, body: dict, context: BoltContext) -> None:
        if ignored(event, access):
            return
        channel = event.get("channel", "")
        if is_dm(channel, event.get("channel_type")):
            # threaded DMs go to the assistant middleware; these are top-level ones
            submit(responder, access, event, body, context, event.get("thread_ts") or event["ts"])
            return
        text = event.get("text") or ""
        if context.bot_user_id and f"<@{context.bot_user_id}" in text:
            return  # the app_mention event for this message answers it
        root = event.get("thread_ts")
        if not root or store.load(thread_id(channel, root)).status != "clarify":
            return
        if waiting_for_someone_else(channel, root, event.get("user")):
            return  # someone else talking in the thread: only the asker (or a click) answers
        submit(responder, access, event, body, context, root)
