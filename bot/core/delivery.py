"""Where replies go: the outbound half of each connector, by channel; and a
reply as the outbox keeps it (`Reply`, `encode`, `decode`, `Batch`)."""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.core import metrics
from bot.core.errors import ConnectorError
from bot.core.model import Address, Button, ChannelIdentity, Image, Link, Outbound

log = logging.getLogger(__name__)

MAX_REFUSALS = 1000


class OutboundSender(Protocol):
    """The outbound half of a connector."""

    async def send(self, address: Address, outbound: Outbound) -> None: ...


@runtime_checkable
class ReachableSender(Protocol):
    """A connector that can tell whether a message would reach the customer
    now (a web chat with no socket open would only be kept in history)."""

    async def reachable(self, address: Address) -> bool: ...


@runtime_checkable
class DirectSender(Protocol):
    """A connector that can address a user who has not written in the
    conversation's current chat (the business writes first): Telegram's
    private chat with the user, a Slack DM it opens."""

    async def direct_address(self, identity: ChannelIdentity) -> Address | None: ...


@runtime_checkable
class TypingSender(Protocol):
    """A connector that can show the customer that a person is typing."""

    async def typing(self, address: Address, on: bool, agent_name: str) -> None: ...


class Senders:
    """The connectors that deliver, by channel. Built empty before the
    connectors (which need the engine that needs this) and filled as each
    connector is built."""

    def __init__(self, senders: Mapping[str, OutboundSender] | None = None) -> None:
        self._by_channel: dict[str, OutboundSender] = dict(senders or {})
        # Why the last message to an address was refused, while it was; for
        # the public API to say why a message did not go out. Bounded.
        self._refusals: OrderedDict[Address, str] = OrderedDict()

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

    async def direct_address(self, identity: ChannelIdentity) -> Address | None:
        """Where a message the business starts reaches `identity`'s user on
        their channel, or None when the channel cannot say (or cannot write
        first). Best effort: never raises."""
        sender = self._by_channel.get(identity.channel)
        if not isinstance(sender, DirectSender):
            return None
        try:
            return await sender.direct_address(identity)
        except Exception as exc:
            log.info("no direct address on %s: %s", identity.channel, exc)
            return None

    async def typing(self, address: Address, on: bool, agent_name: str) -> bool:
        """Show (or stop showing) that `agent_name` is typing, where the
        channel can; whether it was shown. Best effort: never raises."""
        sender = self._by_channel.get(address.channel)
        if not isinstance(sender, TypingSender):
            return False
        try:
            await sender.typing(address, on, agent_name)
        except Exception as exc:
            log.info("typing indicator on %s not shown: %s", address.channel, exc)
            return False
        return True

    async def send(self, address: Address, outbound: Outbound) -> bool:
        """Deliver one message; a failing channel is logged, never raised,
        because the message is already in the customer's history."""
        sender = self._by_channel.get(address.channel)
        if sender is None:
            metrics.REPLIES_FAILED.labels(address.channel, "no_connector").inc()
            log.error("no connector for channel %r; reply kept in history only", address.channel)
            return False
        try:
            await sender.send(address, outbound)
        except ConnectorError as exc:
            metrics.DELIVERY_FAILURES.labels(address.channel).inc()
            metrics.REPLIES_FAILED.labels(address.channel, "refused").inc()
            log.warning("delivery to %s failed: %s", address.channel, exc)
            self._refusals[address] = str(exc)
            self._refusals.move_to_end(address)
            if len(self._refusals) > MAX_REFUSALS:
                self._refusals.popitem(last=False)
            return False
        except Exception:
            metrics.REPLIES_FAILED.labels(address.channel, "error").inc()
            raise
        metrics.replies_sent(address.channel).inc()
        if self._refusals:
            self._refusals.pop(address, None)
        return True

    def refusal(self, address: Address) -> str | None:
        """Why the channel refused the last message to `address` on this
        worker, unless one went through since."""
        return self._refusals.get(address)


@dataclass(frozen=True, slots=True)
class Reply:
    """One message to send, and where: what a customer's outbox holds, with
    the turn that wrote it (so a later resend logs under that turn)."""

    address: Address
    outbound: Outbound
    turn_id: str | None = None


@dataclass(frozen=True, slots=True)
class Batch:
    """What one save left in a customer's outbox, for the worker that saved
    it to deliver (`bot.core.outbox.Outbox.deliver`): `replies` carry the
    sequence numbers `first_seq`, `first_seq + 1`, ...; `token` holds the
    outbox claim if `claimed`; `earlier` items saved before these come
    first; `mark` is the customer's index entry as the lock left it;
    `saved_at` is `time.monotonic()` when the save returned, the claim's
    start."""

    customer_id: str
    token: str
    replies: tuple[Reply, ...]
    first_seq: int
    claimed: bool
    earlier: int
    mark: int
    saved_at: float


def encode(reply: Reply) -> str:
    """A reply as JSON, for the outbox."""
    out = reply.outbound
    data: dict[str, Any] = {"address": reply.address.to_json(), "text": out.text,
                            "sender": out.sender}
    if out.buttons:
        data["buttons"] = [[b.title, b.payload] for b in out.buttons]
    if out.images:
        data["images"] = [[i.url, i.alt] for i in out.images]
    if out.links:
        data["links"] = [[link.url, link.title] for link in out.links]
    if out.reply_to is not None:
        data["reply_to"] = out.reply_to
    if out.agent_name is not None:
        data["agent_name"] = out.agent_name
    if out.event is not None:
        data["event"] = out.event
    if out.channels:
        data["channels"] = list(out.channels)
    if reply.turn_id is not None:
        data["turn"] = reply.turn_id
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def decode(payload: str) -> Reply:
    data = json.loads(payload)
    outbound = Outbound(
        text=data["text"],
        sender=data["sender"],
        buttons=tuple(Button(t, p) for t, p in data.get("buttons", ())),
        images=tuple(Image(u, a) for u, a in data.get("images", ())),
        links=tuple(Link(u, t) for u, t in data.get("links", ())),
        reply_to=data.get("reply_to"),
        agent_name=data.get("agent_name"),
        event=data.get("event"),
        channels=tuple(data.get("channels", ())),
    )
    return Reply(Address.from_json(data["address"]), outbound, data.get("turn"))
