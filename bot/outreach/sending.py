"""Messages and flows the business starts, through the public API.

Each goes the way the bot's own replies do: saved with the conversation
under the customer's lock, in their outbox, then delivered from there, so
it enters the history once and is sent once. An idempotency key is kept
with the conversation in the same save, for a day.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.core import events, metrics
from bot.core.conversation import ConversationState
from bot.core.delivery import Reply, Senders
from bot.core.engine import message_data
from bot.core.errors import BadInput, CustomerGone
from bot.core.events import EventSink
from bot.core.locked_state import CustomerLocks
from bot.core.model import ChannelIdentity, HistoryEntry, Inbound, Outbound
from bot.core.outbox import Outbox
from bot.core.policy import FlowStarter, TurnContext
from bot.core.ports import ConversationReader
from bot.core.rate_limits import API_SENDS_PER_CUSTOMER, RateLimiter
from bot.handoff.state import is_active
from bot.outreach.reach import Reach, Route, Unreachable
from bot.outreach.request import FlowRequest, SendRequest, customer_id_of

log = logging.getLogger(__name__)

IDEMPOTENCY_SECONDS = 86400.0
# The most idempotency keys kept per conversation; older ones go first.
MAX_KEPT_SENDS = 500


class OutreachError(BadInput):
    """A call of the public API refused; `code` picks the HTTP status."""

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(code, message)
        self.details = details


@dataclass(frozen=True, slots=True)
class OutreachParts:
    store: ConversationReader
    locks: CustomerLocks
    senders: Senders
    outbox: Outbox
    limiter: RateLimiter
    events: EventSink
    # The dialog policy, when it can start flows. A flow that asks for a
    # person is queued as a turn's would be: the handoff desk's `begin`
    # inside the change, its `announce` once saved.
    flows: FlowStarter | None
    begin: Callable[[TurnContext, str], Awaitable[list[Outbound]]]
    announce: Callable[[str, ConversationState, list[HistoryEntry]], Awaitable[None]]
    # Tells the agents' consoles of a message sent while the conversation
    # is handed off (the handoff desk's live events).
    publish: Callable[[dict[str, Any]], Awaitable[None]]


class Outreach:
    """Finds customers, and sends them what the business starts."""

    def __init__(self, parts: OutreachParts, *, max_text_length: int = 4096,
                 clock: Callable[[], float] = time.time) -> None:
        self.parts = parts
        self.reach = Reach(parts.store, parts.senders)
        self.max_text_length = max_text_length
        self.clock = clock

    # Finding a customer.

    async def find(self, identity: ChannelIdentity) -> dict[str, Any]:
        store = self.parts.store
        customer_id = await store.find_customer(identity)
        if customer_id is None or await store.load_state(customer_id) is None:
            raise OutreachError("unknown_customer", "no customer has that identity")
        return await self.describe(customer_id)

    async def describe(self, customer_id: str) -> dict[str, Any]:
        identities = await self.parts.store.identities(customer_id)
        state = ConversationState.from_json(await self._existing(customer_id))
        return {"customer": customer_id,
                "channels": sorted({i.channel for i in identities}),
                "last_channel": state.last_address.channel if state.last_address else None}

    # Sending a message.

    async def send(self, key_name: str, customer_id: str, body: object) -> dict[str, Any]:
        request = SendRequest.parse(body, self.max_text_length)
        protected = self.parts.flows.protected_payloads() if self.parts.flows else frozenset()
        for button in request.buttons:
            if button.payload in protected:
                raise OutreachError("bad_buttons", f"the payload {button.payload!r} starts what "
                                    "only the customer may ask for")
        customer_id = customer_id_of(customer_id)
        await self._existing(customer_id)
        digest = hashlib.sha256(f"{key_name}\0{request.idempotency_key}".encode()).hexdigest()
        answer: dict[str, Any] = {}
        replies: list[Reply] = []
        outbound = Outbound(text=request.text, sender="bot", buttons=request.buttons)

        async def apply(state: ConversationState) -> list[HistoryEntry]:
            now = self.clock()
            _forget_old_sends(state, now)
            kept = state.api_sends.get(digest)
            if kept is not None:
                _same_request(kept, request.fingerprint())
                answer.update(kept["answer"], duplicate=True)
                return []
            route = await self._route(customer_id, state, request.channel)
            await self._count(customer_id)
            if route.address is not None:
                replies.append(Reply(route.address, outbound))
            entry = HistoryEntry.of_outbound(outbound, route.channel, now)
            answer.update(customer=customer_id, channel=route.channel, status=route.how,
                          message=entry.to_json())
            state.api_sends[digest] = {"at": now, "answer": dict(answer),
                                       "request": request.fingerprint()}
            answer["duplicate"] = False
            return [entry]

        changed = await self._change(customer_id, apply, replies)
        if answer["duplicate"]:
            return answer
        if replies and not (await self.parts.outbox.deliver(changed.batch))[0]:
            answer.update(self._not_sent(replies[0]))
        handoff = changed.state.handoff
        if is_active(handoff):
            assert handoff is not None
            await self.parts.publish({"type": "message", "customer": customer_id,
                                      "agent": handoff.agent, "entry": answer["message"]})
        metrics.API_MESSAGES.labels(answer["channel"], answer["status"]).inc()
        entry = HistoryEntry.from_json(answer["message"])
        await self.parts.events.emit(customer_id, events.MESSAGE_CREATED,
                                     {**message_data(entry), "source": "api", "key": key_name})
        return answer

    # Starting a flow.

    async def start_flow(self, key_name: str, customer_id: str, flow: str,
                         body: object) -> dict[str, Any]:
        starter = self.parts.flows
        if starter is None:
            raise OutreachError("unknown_flow", "this bot's policy cannot start flows")
        request = FlowRequest.parse(body)
        customer_id = customer_id_of(customer_id)
        await self._existing(customer_id)
        digest = None if request.idempotency_key is None else hashlib.sha256(
            f"{key_name}\0flow\0{request.idempotency_key}".encode()).hexdigest()
        kept: dict[str, Any] = {}
        said: list[Outbound] = []
        made: list[HistoryEntry] = []
        replies: list[Reply] = []
        where: list[Route] = []

        async def apply(state: ConversationState) -> list[HistoryEntry]:
            _forget_old_sends(state, self.clock())
            if digest is not None and digest in state.api_sends:
                _same_request(state.api_sends[digest], request.fingerprint(flow))
                kept.update(state.api_sends[digest]["answer"], duplicate=True)
                return []
            if is_active(state.handoff):
                raise OutreachError("handed_off", "a person has this conversation now")
            route = await self._route(customer_id, state, request.channel)
            target = route.address or state.last_address
            assert target is not None  # a known customer has written from somewhere
            inbound = Inbound(identity=ChannelIdentity(route.channel, "api"), address=target,
                              message_id=f"api-flow-{self.clock()}", text="")
            context = TurnContext(customer_id, inbound, state)
            # Refuses a flow or slot it may not start before anything is counted.
            said.extend(await starter.start_flow(context, flow, request.slots))
            await self._count(customer_id)
            if context.handoff_reason:
                said.extend(await self.parts.begin(context, context.handoff_reason))
            where.append(route)
            if route.address is not None:
                replies.extend(Reply(route.address, out) for out in said)
            now = self.clock()
            entries = [HistoryEntry.of_outbound(out, route.channel, now) for out in said]
            made.extend(entries)
            if digest is not None:
                state.api_sends[digest] = {"at": now, "request": request.fingerprint(flow),
                                           "answer": {
                    "customer": customer_id, "flow": flow, "channel": route.channel,
                    "status": route.how, "messages": [e.to_json() for e in entries]}}
            return [*entries, *context.internal]

        changed = await self._change(customer_id, apply, replies)
        if kept:
            return kept
        sent = await self.parts.outbox.deliver(changed.batch) if replies else []
        route = where[0]
        answer: dict[str, Any] = {"customer": customer_id, "flow": flow,
                                  "channel": route.channel, "status": route.how}
        if not all(sent):
            answer.update(self._not_sent(replies[sent.index(False)]))
        metrics.API_MESSAGES.labels(route.channel, answer["status"]).inc(len(made))
        for entry in made:
            await self.parts.events.emit(customer_id, events.MESSAGE_CREATED,
                                         {**message_data(entry), "source": "api", "key": key_name,
                                          "flow": flow})
        if is_active(changed.state.handoff):
            await self.parts.announce(customer_id, changed.state, [])
        return {**answer, "messages": [entry.to_json() for entry in made],
                "duplicate": False}

    # Shared steps.

    async def _count(self, customer_id: str) -> None:
        """One more message to the customer through the API, if the limit allows."""
        if not await self.parts.limiter.allow(API_SENDS_PER_CUSTOMER, customer_id):
            raise OutreachError("too_many_messages", "at most 30 messages an hour reach one "
                                                     "customer through the API")

    def _not_sent(self, reply: Reply) -> dict[str, str]:
        """A message saved but not sent now: refused by its channel (not
        tried again), or left in the outbox for a worker to send."""
        refused = self.parts.senders.refusal(reply.address)
        if refused is not None:
            return {"status": "refused", "reason": refused}
        return {"status": "pending"}

    async def _existing(self, customer_id: str) -> str:
        raw = await self.parts.store.load_state(customer_id)
        if raw is None:
            raise OutreachError("unknown_customer", "no such customer")
        return raw

    async def _route(self, customer_id: str, state: ConversationState,
                     wanted: str) -> Route:
        route = await self.reach.route(customer_id, state, wanted)
        if isinstance(route, Unreachable):
            raise OutreachError("unreachable", "no channel of the customer can take the "
                                "message now", reasons=route.reasons)
        return route

    async def _change(self, customer_id: str,
                      apply: Callable[[ConversationState], Awaitable[list[HistoryEntry]]],
                      replies: list[Reply]) -> Any:
        try:
            return await self.parts.locks.change(customer_id, apply, lambda: replies)
        except CustomerGone:
            raise OutreachError("unknown_customer",
                                "this customer was joined into another or erased") from None


def _forget_old_sends(state: ConversationState, now: float) -> None:
    sends = state.api_sends
    for digest in [d for d, kept in sends.items() if kept["at"] < now - IDEMPOTENCY_SECONDS]:
        del sends[digest]
    for digest in sorted(sends, key=lambda d: sends[d]["at"])[:-MAX_KEPT_SENDS]:
        del sends[digest]


def _same_request(kept: dict[str, Any], fingerprint: str) -> None:
    """An idempotency key names one request: the same key with another body
    is refused rather than answered with what the first one did."""
    if kept.get("request", fingerprint) != fingerprint:
        raise OutreachError("idempotency_key_reused", "this idempotency key was used in the "
                            "last 24 hours for another request")
