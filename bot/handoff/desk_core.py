"""What every action of the handoff desk stands on: changing one
customer's state under their lock, routing and sending what the change says
to the customer through the outbox, keeping the queue index in step, and
telling every worker's consoles over the bus. The actions themselves are in
`bot.handoff.desk`.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core import metrics, routing
from bot.core.bus import Bus
from bot.core.conversation import ClosedHandoff, ConversationState, HandoffState
from bot.core.delivery import Reply, Senders
from bot.core.errors import CustomerGone, StoreError
from bot.core.events import NO_EVENTS, EventSink
from bot.core.locked_state import Changed, CustomerLocks
from bot.core.model import Address, HistoryEntry, Outbound
from bot.core.outbox import Outbox, OutboxOptions
from bot.core.ports import ConversationReader
from bot.core.rate_limits import RateLimiter
from bot.handoff.accounts import AgentError
from bot.handoff.ports import (
    AccountStore,
    AgentAccount,
    AgentPresenceStore,
    HandoffQueueStore,
    HandoffRecord,
    HandoffRecordStore,
)
from bot.handoff.state import is_active, is_claimed

log = logging.getLogger(__name__)

AGENTS_TOPIC = "agents"
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
NOT_WAITING = "this conversation is not waiting for a person"


class DeskError(AgentError):
    """An agent action refused; `code` picks the HTTP status at the API's edge."""


@dataclass(frozen=True, slots=True)
class DeskOptions:
    business_hours: str = "Monday to Friday, 9:00-17:00"
    max_text_length: int = 4096
    history_max: int = 1000
    # A conversation waiting longer is flagged in the queue.
    queue_alert_seconds: float = 300.0
    # Open conversations automatic assignment gives an agent whose account
    # sets no capacity of its own; 0: none.
    agent_capacity: int = 0
    # How long the report keeps a closed handoff's figures.
    record_keep_seconds: float = 400 * 86400


@dataclass(slots=True)
class Outgoing:
    """Messages an action sends once its change is saved (None: nowhere to
    send it now, the history only)."""

    items: list[tuple[Address | None, Outbound]] = field(default_factory=list)

    def replies(self) -> list[Reply]:
        return [Reply(address, outbound) for address, outbound in self.items
                if address is not None]


Change = Callable[[ConversationState, Outgoing], Awaitable[list[HistoryEntry]]]


def may_act(agent: AgentAccount, handoff: HandoffState | None) -> None:
    if agent.role == "admin":
        return
    if not is_active(handoff):
        raise DeskError("not_in_queue", NOT_WAITING)
    if is_claimed(handoff) and handoff.agent != agent.username:
        raise DeskError("not_yours", f"{handoff.agent_name} holds this conversation")


class DeskAgents(HandoffQueueStore, AgentPresenceStore, AccountStore, HandoffRecordStore,
                 Protocol):
    """What the desk keeps beside the conversations: the queue index, who is
    online (for the waiting notice), accounts (to transfer to) and the
    closed handoffs' figures (for the report)."""


