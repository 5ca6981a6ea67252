"""Where a message to a customer goes outside their turn: from the team or
from the business (the public API)."""

from __future__ import annotations

from bot.core.conversation import ConversationState
from bot.core.delivery import Senders
from bot.core.model import Address
from bot.core.ports import ConversationReader
from bot.core.resume import RECENT_ENTRIES

# The web chat keeps no address once its socket is closed.
WEB = "web"


async def route(store: ConversationReader, senders: Senders, customer_id: str,
                state: ConversationState) -> Address | None:
    """The channel the customer wrote from last; for a web chat with no
    socket on any worker, another linked channel (the one they last wrote
    on); None when only the history can keep the message."""
    last = state.last_address
    if last is None:
        return None
    if last.channel != WEB and last.channel in senders:
        return last
    if last.channel == WEB and await senders.reachable(last):
        return last
    others = {ch: a for ch, a in (await store.addresses(customer_id)).items()
              if ch != last.channel and ch in senders and ch != WEB}
    if not others:
        return None
    for entry in reversed(await store.history(customer_id, RECENT_ENTRIES)):
        if entry.sender == "customer" and entry.channel in others:
            return others[entry.channel]
    return others[sorted(others)[0]]


def history_channel(address: Address | None, state: ConversationState) -> str:
    """The channel a message is recorded on: where it went, else where the
    customer was last, else the web chat."""
    if address is not None:
        return address.channel
    return state.last_address.channel if state.last_address else WEB
