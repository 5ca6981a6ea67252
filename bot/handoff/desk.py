"""The agents' side of a handoff: queue, claim, reply, transfer, release, close.

Every action changes the customer's state under the customer's own lock, the
one their turns take, so an agent's claim and the customer's message never
overwrite each other, and two agents claiming at once (on any workers) are
served one after the other: the second finds the conversation claimed.
The queue index in the `AgentStore` follows the states; live events go over
the bus to every worker's consoles.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core.bus import Bus
from bot.core.conversation import ConversationState
from bot.core.delivery import Senders
from bot.core.errors import CustomerGone
from bot.core.locked_state import CustomerLocks
from bot.core.model import Address, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from bot.core.ports import ConversationReader
from bot.core.rate_limits import HANDOFFS_PER_ADDRESS, HANDOFFS_PER_CUSTOMER, RateLimiter
from bot.handoff.accounts import AgentError
from bot.handoff.ports import AgentAccount, AgentStore
from bot.handoff.state import TOO_MANY_HANDOFFS, claimed_by, is_active, new_handoff, waiting_notice

AGENTS_TOPIC = "agents"
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class DeskError(AgentError):
    """An agent action refused; `code` picks the HTTP status at the API's edge."""


@dataclass(frozen=True, slots=True)
class DeskOptions:
    business_hours: str = "Monday to Friday, 9:00-17:00"
    max_text_length: int = 4096
    history_max: int = 1000


@dataclass(slots=True)
class _Outgoing:
    """Messages an action sends once its change is saved."""

    items: list[tuple[Address | None, Outbound]] = field(default_factory=list)


_Change = Callable[[ConversationState, _Outgoing], Awaitable[list[HistoryEntry]]]


def _may_act(agent: AgentAccount, handoff: dict[str, Any] | None) -> None:
    if agent.role == "admin":
        return
    if not is_active(handoff):
        raise DeskError("not_in_queue", "this conversation is not waiting for a person")
    assert handoff is not None
    if handoff["status"] == "claimed" and handoff.get("agent") != agent.username:
        raise DeskError("not_yours", f"{handoff.get('agent_name')} holds this conversation")


