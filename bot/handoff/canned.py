"""Canned replies: answers an admin keeps under a shortcut, which an agent
inserts in the console's reply box by typing `/` and the shortcut.

The rules live here: what a shortcut and a text may be, and how many there
may be. The console fills the placeholders when it inserts a reply; the
agent can still edit it, and sends it as any other reply. A placeholder the
console would not fill is refused when the reply is saved, so a typo shows
up at once rather than in front of a customer.
"""

from __future__ import annotations

import re

from bot.handoff.accounts import AgentError
from bot.handoff.ports import CannedReply, CannedReplyStore

SHORTCUT = re.compile(r"^[a-z0-9_-]{1,32}$")
MAX_CANNED = 500
PLACEHOLDERS = ("customer_name", "agent_name")
# What reads as a placeholder: a word (spaces and hyphens too, so that
# `{agent name}` and `{ agent_name }` are caught as typos) between braces.
_BRACED = re.compile(r"\{([A-Za-z0-9_ -]+)\}")
_SHORTCUT_RULE = "1-32 of a-z, 0-9, '_' and '-'"


class CannedError(AgentError):
    """A canned reply refused; `code` picks the HTTP status at the API's edge."""


def as_shortcut(value: object) -> str:
    """`value` as a shortcut (trimmed and lowercased): bad_fields if it is not one."""
    if not isinstance(value, str):
        raise CannedError("bad_fields", "'shortcut' must be a string")
    shortcut = value.strip().lower()
    if not SHORTCUT.match(shortcut):
        raise CannedError("bad_fields", f"'shortcut' must be {_SHORTCUT_RULE}")
    return shortcut


def unknown_placeholders(text: str) -> list[str]:
    """The placeholders in `text` other than those the console fills, each once."""
    found = [f"{{{name}}}" for name in _BRACED.findall(text) if name not in PLACEHOLDERS]
    return list(dict.fromkeys(found))


def checked_text(value: object, max_length: int) -> str:
    if not isinstance(value, str) or not value.strip():
        raise CannedError("bad_fields", "'text' must be a non-empty string")
    if len(value) > max_length:
        raise CannedError("bad_fields", f"'text' is longer than {max_length} characters")
    unknown = unknown_placeholders(value)
    if unknown:
        known = " and ".join(f"{{{name}}}" for name in PLACEHOLDERS)
        raise CannedError("bad_fields", f"unknown placeholder {', '.join(unknown)} in 'text': "
                                        f"only {known} are filled in")
    return value


class CannedReplies:
    """The canned replies of a deployment, checked before they are kept.
    `max_text_length` is the longest reply an agent may send."""

    def __init__(self, store: CannedReplyStore, *, max_text_length: int,
                 limit: int = MAX_CANNED) -> None:
        self.store = store
        self.max_text_length = max_text_length
        self.limit = limit

    async def listing(self) -> list[CannedReply]:
        return await self.store.canned_replies()

    async def put(self, shortcut: object, text: object) -> CannedReply:
        """Create or replace; nothing is kept when it is refused."""
        reply = CannedReply(as_shortcut(shortcut), checked_text(text, self.max_text_length))
        if not await self.store.put_canned(reply, self.limit):
            raise CannedError("bad_fields", f"there are {self.limit} canned replies already, "
                                            "the most there may be: delete one first")
        return reply

    async def delete(self, shortcut: object) -> str:
        """Remove one; its shortcut. not_found if there is none."""
        if not isinstance(shortcut, str):
            raise CannedError("bad_fields", "'shortcut' must be a string")
        name = shortcut.strip().lower()
        # A name that is no shortcut cannot have been saved: there is none.
        if not SHORTCUT.match(name) or not await self.store.drop_canned(name):
            raise CannedError("not_found", "no such canned reply")
        return name


def canned_store(store: object) -> CannedReplyStore:
    """`store` as a store of canned replies."""
    if not isinstance(store, CannedReplyStore):
        raise TypeError(f"{type(store).__name__} keeps no canned replies")
    return store