class DeskCore:
    """The desk's parts and the steps its actions share."""

    def __init__(self, *, store: ConversationReader, locks: CustomerLocks, senders: Senders,
                 limiter: RateLimiter, agents: DeskAgents, bus: Bus,
                 options: DeskOptions | None = None,
                 clock: Callable[[], float] = time.time,
                 events: EventSink = NO_EVENTS) -> None:
        self.store = store
        # What happened, for the business's systems (queued, sent elsewhere).
        self.events = events
        self.locks = locks
        self.senders = senders
        self.limiter = limiter
        self.agents = agents
        self.bus = bus
        self.options = options or DeskOptions()
        self.clock = clock
        # Agents' messages and notices leave through the outbox, as turns' replies do.
        self.outbox = Outbox(locks.store, senders,
                             OutboxOptions(claim_seconds=locks.options.ttl_seconds))
    def _checked_text(self, text: object) -> str:
        if not isinstance(text, str) or not text.strip():
            raise DeskError("bad_text", "'text' must be a non-empty string")
        if len(text) > self.options.max_text_length:
            raise DeskError("bad_text",
                            f"'text' is longer than {self.options.max_text_length} characters")
        return text
    async def _keep_record(self, closed: ClosedHandoff) -> None:
        """The report's anonymous copy of a closed handoff. The close itself
        is saved already: a store failing now costs the report one line,
        never the customer's conversation."""
        record = HandoffRecord(id=closed.record, agent=closed.agent or "",
                               agent_name=closed.agent_name or "", queued_at=closed.queued_at,
                               claimed_at=closed.claimed_at,
                               first_response_at=closed.first_response_at,
                               closed_at=closed.closed_at)
        try:
            await self.agents.put_record(record, self.options.record_keep_seconds)
        except StoreError as exc:
            log.warning("could not keep the report's record of a closed handoff: %s", exc)

    async def announce_internal(self, customer_id: str, state: ConversationState,
                                entries: list[HistoryEntry]) -> None:
        """The team's lines of an action, live to the consoles, as messages are."""
        for entry in entries:
            if entry.sender == "internal":
                await self.publish({"type": "message", "customer": customer_id,
                                    "agent": holder_of(state), "entry": entry.to_json()})

    def capacity_of(self, agent: AgentAccount) -> int:
        """How many open conversations automatic assignment may give `agent`:
        their account's own capacity, else the default for agents; an admin
        only with one of their own (admins oversee more than they answer)."""
        if agent.capacity is not None:
            return agent.capacity
        return self.options.agent_capacity if agent.role == "agent" else 0

    # Routing.

    async def route(self, customer_id: str, state: ConversationState) -> Address | None:
        """Where a message to the customer goes (see `bot.handoff.routing`)."""
        return await routing.route(self.store, self.senders, customer_id, state)

    async def _prepare(self, customer_id: str, state: ConversationState, outbound: Outbound,
                       out: Outgoing) -> HistoryEntry:
        address = await self.route(customer_id, state)
        out.items.append((address, outbound))
        channel = routing.history_channel(address, state)
        return HistoryEntry.of_outbound(outbound, channel, self.clock())

    # Changing a customer's state under their lock.

    async def _act(self, customer_id: str, change: Change) -> ConversationState:
        state, _, _ = await self._act_and_deliver(customer_id, change)
        return state

    async def _act_and_deliver(
        self, customer_id: str, change: Change
    ) -> tuple[ConversationState, list[str | None], list[HistoryEntry]]:
        out = Outgoing()
        entries: list[HistoryEntry] = []

        async def recorded(state: ConversationState, outgoing: Outgoing) -> list[HistoryEntry]:
            entries.extend(await change(state, outgoing))
            return entries

        changed = await self._change(customer_id, recorded, out)
        await self._index(customer_id, changed.state.handoff)
        sent = iter(await self.outbox.deliver(changed.batch))
        # The channel of each message sent now; None for one kept in history only.
        delivered = [address.channel if address is not None and next(sent) else None
                     for address, _ in out.items]
        return changed.state, delivered, entries

    async def _existing(self, customer_id: str) -> ConversationState:
        if not CUSTOMER_ID.match(customer_id):
            raise DeskError("unknown_customer", "no such customer")
        raw = await self.store.load_state(customer_id)
        if raw is None:
            raise DeskError("unknown_customer", "no such customer")
        return ConversationState.from_json(raw)

    async def _change(self, customer_id: str, change: Change, out: Outgoing | None = None,
                      *, create: bool = False) -> Changed:
        if not create:
            await self._existing(customer_id)  # never lock (and so create) an unknown customer
        outgoing = out or Outgoing()

        async def apply(state: ConversationState) -> list[HistoryEntry]:
            return await change(state, outgoing)

        try:
            return await self.locks.change(customer_id, apply, outgoing.replies)
        except CustomerGone:
            raise DeskError("unknown_customer",
                            "this conversation was joined into another") from None

    async def _index(self, customer_id: str, handoff: HandoffState | None) -> None:
        if not is_active(handoff):
            await self.agents.index_closed(customer_id)
        elif is_claimed(handoff):
            await self.agents.index_claimed(customer_id, handoff.agent or "")
        else:
            await self.agents.index_queued(customer_id, handoff.since)
        await self.count_queue()

    async def count_queue(self) -> None:
        """The queue-length gauge, read again after a change to the queue
        (a periodic refresh catches changes other workers make)."""
        try:
            metrics.HANDOFF_QUEUE.set(await self.agents.queue_length())
        except StoreError as exc:
            log.warning("could not count the handoff queue: %s", exc)

    async def publish(self, event: dict[str, Any]) -> None:
        await self.bus.publish(AGENTS_TOPIC, event)

def holder_of(state: ConversationState) -> str | None:
    """Who holds the conversation now: whose console its live events are for."""
    return state.handoff.agent if is_claimed(state.handoff) else None


def closed_handoff(handoff: HandoffState, now: float) -> ClosedHandoff:
    """What a conversation keeps of a held handoff closed at `now`: the
    holder's figures, and a rating to ask for."""
    return ClosedHandoff(
        record=secrets.token_hex(8),
        agent=handoff.agent,
        agent_name=handoff.agent_name,
        queued_at=float(handoff.since),
        claimed_at=handoff.claimed_at,
        first_response_at=handoff.first_response_at,
        closed_at=now,
    )
