"""Who may ask: optional allow-lists of users and channels."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Access:
    """Empty lists allow everyone. A DM (or the assistant panel) is not a channel: when
    channels are restricted, a DM is allowed only to a user named on the user list."""

    users: frozenset[str] = field(default_factory=frozenset)
    channels: frozenset[str] = field(default_factory=frozenset)
    reviewers: frozenset[str] = field(default_factory=frozenset)  # may verify queries

    @classmethod
    def of(cls, users: set[str] | None, channels: set[str] | None,
           reviewers: set[str] | None = None) -> Access:
        return cls(frozenset(users or ()), frozenset(channels or ()), frozenset(reviewers or ()))

    def allows(self, user: str | None, channel: str, is_dm: bool = False) -> bool:
        if self.users and user not in self.users:
            return False
        if not self.channels or channel in self.channels:
            return True
        return is_dm and bool(self.users)


def is_dm(channel: str, channel_type: str | None = None) -> bool:
    """Slack DM ids start with D; events also say channel_type "im"."""
    return channel_type == "im" or channel.startswith("D")
