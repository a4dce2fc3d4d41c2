"""Slack-formatted message text into the plain words a question is made of.

Slack sends `<@U…>` for a mention, `<#C…|name>` for a channel, `<!here>` for a broadcast,
`<https://…|label>` for a link, and `&amp;`/`&lt;`/`&gt;` for the three characters it
reserves. The model should read "what did @Adam Levin invest in", not "what did invest in":
other people's mentions become their real names (users.info, cached), the bot's own mention
is dropped, links become their label, and the entities are undone last.
"""

from __future__ import annotations

import html
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

log = logging.getLogger(__name__)

_SEQUENCE = re.compile(r"<([^<>\n]*)>")
_SPECIALS = {"here": "@here", "channel": "@channel", "everyone": "@everyone"}


def strip_bot(text: str, bot_user_id: str | None) -> str:
    """The text without mentions of the bot itself."""
    if not bot_user_id:
        return text or ""
    return re.sub(rf"<@{re.escape(bot_user_id)}(\|[^>]*)?>", " ", text or "")


def plain(text: str, name_of: Callable[[str], str | None] | None = None) -> str:
    """Slack's formatting turned into words; `name_of(user_id)` gives a person's name."""
    def words(m: re.Match) -> str:
        inner = m.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            name = name_of(target[1:]) if name_of else None
            return "@" + (name or label.lstrip("@") or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):
            special = target[1:]
            if special in _SPECIALS:
                return _SPECIALS[special]
            return label or "@" + special.split("^", 1)[0]  # subteam, date: their fallback
        if label:
            return label
        return target.removeprefix("mailto:")
    out = _SEQUENCE.sub(words, text or "")
    return re.sub(r"[ \t]{2,}", " ", html.unescape(out)).strip()


class People:
    """Real names of Slack users by id, asked of users.info once and remembered."""

    def __init__(self, client: WebClient, remember: int = 5000):
        self.client = client
        self.remember = remember
        self._names: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def name(self, user_id: str) -> str | None:
        with self._lock:
            if user_id in self._names:
                self._names.move_to_end(user_id)
                return self._names[user_id]
        try:
            user = self.client.users_info(user=user_id)["user"]
        except (SlackClientError, KeyError, TypeError):
            log.info("no name for %s; keeping the mention as it was", user_id)
            return None
        profile = user.get("profile") or {}
        name = (profile.get("real_name") or user.get("real_name") or profile.get("display_name")
                or user.get("name"))
        if not name:
            return None
        with self._lock:
            self._names[user_id] = name
            if len(self._names) > self.remember:
                self._names.popitem(last=False)
        return name

    def plain(self, text: str) -> str:
        return plain(text, self.name)