class HandoffDesk:
    """Handoff operations for the turn hook and the agent API."""

    def __init__(self, *, store: ConversationReader, locks: CustomerLocks, senders: Senders,
                 limiter: RateLimiter, agents: AgentStore, bus: Bus,
                 options: DeskOptions | None = None) -> None:
        self.store = store
        self.locks = locks
        self.senders = senders
        self.limiter = limiter
        self.agents = agents
        self.bus = bus
        self.options = options or DeskOptions()

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
            return [Outbound(text=TOO_MANY_HANDOFFS)]
        ahead = await self.agents.queue_length()
        online = bool(await self.agents.agents_online())
        context.state.handoff = {**new_handoff(reason), "started_turn": context.state.turns}
        return [Outbound(text=waiting_notice(ahead, online, self.options.business_hours))]

    async def announce(self, customer: str, state: ConversationState,
                       entries: list[HistoryEntry]) -> None:
        """After a saved turn of a handed-off conversation: tell the consoles."""
        handoff = state.handoff
        assert handoff is not None
        if handoff.get("started_turn") == state.turns:
            await self.agents.index_queued(customer, handoff["since"])
            await self.publish({"type": "queued", "customer": customer,
                                "since": handoff["since"], "reason": handoff.get("reason")})
            return
        for entry in entries:
            await self.publish({"type": "message", "customer": customer,
                                "agent": handoff.get("agent"), "entry": entry.to_json()})

    async def queue_later(self, customer: str, reason: str) -> None:
        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            if not is_active(state.handoff):
                state.handoff = new_handoff(reason)
            return []

        state = await self._change(customer, change)
        await self._index(customer, state.handoff)
        await self.publish({"type": "queued", "customer": customer, "reason": reason})

    async def follow_merge(self, source: str, target: str,
                           handoff: dict[str, Any] | None) -> None:
        """`source` was joined into `target` (in a turn or not): its handoff
        (and agent) goes along."""
        if is_active(handoff):
            assert handoff is not None
            adopted = {k: v for k, v in handoff.items() if k != "started_turn"}

            async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
                if not is_active(state.handoff):
                    state.handoff = adopted
                return []

            await self.agents.index_closed(source)  # gone, whatever becomes of the target
            # A signed-in visitor's account may never have written: it starts here.
            state = await self._change(target, change, create=True)
            await self._index(target, state.handoff)
        await self.publish({"type": "moved", "customer": source, "to": target})

    async def forget(self, customer: str) -> None:
        """The customer is being erased: off the queue and the claims."""
        await self.agents.index_closed(customer)
        await self.publish({"type": "erased", "customer": customer})

    # The agents' actions.

    async def queue(self, limit: int = 500) -> list[dict[str, Any]]:
        """The oldest `limit` conversations waiting for a person, oldest first:
        three store round trips at most, however long the queue."""
        entries = await self.agents.queued(limit)
        states = await self.store.load_states([entry.customer for entry in entries])
        # Erased, merged away or expired: ids are never reused, so the entries
        # can go (an inactive state may be queued again).
        await self.agents.index_closed_all(
            [entry.customer for entry, raw in zip(entries, states, strict=True) if raw is None])
        waiting = []
        for entry, raw in zip(entries, states, strict=True):
            if raw is None:
                continue
            state = ConversationState.from_json(raw)
            if not is_active(state.handoff):
                continue
            assert state.handoff is not None
            last = state.last_address.channel if state.last_address else None
            waiting.append({"customer": entry.customer, "since": entry.since,
                            "reason": state.handoff.get("reason"), "channel": last})
        return waiting

    async def claimed(self, agent: AgentAccount) -> list[dict[str, str]]:
        """Conversations held by `agent` (by anyone, for an admin)."""
        held = []
        for customer, holder in sorted((await self.agents.claimed()).items()):
            if agent.role != "admin" and holder != agent.username:
                continue
            if await self.store.load_state(customer) is None:
                await self.agents.index_closed(customer)  # gone, as in `queue`
                continue
            held.append({"customer": customer, "agent": holder})
        return held

    async def view(self, agent: AgentAccount, customer: str) -> dict[str, Any]:
        """Any agent may read any conversation (the whole team needs the
        context); acting on it is what `_may_act` restricts."""
        state = await self._existing(customer)
        history = await self.store.history(customer, self.options.history_max)
        identities = await self.store.identities(customer)
        addresses = await self.store.addresses(customer)
        dialog = state.dialog
        return {
            "customer": customer,
            "handoff": state.handoff,
            "last_channel": state.last_address.channel if state.last_address else None,
            "channels": [{"channel": i.channel, "user_id": i.user_id} for i in identities],
            "addresses": {ch: a.to_json() for ch, a in sorted(addresses.items())},
            "flow": dialog.get("flow"),
            "slots": dialog.get("slots") or {},
            "history": [e.to_json() for e in history],
        }

    async def claim(self, agent: AgentAccount, customer: str) -> dict[str, Any]:
        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            handoff = state.handoff
            if is_active(handoff) and handoff["status"] == "claimed":  # type: ignore[index]
                assert handoff is not None
                if handoff.get("agent") == agent.username:
                    return []
                raise DeskError("already_claimed",
                                f"already claimed by {handoff.get('agent_name')}")
            if not is_active(handoff) and agent.role != "admin":
                raise DeskError("not_in_queue", "this conversation is not waiting for a person")
            base = handoff if is_active(handoff) else new_handoff("taken over by an admin")
            assert base is not None
            state.handoff = claimed_by(base, agent)
            joined = Outbound(text=f"{agent.display_name} from our team has joined the "
                                   "conversation.", sender="agent", agent_name=agent.display_name)
            return [await self._prepare(customer, state, joined, out)]

        state = await self._act(customer, change)
        await self.publish({"type": "claimed", "customer": customer, "agent": agent.username})
        return {"customer": customer, "handoff": state.handoff}

    async def reply(self, agent: AgentAccount, customer: str, text: object) -> dict[str, Any]:
        if not isinstance(text, str) or not text.strip():
            raise DeskError("bad_text", "'text' must be a non-empty string")
        if len(text) > self.options.max_text_length:
            raise DeskError("bad_text",
                            f"'text' is longer than {self.options.max_text_length} characters")
        claimed_now: list[bool] = []

        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            _may_act(agent, state.handoff)
            handoff = state.handoff
            if not is_active(handoff) or handoff["status"] == "queued":  # type: ignore[index]
                # Answering a waiting conversation takes it.
                state.handoff = claimed_by(handoff or new_handoff("taken over by an admin"), agent)
                claimed_now.append(True)
            message = Outbound(text=text, sender="agent", agent_name=agent.display_name)
            return [await self._prepare(customer, state, message, out)]

        state, delivered, entries = await self._act_and_deliver(customer, change)
        if claimed_now:
            await self.publish({"type": "claimed", "customer": customer,
                                "agent": agent.username})
        holder = (state.handoff or {}).get("agent")
        await self.publish({"type": "message", "customer": customer, "agent": holder,
                            "entry": entries[0].to_json()})
        return {"delivered": delivered[0] is not None, "channel": delivered[0],
                "entry": entries[0].to_json()}

    async def transfer(self, agent: AgentAccount, customer: str, to: object) -> dict[str, Any]:
        target = await self.agents.get_agent(to) if isinstance(to, str) else None
        if target is None:
            raise DeskError("unknown_agent", "'agent' must name an existing agent account")
        previous: list[str | None] = []

        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            _may_act(agent, state.handoff)
            base = state.handoff if is_active(state.handoff) else new_handoff(
                "taken over by an admin")
            assert base is not None
            previous.append(base.get("agent"))
            state.handoff = claimed_by(base, target)
            notice = Outbound(text=f"{target.display_name} from our team is taking over this "
                                   "conversation.", sender="agent",
                              agent_name=target.display_name)
            return [await self._prepare(customer, state, notice, out)]

        state = await self._act(customer, change)
        await self.publish({"type": "transferred", "customer": customer,
                            "agent": target.username, "from": previous[0],
                            "by": agent.username})
        return {"customer": customer, "handoff": state.handoff}

    async def release(self, agent: AgentAccount, customer: str) -> dict[str, Any]:
        """Back to the bot, with the flow state the conversation had."""
        return await self._end(agent, customer, close=False)

    async def close(self, agent: AgentAccount, customer: str) -> dict[str, Any]:
        """Done: back to the bot, which starts afresh."""
        return await self._end(agent, customer, close=True)

    async def _end(self, agent: AgentAccount, customer: str, *, close: bool) -> dict[str, Any]:
        async def change(state: ConversationState, out: _Outgoing) -> list[HistoryEntry]:
            _may_act(agent, state.handoff)
            if not is_active(state.handoff):
                raise DeskError("not_handed_off", "no person holds this conversation")
            since = float(state.handoff.get("since", 0))  # type: ignore[union-attr]
            state.handoff = None
            if close:
                state.dialog = {}
                notices = [Outbound(text=f"{agent.display_name} closed this conversation. "
                                         "Write here any time if you need anything else.")]
            else:
                notices = [Outbound(text="You're back with our assistant. Ask for a person "
                                         "again at any time."),
                           *await self._where_we_were(customer, state, since)]
            return [await self._prepare(customer, state, n, out) for n in notices]

        state = await self._act(customer, change)
        await self.publish({"type": "closed" if close else "released", "customer": customer,
                            "by": agent.username})
        return {"customer": customer, "handoff": state.handoff}

    async def _where_we_were(self, customer: str, state: ConversationState,
                             since: float) -> list[Outbound]:
        """The flow's open question, asked again, if it was waiting for an answer."""
        if not state.dialog.get("waiting"):
            return []
        for entry in reversed(await self.store.history(customer, 50)):
            if entry.sender == "bot" and entry.ts < since:
                return [Outbound(text=f"Where we left off: {entry.text}", buttons=entry.buttons)]
        return []

    # Routing.

    async def route(self, customer: str, state: ConversationState) -> Address | None:
        """Where a message to the customer goes: the channel they wrote from
        last; for a web chat with no socket on any worker, another linked
        channel; None when only the history can keep it."""
        last = state.last_address
        if last is None:
            return None
        if last.channel != "web" and last.channel in self.senders:
            return last
        if last.channel == "web" and await self.senders.reachable(last):
            return last
        others = {ch: a for ch, a in (await self.store.addresses(customer)).items()
                  if ch != last.channel and ch in self.senders and ch != "web"}
        if not others:
            return None
        for entry in reversed(await self.store.history(customer, 50)):
            if entry.sender == "customer" and entry.channel in others:
                return others[entry.channel]
        return others[sorted(others)[0]]

    async def _prepare(self, customer: str, state: ConversationState, outbound: Outbound,
                       out: _Outgoing) -> HistoryEntry:
        address = await self.route(customer, state)
        out.items.append((address, outbound))
        if address is not None:
            channel = address.channel
        else:
            channel = state.last_address.channel if state.last_address else "web"
        return HistoryEntry.of_outbound(outbound, channel, time.time())

    # Changing a customer's state under their lock.

    async def _act(self, customer: str, change: _Change) -> ConversationState:
        state, _, _ = await self._act_and_deliver(customer, change)
        return state

    async def _act_and_deliver(
        self, customer: str, change: _Change
    ) -> tuple[ConversationState, list[str | None], list[HistoryEntry]]:
        out = _Outgoing()
        entries: list[HistoryEntry] = []

        async def recorded(state: ConversationState, outgoing: _Outgoing) -> list[HistoryEntry]:
            entries.extend(await change(state, outgoing))
            return entries

        out_state = await self._change(customer, recorded, out)
        await self._index(customer, out_state.handoff)
        delivered: list[str | None] = []
        for address, outbound in out.items:
            ok = address is not None and await self.senders.send(address, outbound)
            delivered.append(address.channel if ok and address is not None else None)
        return out_state, delivered, entries

    async def _existing(self, customer: str) -> ConversationState:
        if not CUSTOMER_ID.match(customer):
            raise DeskError("unknown_customer", "no such customer")
        raw = await self.store.load_state(customer)
        if raw is None:
            raise DeskError("unknown_customer", "no such customer")
        return ConversationState.from_json(raw)

    async def _change(self, customer: str, change: _Change, out: _Outgoing | None = None,
                      *, create: bool = False) -> ConversationState:
        if not create:
            await self._existing(customer)  # never lock (and so create) an unknown customer
        outgoing = out or _Outgoing()

        async def apply(state: ConversationState) -> list[HistoryEntry]:
            return await change(state, outgoing)

        try:
            return await self.locks.change(customer, apply)
        except CustomerGone:
            raise DeskError("unknown_customer",
                            "this conversation was joined into another") from None

    async def _index(self, customer: str, handoff: dict[str, Any] | None) -> None:
        if not is_active(handoff):
            await self.agents.index_closed(customer)
        elif handoff["status"] == "claimed":  # type: ignore[index]
            await self.agents.index_claimed(customer, handoff["agent"])  # type: ignore[index]
        else:
            await self.agents.index_queued(customer, handoff["since"])  # type: ignore[index]

    async def publish(self, event: dict[str, Any]) -> None:
        await self.bus.publish(AGENTS_TOPIC, event)
