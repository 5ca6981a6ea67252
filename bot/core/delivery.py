"""Where replies go: the outbound half of each connector, by channel."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from bot.core import metrics
from bot.core.errors import ConnectorError
from bot.core.model import Address, Outbound

log = logging.getLogger(__name__)


class OutboundSender(Protocol):
    """The outbound half of a connector."""

    async def send(self, address: Address, outbound: Outbound) -> None: ...


@runtime_checkable
class ReachableSender(Protocol):
    """A connector that can tell whether a message would reach the customer
    now (a web chat with no socket open would only be kept in history)."""

    async def reachable(self, address: Address) -> bool: ...


class Senders:
    """The connectors that deliver, by channel. Built empty before the
    connectors (which need the engine that needs this) and filled as each
    connector is built."""

    def __init__(self, senders: Mapping[str, OutboundSender] | None = None) -> None:
        self._by_channel: dict[str, OutboundSender] = dict(senders or {})

    def register(self, channel: str, sender: OutboundSender) -> None:
        self._by_channel[channel] = sender

    def __contains__(self, channel: object) -> bool:
        return channel in self._by_channel

    async def reachable(self, address: Address) -> bool:
        """Whether a message to `address` would reach someone now; a channel
        that cannot tell is assumed to."""
        sender = self._by_channel.get(address.channel)
        if sender is None:
            return False
        if isinstance(sender, ReachableSender):
            return await sender.reachable(address)
        return True

    async def send(self, address: Address, outbound: Outbound) -> bool:
        """Deliver one message; a failing channel is logged, never raised,
        because the message is already in the customer's history."""
        sender = self._by_channel.get(address.channel)
        if sender is None:
            log.error("no connector for channel %r; reply kept in history only", address.channel)
            return False
        try:
            await sender.send(address, outbound)
        except ConnectorError as exc:
            metrics.DELIVERY_FAILURES.labels(address.channel).inc()
            log.warning("delivery to %s failed: %s", address.channel, exc)
            return False
        return True
