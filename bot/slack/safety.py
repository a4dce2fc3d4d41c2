"""The one place where text leaves for Slack: `seal` makes every outgoing payload inert.

Everything a user, the model or the data wrote may hold Slack's control sequences
(`<!channel>`, `<@U…>`, `<#C…>`, `<https://…|label>`). Rather than trusting each message
builder to escape its pieces, `SealedClient` (the WebClient the app uses, Bolt's helpers
included) passes the arguments of every message-bearing Web API call through `seal`:

- mrkdwn text (a message's `text`, `mrkdwn` text objects) gets Slack's documented escaping of
  `&`, `<` and `>`;
- standard-Markdown text (`markdown` blocks, streamed `markdown_text`) and plain text (buttons,
  table cells, titles, statuses, prompts) is defanged: a zero-width space after each `<` and
  `&`, so nothing parses as a control sequence or an entity, and Markdown links show their
  address (`[label](url)` becomes `label (url)`);
- the only live sequences are the ones our own code wrote with `own()` (`mention`, `link`),
  which carry a per-process secret no input can guess.

Messages are posted with link and media unfurling off.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from slack_sdk import WebClient
from slack_sdk.web.slack_response import SlackResponse

ZWSP = "\u200b"
_NONCE = secrets.token_hex(8)
_OWN = re.compile("\ue000" + _NONCE + "(.*?)\ue001", re.S)
_STRAY = re.compile("[\ue000\ue001]")
_MD_LINK = re.compile(r"(!?)\[([^\]\n]*)\]\(\s*([^)\s]+)[^)]*\)")

# Web API methods that carry text a person will read; everything else passes untouched.
MESSAGE_METHODS = frozenset({
    "chat.postMessage", "chat.update", "chat.postEphemeral", "chat.scheduleMessage",
    "chat.startStream", "chat.appendStream", "chat.stopStream",
    "views.open", "views.publish", "views.update", "views.push",
    "files.completeUploadExternal",
    "assistant.threads.setStatus", "assistant.threads.setTitle",
    "assistant.threads.setSuggestedPrompts",
})
UNFURL_OFF = frozenset({"chat.postMessage", "chat.scheduleMessage"})  # the methods that take it
# Keys whose strings are never shown as text (ids, values, metadata, URLs of our own).
_OPAQUE = frozenset({"type", "action_id", "block_id", "callback_id", "value", "private_metadata",
                     "url", "image_url", "channel", "channel_id", "ts", "thread_ts", "user",
                     "trigger_id", "external_id", "id", "style", "initial_value", "token",
                     "recipient_user_id", "recipient_team_id", "task_display_mode", "status",
                     "event_type", "files", "filename", "file_id"})
# Top-level arguments of the message methods that hold plain text.
_PLAIN_ARGS = frozenset({"title", "status", "loading_messages", "prompts"})


def own(sequence: str) -> str:
    """Mark a control sequence our code wrote (a mention, a link) so `seal` keeps it live."""
    return f"\ue000{_NONCE}{sequence}\ue001"


def mention(user_id: str) -> str:
    """A live mention of a Slack user id we know (the clicker, the asker)."""
    return own(f"<@{_id(user_id)}>")


def link(url: str, label: str) -> str:
    """A live link of our own making; the label is escaped like any other text."""
    return own(f"<{url.replace('|', '%7C').replace('>', '%3E')}|{escape_mrkdwn(label)}>")


def escape_mrkdwn(text: str) -> str:
    """Slack's three escapes for mrkdwn; our own marked sequences are kept as written."""
    return _apply(text, lambda s: s.replace("&", "&amp;").replace("<", "&lt;")
                  .replace(">", "&gt;"))


def defang(text: str) -> str:
    """Text for fields Slack reads as Markdown or plain text: no control sequence survives."""
    return _apply(text, _defang)


def _defang(text: str) -> str:
    text = _MD_LINK.sub(lambda m: f"{m.group(2)} ({m.group(3)})", text)
    return text.replace("<", "<" + ZWSP).replace("&", "&" + ZWSP)


def _apply(text: str, fn) -> str:
    out, at = [], 0
    for m in _OWN.finditer(text):
        out.append(fn(_STRAY.sub("", text[at:m.start()])))
        out.append(m.group(1))
        at = m.end()
    out.append(fn(_STRAY.sub("", text[at:])))
    return "".join(out)


def _id(user_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "", user_id)


# ---------------------------------------------------------------------- the walk


def seal(method: str, args: dict[str, Any] | None) -> dict[str, Any] | None:
    """The arguments of one Web API call, made safe to send (a new dict; input untouched)."""
    if not args or method not in MESSAGE_METHODS:
        return args
    out = dict(args)
    for key, value in args.items():
        if key == "text" and isinstance(value, str):
            out[key] = defang(value) if args.get("mrkdwn") is False else escape_mrkdwn(value)
        elif key == "markdown_text" and isinstance(value, str):
            out[key] = defang(value)
        elif key == "initial_comment" and isinstance(value, str):
            out[key] = escape_mrkdwn(value)
        elif key in ("blocks", "attachments", "chunks", "view"):
            out[key] = _sealed_json(value)
        elif key in _PLAIN_ARGS:
            out[key] = _walk(_maybe_json(value), "plain")
    if method in UNFURL_OFF:
        out.setdefault("unfurl_links", False)
        out.setdefault("unfurl_media", False)
    return out


def _sealed_json(value: Any) -> Any:
    if isinstance(value, str):  # some callers send blocks as a JSON string
        parsed = _maybe_json(value)
        return json.dumps(_walk(parsed, "plain")) if parsed is not value else defang(value)
    return _walk(value, "plain")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _walk(node: Any, mode: str) -> Any:
    """Seal every displayed string under `node`; `mode` is how the parent's text is read."""
    if isinstance(node, list):
        return [_walk(item, mode) for item in node]
    if isinstance(node, str):
        return escape_mrkdwn(node) if mode == "mrkdwn" else defang(node)
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    here = "mrkdwn" if kind == "mrkdwn" else "plain"
    return {key: value if key in _OPAQUE else _walk(value, here)
            for key, value in node.items()}


class SealedClient(WebClient):
    """The app's WebClient: every call's arguments pass through `seal` on the way out, so no
    code path (ours, Bolt's `say`/`say_stream`, the Assistant helpers) can skip it."""

    def api_call(self, api_method: str, *, http_verb: str = "POST", files: dict | None = None,
                 data: dict | None = None, params: dict | None = None,
                 json: dict | None = None,  # noqa: A002 -- WebClient's own parameter name
                 headers: dict | None = None, auth: dict | None = None) -> SlackResponse:
        return super().api_call(api_method, http_verb=http_verb, files=files,
                                data=seal(api_method, data), params=seal(api_method, params),
                                json=seal(api_method, json), headers=headers, auth=auth)
