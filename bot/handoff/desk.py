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

from dataclasses import replace
from typing import Any

from bot.core.conversation import ClosedHandoff, ConversationState, HandoffState
from bot.core.engine import message_data
from bot.core.events import HANDOFF_CLAIMED, HANDOFF_CLOSED, HANDOFF_QUEUED, MESSAGE_CREATED
from bot.core.model import CONSOLE, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from bot.core.rate_limits import (
    HANDOFFS_PER_ADDRESS,
    HANDOFFS_PER_CUSTOMER,
    NOTES_PER_AGENT,
    NOTES_PER_CUSTOMER,
)
from bot.core.resume import asked_again
from bot.handoff import listing
from bot.handoff.desk_core import (
    AGENTS_TOPIC,
    NOT_WAITING,
    DeskCore,
    DeskError,
    DeskOptions,
    Outgoing,
    closed_handoff,
    holder_of,
    may_act,
)
from bot.handoff.ports import AgentAccount
from bot.handoff.rating import rating_question
from bot.handoff.state import (
    ADMIN_TAKEOVER,
    QUEUED,
    as_json,
    back_with_the_bot,
    carried_over,
    claimed_by,
    claimed_line,
    closed_by,
    closed_line,
    is_active,
    is_claimed,
    joined,
    new_handoff,
    observe_wait,
    queued_line,
    released_line,
    taking_over,
    too_many_handoffs,
    transferred_line,
    waiting_notice,
)

# Their home is `bot.handoff.desk_core`; callers know them from here.
__all__ = ["AGENTS_TOPIC", "DeskError", "DeskOptions", "HandoffDesk"]


