"""What the channels say about a customer: one profile per channel, and the
view an agent reads of them all.

A channel's profile is a flat mapping of the keys below, each a non-empty
string; a connector builds it with `profile_of`, which drops what a channel
left empty and clips what is longer than any real value, so a channel's odd
answer never reaches the stored state. The profiles are customer data: they
are kept in the conversation state (erased and exported with it) and never
logged above DEBUG.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROFILE_KEYS = ("name", "first_name", "last_name", "username", "display_name", "email",
                "language", "time_zone")
# Longer than any name, address or zone a channel gives; a longer one is cut.
MAX_VALUE = 256
# Whose word counts first when channels disagree: the host site vouches for
# its signed-in user's name, Telegram's is what the person typed, Slack's a
# workspace directory's.
CHANNEL_ORDER = ("web", "telegram", "slack")
# The merged view's keys, each the first channel's value (in CHANNEL_ORDER,
# then any other channel by name) that has one.
MERGED_KEYS = ("name", "username", "email", "language", "time_zone")

Profile = dict[str, str]


def profile_of(**values: object) -> Profile | None:
    """A channel's profile from what it gave: strings only, empty ones left
    out, each at most MAX_VALUE characters; None when nothing is left."""
    profile = {key: value.strip()[:MAX_VALUE] for key, value in values.items()
               if key in PROFILE_KEYS and isinstance(value, str) and value.strip()}
    return profile or None


def profiles_from_json(data: object) -> dict[str, Profile]:
    """The state's `profile` object as saved, keeping only what `profile_of`
    would have made (a state saved by another version may hold anything)."""
    if not isinstance(data, dict):
        return {}
    kept = {}
    for channel, values in data.items():
        if isinstance(channel, str) and isinstance(values, dict):
            profile = profile_of(**{str(k): v for k, v in values.items()})
            if profile is not None:
                kept[channel] = profile
    return kept


def _ordered(by_channel: Mapping[str, Profile]) -> list[str]:
    known = [c for c in CHANNEL_ORDER if c in by_channel]
    return known + sorted(c for c in by_channel if c not in CHANNEL_ORDER)


def merged_profile(by_channel: Mapping[str, Profile]) -> dict[str, Any]:
    """The agent's view: each of MERGED_KEYS from the first channel that
    says it (None when none does), and every channel's own profile."""
    order = _ordered(by_channel)
    merged: dict[str, Any] = {
        key: next((by_channel[c][key] for c in order if by_channel[c].get(key)), None)
        for key in MERGED_KEYS}
    merged["by_channel"] = {c: dict(by_channel[c]) for c in order}
    return merged


def name_of(by_channel: Mapping[str, Profile]) -> str | None:
    """The customer's name as the merged view gives it, if any channel says it."""
    name = merged_profile(by_channel)["name"]
    return name if isinstance(name, str) else None
