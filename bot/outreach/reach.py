"""Which channel a message the business starts can reach the customer on now.

The channel the customer used last comes first, then their other linked
channels, most recently used first. A web chat reaches them only while a
socket is open; with none, the message waits in the history for their next
visit, the last resort. Telegram reaches only a user who has written to the
bot (a bot may not write first); Slack through a DM the app opens.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.conversation import ConversationState
from bot.core.delivery import Senders
from bot.core.model import Address, ChannelIdentity
from bot.core.ports import ConversationReader
from bot.core.resume import RECENT_ENTRIES

WEB, TELEGRAM, SLACK = "web", "telegram", "slack"
CHANNELS = (WEB, TELEGRAM, SLACK)
NAMES = {WEB: "the web chat", TELEGRAM: "Telegram", SLACK: "Slack"}
SENT, ON_NEXT_OPEN = "sent", "on_next_open"


@dataclass(frozen=True, slots=True)
class Route:
    """Where a message goes: `address` None keeps it for the web chat's next
    open (`how` is then `on_next_open`)."""

    channel: str
    address: Address | None
    how: str


@dataclass(frozen=True, slots=True)
class Unreachable:
    """No channel can take the message: why not, by channel."""

    reasons: dict[str, str]


class Reach:
    """Finds the route of a message the business starts."""

    def __init__(self, store: ConversationReader, senders: Senders) -> None:
        self.store = store
        self.senders = senders

    async def route(self, customer_id: str, state: ConversationState,
                    wanted: str) -> Route | Unreachable:
        """The route to the customer: on `wanted` only, or for "auto" the
        first of their channels (`order`) that can take it now."""
        identities: dict[str, ChannelIdentity] = {}
        for linked in await self.store.identities(customer_id):
            identities.setdefault(linked.channel, linked)
        addresses = await self.store.addresses(customer_id)
        channels = [wanted] if wanted != "auto" else await self.order(customer_id, state,
                                                                       set(identities))
        reasons: dict[str, str] = {}
        later: Route | None = None
        for channel in channels:
            if channel not in self.senders:
                reasons[channel] = f"{NAMES[channel]} is not enabled on this server"
                continue
            identity = identities.get(channel)
            if identity is None:
                reasons[channel] = _never_wrote(channel)
                continue
            if channel == WEB:
                address = addresses.get(WEB)
                if address is not None and await self.senders.reachable(address):
                    return Route(WEB, address, SENT)
                reasons[WEB] = "no web chat of theirs is open now: kept for their next visit"
                later = Route(WEB, None, ON_NEXT_OPEN)
                continue
            address = await self._direct(channel, identity, addresses.get(channel))
            if address is None:
                reasons[channel] = f"{NAMES[channel]} could not open a conversation with them"
                continue
            return Route(channel, address, SENT)
        return later if later is not None else Unreachable(reasons)

    async def order(self, customer_id: str, state: ConversationState,
                    linked: set[str]) -> list[str]:
        """The customer's channels, the one they used last first, then by
        their most recent message on each."""
        order: list[str] = []
        if state.last_address is not None and state.last_address.channel in linked:
            order.append(state.last_address.channel)
        for entry in reversed(await self.store.history(customer_id, RECENT_ENTRIES)):
            if entry.sender == "customer" and entry.channel in linked \
                    and entry.channel not in order:
                order.append(entry.channel)
        order.extend(sorted(linked - set(order)))
        return [channel for channel in order if channel in CHANNELS]

    async def _direct(self, channel: str, identity: ChannelIdentity,
                      last: Address | None) -> Address | None:
        """Telegram: the private chat the user writes from. Slack: the DM
        (the last address may be a thread in a public channel)."""
        if channel == TELEGRAM and last is not None:
            return last
        return await self.senders.direct_address(identity) or last


def _never_wrote(channel: str) -> str:
    if channel == TELEGRAM:
        return ("they have never written to the bot on Telegram, and a bot may only write "
                "to people who started it")
    return f"they have never written on {NAMES[channel]}"
