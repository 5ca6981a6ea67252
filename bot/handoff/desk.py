"""The agents' side of a handoff: queue, claim, reply, transfer, release, close.

Every action changes the customer's state under the customer's own lock, the
one their turns take, so an agent's claim and the customer's message never
overwrite each other, and two agents claiming at once (on any workers) are
served one after the other: the second finds the conversation claimed.
The queue index in the `AgentStore` follows the states; live events go over
the bus to every worker's consoles. What the desk only reads (the queue, the
claims, one conversation) is in `bot.handoff.listing`; where a message to the
customer goes, in `bot.handoff.routing`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core import metrics
from bot.core.bus import Bus
from bot.core.conversation import ConversationState, HandoffState
from bot.core.delivery import Reply, Senders
from bot.core.errors import CustomerGone, StoreError
from bot.core.locked_state import Changed, CustomerLocks
from bot.core.model import Address, HistoryEntry, Outbound
from bot.core.outbox import Outbox, OutboxOptions
from bot.core.policy import TurnContext
from bot.core.ports import ConversationReader
from bot.core.rate_limits import HANDOFFS_PER_ADDRESS, HANDOFFS_PER_CUSTOMER, RateLimiter
from bot.core.resume import asked_again
from bot.handoff import listing, routing
from bot.handoff.accounts import AgentError
from bot.handoff.ports import (
    AccountStore,
    AgentAccount,
    AgentPresenceStore,
    HandoffQueueStore,
)
from bot.handoff.state import (
    ADMIN_TAKEOVER,
    QUEUED,
    as_json,
    back_with_the_bot,
    carried_over,
    claimed_by,
    closed_by,
    is_active,
    is_claimed,
    joined,
    new_handoff,
    observe_wait,
    taking_over,
    too_many_handoffs,
    waiting_notice,
)

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


@dataclass(slots=True)
class _Outgoing:
    """Messages an action sends once its change is saved (None: nowhere to
    send it now, the history only)."""

    items: list[tuple[Address | None, Outbound]] = field(default_factory=list)

    def replies(self) -> list[Reply]:
        return [Reply(address, outbound) for address, outbound in self.items
                if address is not None]


_Change = Callable[[ConversationState, _Outgoing], Awaitable[list[HistoryEntry]]]


def _may_act(agent: AgentAccount, handoff: HandoffState | None) -> None:
    if agent.role == "admin":
        return
    if not is_active(handoff):
        raise DeskError("not_in_queue", NOT_WAITING)
    if is_claimed(handoff) and handoff.agent != agent.username:
        raise DeskError("not_yours", f"{handoff.agent_name} holds this conversation")


class DeskAgents(HandoffQueueStore, AgentPresenceStore, AccountStore, Protocol):
    """What the desk keeps beside the conversations: the queue index, who is
    online (for the waiting notice), and accounts (to transfer to)."""


class HandoffDesk:
    """Handoff operations for the turn hook and the agent API."""

    def __init__(self, *, store: ConversationReader, locks: CustomerLocks, senders: Senders,
                 limiter: RateLimiter, agents: DeskAgents, bus: Bus,
                 options: DeskOptions | None = None) -> None:
        self.store = store
        self.locks = locks
        self.senders = senders
        self.limiter = limiter
        self.agents = agents
        self.bus = bus
        self.options = options or DeskOptions()
        # Agents' messages and notices leave through the outbox, as turns' replies do.
        self.outbox = Outbox(locks.store, senders,
                             OutboxOptions(claim_seconds=locks.options.ttl_seconds))

    # Inside a customer's turn (see bot.handoff).

    async def begin(self, context: TurnContext, reason: str) -> list[Outbound]:
        """Mark the conversation queued in this turn; the waiting notice. A
        customer or an address asking again and again is told to wait, so
        nobody can bury real customers in the queue."""
        allowed = await self.limiter.allow_all([
            (HANDOFFS_PER_CUSTOMER, context.customer_id),
            (HANDOFFS_PER_ADDRESS, context.inbound.client_address),
        ])
        if not allowed:
            context.handoff_reason = None
            return [Outbound(text=too_many_handoffs(context.state.locale))]
        ahead = await self.agents.queue_length()
        online = bool(await self.agents.agents_online())
        context.state.handoff = new_handoff(reason, started_turn=context.state.turns)
        notice = waiting_notice(ahead, online, self.options.business_hours, context.state.locale)
        return [Outbound(text=notice)]

    async def announce(self, customer_id: str, state: ConversationState,
                       entries: list[HistoryEntry]) -> None:
        """After a saved turn of a handed-off conversation: tell the consoles."""
        handoff = state.handoff
        assert handoff is not None
        if handoff.started_turn == state.turns:
            await self.agents.index_queued(customer_id, handoff.since)
            await self.count_queue()
            await self.publish({"type": "queued", "customer": customer_id,
                                "since": handoff.since, "reason": handoff.reason})
            return
        for entry in entries:
            await self.publish({"type": "message", "customer": customer_id,
                                "agent": handoff.agent, "entry": entry.to_json()})

    async def queue_later(self, customer_id: str, reason: str) -> None:
        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            if not is_active(state.handoff):
                state.handoff = new_handoff(reason)
            return []

        state = (await self._change(customer_id, change)).state
        await self._index(customer_id, state.handoff)
        await self.publish({"type": "queued", "customer": customer_id, "reason": reason})

    async def follow_merge(self, source: str, target: str, handoff: HandoffState | None) -> None:
        """`source` was joined into `target` (in a turn or not): its handoff
        (and agent) goes along."""
        if is_active(handoff):
            adopted = carried_over(handoff)

            async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
                if not is_active(state.handoff):
                    state.handoff = adopted
                return []

            await self.agents.index_closed(source)  # gone, whatever becomes of the target
            # A signed-in visitor's account may never have written: it starts here.
            state = (await self._change(target, change, create=True)).state
            await self._index(target, state.handoff)
        await self.publish({"type": "moved", "customer": source, "to": target})

    async def forget(self, customer_id: str) -> None:
        """The customer is being erased: off the queue and the claims."""
        await self.agents.index_closed(customer_id)
        await self.count_queue()
        await self.publish({"type": "erased", "customer": customer_id})

    # The agents' actions.

    async def queue(self, limit: int = 500) -> list[dict[str, Any]]:
        """The oldest `limit` conversations waiting for a person, oldest first."""
        return await listing.waiting(self.store, self.agents, limit)

    async def claimed(self, agent: AgentAccount) -> list[dict[str, str]]:
        """Conversations held by `agent` (by anyone, for an admin)."""
        return await listing.held(self.store, self.agents, agent)

    async def view(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        """Any agent may read any conversation (the whole team needs the
        context); acting on it is what `_may_act` restricts."""
        state = await self._existing(customer_id)
        return await listing.conversation(self.store, customer_id, state,
                                          self.options.history_max)

    async def claim(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        waited: list[HandoffState] = []

        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            handoff = state.handoff
            if is_claimed(handoff):
                if handoff.agent == agent.username:
                    return []
                raise DeskError("already_claimed", f"already claimed by {handoff.agent_name}")
            if not is_active(handoff) and agent.role != "admin":
                raise DeskError("not_in_queue", NOT_WAITING)
            base = handoff if is_active(handoff) else new_handoff(ADMIN_TAKEOVER)
            waited[:] = [base]
            state.handoff = claimed_by(base, agent)
            notice = Outbound(text=joined(agent.display_name, state.locale), sender="agent",
                              agent_name=agent.display_name, event="agent_joined")
            return [await self._prepare(customer_id, state, notice, out)]

        state = await self._act(customer_id, change)
        observe_wait(waited)
        await self.publish({"type": "claimed", "customer": customer_id,
                            "agent": agent.username})
        return {"customer": customer_id, "handoff": as_json(state.handoff)}

    async def reply(self, agent: AgentAccount, customer_id: str, text: object) -> dict[str, Any]:
        if not isinstance(text, str) or not text.strip():
            raise DeskError("bad_text", "'text' must be a non-empty string")
        if len(text) > self.options.max_text_length:
            raise DeskError("bad_text",
                            f"'text' is longer than {self.options.max_text_length} characters")
        claimed_now: list[HandoffState] = []

        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            _may_act(agent, state.handoff)
            handoff = state.handoff
            if not is_active(handoff) or handoff.status == QUEUED:
                # Answering a waiting conversation takes it.
                base = handoff if is_active(handoff) else new_handoff(ADMIN_TAKEOVER)
                state.handoff = claimed_by(base, agent)
                claimed_now[:] = [base]
            message = Outbound(text=text, sender="agent", agent_name=agent.display_name)
            return [await self._prepare(customer_id, state, message, out)]

        state, delivered, entries = await self._act_and_deliver(customer_id, change)
        observe_wait(claimed_now)
        if claimed_now:
            await self.publish({"type": "claimed", "customer": customer_id,
                                "agent": agent.username})
        holder = state.handoff.agent if state.handoff is not None else None
        await self.publish({"type": "message", "customer": customer_id, "agent": holder,
                            "entry": entries[0].to_json()})
        return {"delivered": delivered[0] is not None, "channel": delivered[0],
                "entry": entries[0].to_json()}

    async def typing(self, agent: AgentAccount, customer_id: str, on: object) -> dict[str, Any]:
        """Show the customer that `agent` is typing, on their current channel
        (the web chat and Telegram can; Slack cannot); nothing is stored."""
        if not isinstance(on, bool):
            raise DeskError("bad_fields", "'on' must be true or false")
        state = await self._existing(customer_id)
        _may_act(agent, state.handoff)
        address = await self.route(customer_id, state)
        shown = address is not None and await self.senders.typing(address, on,
                                                                  agent.display_name)
        return {"shown": shown, "channel": address.channel if address and shown else None}

    async def transfer(self, agent: AgentAccount, customer_id: str, to: object) -> dict[str, Any]:
        target = await self.agents.get_agent(to) if isinstance(to, str) else None
        if target is None:
            raise DeskError("unknown_agent", "'agent' must name an existing agent account")
        previous: list[str | None] = []
        waited: list[HandoffState] = []

        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            _may_act(agent, state.handoff)
            handoff = state.handoff
            base = handoff if is_active(handoff) else new_handoff(ADMIN_TAKEOVER)
            waited[:] = [base]
            previous.append(base.agent)
            state.handoff = claimed_by(base, target)
            notice = Outbound(text=taking_over(target.display_name, state.locale), sender="agent",
                              agent_name=target.display_name, event="agent_joined")
            return [await self._prepare(customer_id, state, notice, out)]

        state = await self._act(customer_id, change)
        observe_wait(waited)
        await self.publish({"type": "transferred", "customer": customer_id,
                            "agent": target.username, "from": previous[0],
                            "by": agent.username})
        return {"customer": customer_id, "handoff": as_json(state.handoff)}

    async def release(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        """Back to the bot, with the flow state the conversation had."""
        return await self._end(agent, customer_id, close=False)

    async def close(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        """Done: back to the bot, which starts afresh."""
        return await self._end(agent, customer_id, close=True)

    async def _end(self, agent: AgentAccount, customer_id: str, *,
                   close: bool) -> dict[str, Any]:
        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            _may_act(agent, state.handoff)
            if not is_active(state.handoff):
                raise DeskError("not_handed_off", "no person holds this conversation")
            since = float(state.handoff.since)
            state.handoff = None
            if close:
                state.dialog, state.question = {}, None
                notices = [Outbound(text=closed_by(agent.display_name, state.locale),
                                    event="agent_left")]
            else:
                notices = [Outbound(text=back_with_the_bot(state.locale), event="agent_left"),
                           *await asked_again(self.store, customer_id, state, before=since)]
            return [await self._prepare(customer_id, state, n, out) for n in notices]

        state = await self._act(customer_id, change)
        await self.publish({"type": "closed" if close else "released",
                            "customer": customer_id, "by": agent.username})
        return {"customer": customer_id, "handoff": as_json(state.handoff)}

    # Routing.

    async def route(self, customer_id: str, state: ConversationState) -> Address | None:
        """Where a message to the customer goes (see `bot.handoff.routing`)."""
        return await routing.route(self.store, self.senders, customer_id, state)

    async def _prepare(self, customer_id: str, state: ConversationState, outbound: Outbound,
                       out: _Outgoing) -> HistoryEntry:
        address = await self.route(customer_id, state)
        out.items.append((address, outbound))
        channel = routing.history_channel(address, state)
        return HistoryEntry.of_outbound(outbound, channel, time.time())

    # Changing a customer's state under their lock.

    async def _act(self, customer_id: str, change: _Change) -> ConversationState:
        state, _, _ = await self._act_and_deliver(customer_id, change)
        return state

    async def _act_and_deliver(
        self, customer_id: str, change: _Change
    ) -> tuple[ConversationState, list[str | None], list[HistoryEntry]]:
        out = _Outgoing()
        entries: list[HistoryEntry] = []

        async def recorded(state: ConversationState, outgoing: _Outgoing) -> list[HistoryEntry]:
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

    async def _change(self, customer_id: str, change: _Change, out: _Outgoing | None = None,
                      *, create: bool = False) -> Changed:
        if not create:
            await self._existing(customer_id)  # never lock (and so create) an unknown customer
        outgoing = out or _Outgoing()

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