class HandoffDesk(DeskCore):
    """Handoff operations for the turn hook and the agent API."""

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
        now = self.clock()
        context.state.handoff = new_handoff(reason, now, started_turn=context.state.turns)
        context.internal.append(HistoryEntry.internal("queued", queued_line(reason), now))
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
            await self.events.emit(customer_id, HANDOFF_QUEUED, {"reason": handoff.reason})
            return
        for entry in entries:
            await self.publish({"type": "message", "customer": customer_id,
                                "agent": handoff.agent, "entry": entry.to_json()})

    async def queue_later(self, customer_id: str, reason: str) -> None:
        async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
            if is_active(state.handoff):
                return []
            now = self.clock()
            state.handoff = new_handoff(reason, now)
            return [HistoryEntry.internal("queued", queued_line(reason), now)]

        state = (await self._change(customer_id, change)).state
        await self._index(customer_id, state.handoff)
        await self.publish({"type": "queued", "customer": customer_id, "reason": reason})
        await self.events.emit(customer_id, HANDOFF_QUEUED, {"reason": reason})

    async def follow_merge(self, source: str, target: str, handoff: HandoffState | None) -> None:
        """`source` was joined into `target` (in a turn or not): its handoff
        (and agent) goes along."""
        if is_active(handoff):
            adopted = carried_over(handoff)

            async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
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
        return await listing.waiting(self.store, self.agents, limit, now=self.clock(),
                                     alert_seconds=self.options.queue_alert_seconds)

    async def claimed(self, agent: AgentAccount) -> list[dict[str, str]]:
        """Conversations held by `agent` (by anyone, for an admin)."""
        return await listing.held(self.store, self.agents, agent)

    async def view(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        """Any agent may read any conversation (the whole team needs the
        context); acting on it is what `may_act` restricts."""
        state = await self._existing(customer_id)
        return await listing.conversation(self.store, customer_id, state,
                                          self.options.history_max)

    async def claim(self, agent: AgentAccount, customer_id: str, *,
                    assigned: bool = False) -> dict[str, Any]:
        """Take the conversation; `assigned`: given to `agent` by the
        automatic assignment, which only hands out waiting ones."""
        waited: list[HandoffState] = []

        async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
            handoff = state.handoff
            if is_claimed(handoff):
                if handoff.agent == agent.username and not assigned:
                    return []
                raise DeskError("already_claimed", f"already claimed by {handoff.agent_name}")
            if not is_active(handoff) and (agent.role != "admin" or assigned):
                raise DeskError("not_in_queue", NOT_WAITING)
            now = self.clock()
            base = handoff if is_active(handoff) else new_handoff(ADMIN_TAKEOVER, now)
            waited[:] = [base]
            state.handoff = claimed_by(base, agent, now)
            line = HistoryEntry.internal("assigned" if assigned else "claimed",
                                         claimed_line(agent.display_name, assigned=assigned),
                                         now, agent_name=agent.display_name)
            notice = Outbound(text=joined(agent.display_name, state.locale), sender="agent",
                              agent_name=agent.display_name, event="agent_joined")
            return [line, await self._prepare(customer_id, state, notice, out)]

        state, _, entries = await self._act_and_deliver(customer_id, change)
        observe_wait(waited)
        await self.publish({"type": "claimed", "customer": customer_id,
                            "agent": agent.username})
        if assigned:
            await self.publish({"type": "assigned", "customer": customer_id,
                                "agent": agent.username})
        await self.announce_internal(customer_id, state, entries)
        await self.events.emit(customer_id, HANDOFF_CLAIMED,
                               {"agent": agent.username, "assigned": assigned})
        return {"customer": customer_id, "handoff": as_json(state.handoff)}
    async def reply(self, agent: AgentAccount, customer_id: str, text: object) -> dict[str, Any]:
        text = self._checked_text(text)
        claimed_now: list[HandoffState] = []

        async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
            may_act(agent, state.handoff)
            handoff = state.handoff
            now = self.clock()
            lines = []
            if not is_active(handoff) or handoff.status == QUEUED:
                # Answering a waiting conversation takes it.
                base = handoff if is_active(handoff) else new_handoff(ADMIN_TAKEOVER, now)
                state.handoff = claimed_by(base, agent, now)
                claimed_now[:] = [base]
                lines.append(HistoryEntry.internal(
                    "claimed", claimed_line(agent.display_name, assigned=False), now,
                    agent_name=agent.display_name))
            assert state.handoff is not None
            if state.handoff.first_response_at is None:
                state.handoff = replace(state.handoff, first_response_at=now)
            message = Outbound(text=text, sender="agent", agent_name=agent.display_name)
            return [*lines, await self._prepare(customer_id, state, message, out)]

        state, delivered, entries = await self._act_and_deliver(customer_id, change)
        observe_wait(claimed_now)
        if claimed_now:
            await self.publish({"type": "claimed", "customer": customer_id,
                                "agent": agent.username})
            await self.events.emit(customer_id, HANDOFF_CLAIMED,
                                   {"agent": agent.username, "assigned": False})
        await self.announce_internal(customer_id, state, entries)
        await self.events.emit(customer_id, MESSAGE_CREATED,
                               message_data(entries[-1], agent=agent.username))
        holder = state.handoff.agent if state.handoff is not None else None
        said = entries[-1].to_json()
        await self.publish({"type": "message", "customer": customer_id, "agent": holder,
                            "entry": said})
        return {"delivered": delivered[-1] is not None, "channel": delivered[-1],
                "entry": said}

    async def note(self, agent: AgentAccount, customer_id: str, text: object) -> dict[str, Any]:
        """A private note in the conversation's timeline: for the team only,
        never sent to the customer. Any agent may note any conversation,
        whoever holds it and whether or not a person does."""
        text = self._checked_text(text)
        await self._existing(customer_id)
        if not await self.limiter.allow_all([(NOTES_PER_AGENT, agent.username),
                                             (NOTES_PER_CUSTOMER, customer_id)]):
            raise DeskError("too_many_notes",
                            "too many notes: at most 60 an hour on one conversation and 120 "
                            "an hour from one agent")
        entry = HistoryEntry(sender="note", channel=CONSOLE, text=text, ts=self.clock(),
                             agent_name=agent.display_name, agent=agent.username)

        async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
            return [entry]

        state = (await self._change(customer_id, change)).state
        await self.publish({"type": "note", "customer": customer_id,
                            "agent": holder_of(state), "entry": entry.to_json()})
        return {"entry": entry.to_json()}

    async def typing(self, agent: AgentAccount, customer_id: str, on: object) -> dict[str, Any]:
        """Show the customer that `agent` is typing, on their current channel
        (the web chat and Telegram can; Slack cannot); nothing is stored."""
        if not isinstance(on, bool):
            raise DeskError("bad_fields", "'on' must be true or false")
        state = await self._existing(customer_id)
        may_act(agent, state.handoff)
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

        async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
            may_act(agent, state.handoff)
            handoff = state.handoff
            now = self.clock()
            base = handoff if is_active(handoff) else new_handoff(ADMIN_TAKEOVER, now)
            waited[:] = [base]
            previous.append(base.agent)
            state.handoff = claimed_by(base, target, now)
            line = HistoryEntry.internal(
                "transferred", transferred_line(agent.display_name, base.agent_name,
                                                target.display_name),
                now, agent_name=target.display_name)
            notice = Outbound(text=taking_over(target.display_name, state.locale), sender="agent",
                              agent_name=target.display_name, event="agent_joined")
            return [line, await self._prepare(customer_id, state, notice, out)]

        state, _, entries = await self._act_and_deliver(customer_id, change)
        observe_wait(waited)
        await self.publish({"type": "transferred", "customer": customer_id,
                            "agent": target.username, "from": previous[0],
                            "by": agent.username})
        await self.announce_internal(customer_id, state, entries)
        await self.events.emit(customer_id, HANDOFF_CLAIMED,
                               {"agent": target.username, "assigned": False,
                                "transferred_from": previous[0]})
        return {"customer": customer_id, "handoff": as_json(state.handoff)}

    async def release(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        """Back to the bot, with the flow state the conversation had."""
        return await self._end(agent, customer_id, close=False)

    async def close(self, agent: AgentAccount, customer_id: str) -> dict[str, Any]:
        """Done: back to the bot, which starts afresh."""
        return await self._end(agent, customer_id, close=True)

    async def _end(self, agent: AgentAccount, customer_id: str, *,
                   close: bool) -> dict[str, Any]:
        rated: list[ClosedHandoff] = []

        async def change(state: ConversationState, out: Outgoing) -> list[HistoryEntry]:
            may_act(agent, state.handoff)
            handoff = state.handoff
            if not is_active(handoff):
                raise DeskError("not_handed_off", "no person holds this conversation")
            now = self.clock()
            state.handoff = None
            if close:
                state.dialog, state.question = {}, None
                line = HistoryEntry.internal("closed", closed_line(agent.display_name), now,
                                             agent_name=agent.display_name)
                notices = [Outbound(text=closed_by(agent.display_name, state.locale),
                                    event="agent_left")]
                if is_claimed(handoff):
                    # A person held it: its figures count, and the customer is
                    # asked how it went (`bot.handoff.rating`). One closed
                    # while it waited (spam, a duplicate) is neither.
                    rated[:] = [closed_handoff(handoff, now)]
                    state.closed_handoff = rated[0]
                    notices.append(rating_question(state.locale, rated[0].record))
            else:
                line = HistoryEntry.internal("released", released_line(agent.display_name), now,
                                             agent_name=agent.display_name)
                notices = [Outbound(text=back_with_the_bot(state.locale), event="agent_left"),
                           *await asked_again(self.store, customer_id, state,
                                              before=float(handoff.since))]
            return [line, *[await self._prepare(customer_id, state, n, out) for n in notices]]

        state, _, entries = await self._act_and_deliver(customer_id, change)
        for closed in rated:
            await self._keep_record(closed)
        await self.publish({"type": "closed" if close else "released",
                            "customer": customer_id, "by": agent.username})
        await self.announce_internal(customer_id, state, entries)
        # The rating, if one is asked for, comes later as `handoff.rated`.
        await self.events.emit(customer_id, HANDOFF_CLOSED, {
            "agent": agent.username, "record": rated[0].record if rated else None,
            "csat": None, "released": not close})
        return {"customer": customer_id, "handoff": as_json(state.handoff)}
