"""Picking a conversation up again: what was last said to the customer, said again.

Used when a person hands a conversation back to the bot and when a chat joins
a conversation from another channel.
"""

from __future__ import annotations

from bot.core.catalog import text
from bot.core.model import HistoryEntry, Outbound
from bot.core.ports import ConversationReader

# How far back in the history to look for it.
RECENT_ENTRIES = 50


async def last_prompt(store: ConversationReader, customer_id: str, *,
                      bot_only: bool = False, before: float | None = None) -> HistoryEntry | None:
    """The latest recent entry not written by the customer (only the bot's
    with `bot_only`; only ones older than `before` if given)."""
    for entry in reversed(await store.history(customer_id, RECENT_ENTRIES)):
        if entry.sender == "customer" or (bot_only and entry.sender != "bot"):
            continue
        if before is None or entry.ts < before:
            return entry
    return None


def where_we_left_off(prompt: HistoryEntry | None,
                      locale: str | None = None) -> list[Outbound]:
    """`prompt` said again, with its buttons, in words of `locale`'s
    language; nothing without one."""
    if prompt is None:
        return []
    said = text("where_we_left_off", locale, text=prompt.text)
    return [Outbound(text=said, buttons=prompt.buttons)]
