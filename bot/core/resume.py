"""Picking a conversation up again: the question left open, said again.

Used when a person hands a conversation back to the bot and when a chat joins
a conversation from another channel.
"""

from __future__ import annotations

from bot.core.catalog import text, versions
from bot.core.conversation import ConversationState
from bot.core.model import HistoryEntry, Outbound, is_public
from bot.core.ports import ConversationReader

# How far back in the history to look for it.
RECENT_ENTRIES = 50
# Every language's "Where we left off: " (the dialogs' resume pattern reads
# the same): a question already asked again carries one, and never gets two.
_PREFIXES = tuple(sorted((sentence.split("{text}", 1)[0]
                          for sentence in versions("where_we_left_off")),
                         key=len, reverse=True))


async def last_prompt(store: ConversationReader, customer_id: str, *,
                      bot_only: bool = False, before: float | None = None) -> HistoryEntry | None:
    """The latest recent entry not written by the customer (only the bot's
    with `bot_only`; only ones older than `before` if given)."""
    for entry in reversed(await store.history(customer_id, RECENT_ENTRIES)):
        if entry.sender == "customer" or not is_public(entry) or (
                bot_only and entry.sender != "bot"):
            continue
        if before is None or entry.ts < before:
            return entry
    return None


async def asked_again(store: ConversationReader, customer_id: str, state: ConversationState,
                      *, before: float) -> list[Outbound]:
    """The question the conversation waits for an answer to, said again:
    the one the dialog policy keeps (`state.question`, in the customer's
    language). A state saved before it was kept only says the flow waits
    (`dialog["waiting"]`): then the bot's last words before `before`."""
    if state.question is not None:
        return where_we_left_off(state.question, state.locale)
    if not state.dialog.get("waiting"):
        return []
    prompt = await last_prompt(store, customer_id, bot_only=True, before=before)
    return where_we_left_off(prompt, state.locale)


def where_we_left_off(prompt: HistoryEntry | None,
                      locale: str | None = None) -> list[Outbound]:
    """`prompt` said again, with its buttons, in words of `locale`'s
    language; nothing without one."""
    if prompt is None:
        return []
    said = text("where_we_left_off", locale, text=_unprefixed(prompt.text))
    return [Outbound(text=said, buttons=prompt.buttons)]


def _unprefixed(question: str) -> str:
    """`question` without the "Where we left off: " (in any language, however
    many times) it may already start with."""
    while (prefix := next((p for p in _PREFIXES if question.startswith(p)), None)) is not None:
        question = question[len(prefix):]
    return question
