"""Who may ask: optional allow-lists of users and channels, bots only when named, and people
from other organisations (Slack Connect) only when allowed."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Access:
    """Empty lists allow everyone. A DM (or the assistant panel) is not a channel: when
    channels are restricted, a DM is allowed only to a user named on the user list."""

    users: frozenset[str] = field(default_factory=frozenset)
    channels: frozenset[str] = field(default_factory=frozenset)
    bots: frozenset[str] = field(default_factory=frozenset)  # bot ids (B…) or app ids (A…)
    external: bool = False  # answer people whose workspace is not ours
    reviewers: frozenset[str] = field(default_factory=frozenset)  # may verify queries

    @classmethod
    def of(cls, users: set[str] | None, channels: set[str] | None,
           bots: set[str] | None = None, external: bool = False,
           reviewers: set[str] | None = None) -> Access:
        return cls(frozenset(users or ()), frozenset(channels or ()), frozenset(bots or ()),
                   external, frozenset(reviewers or ()))

    def allows(self, user: str | None, channel: str, is_dm: bool = False) -> bool:
        if self.users and user not in self.users:
            return False
        if not self.channels or channel in self.channels:
            return True
        return is_dm and bool(self.users)

    def allows_bot(self, event: dict) -> bool:
        """An event written by a bot or an app is answered only if the allow-list names it."""
        ids = {event.get("bot_id"), event.get("app_id"),
               (event.get("bot_profile") or {}).get("app_id")}
        return bool(self.bots & {i for i in ids if i})


def from_bot(event: dict) -> bool:
    """Written by a bot or an app (ours included), not by a person."""
    return bool(event.get("bot_id") or event.get("bot_profile") or event.get("app_id")
                or event.get("subtype") == "bot_message")


def is_external(home: set[str], user_team: str | None, shared: bool = False) -> bool:
    """Someone from another organisation: their workspace (or Enterprise Grid org) is not one
    we were installed in. In a Slack Connect channel, an event that does not say whose
    workspace it is counts as outside."""
    home = {h for h in home if h}
    if user_team and home:
        return user_team not in home
    return shared


def is_dm(channel: str, channel_type: str | None = None) -> bool:
    """Slack DM ids start with D; events also say channel_type "im"."""
    return channel_type == "im" or channel.startswith("D")
