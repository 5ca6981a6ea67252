"""The turn pipeline: dedup, identify, lock, load, record, decide, save, deliver.

The engine knows no channel library and no transport: connectors hand it an
`Inbound` and give it `OutboundSender`s to deliver with. A turn's replies
are saved with it, in the customer's outbox, and delivered from there
(`bot.core.outbox`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.core import metrics, turn_log
from bot.core.catalog import text
from bot.core.conversation import ConversationState
from bot.core.delivery import Batch, OutboundSender, Reply, Senders, encode
from bot.core.errors import LockLost
from bot.core.events import (
    CONVERSATION_STARTED,
    CUSTOMER_ERASED,
    MESSAGE_CREATED,
    NO_EVENTS,
    EventSink,
)
from bot.core.identities import Customers
from bot.core.locked_state import CustomerLocks, LockOptions, new_lock_token
from bot.core.model import Address, ChannelIdentity, HistoryEntry, Inbound, Outbound, is_public
from bot.core.outbox import Outbox, OutboxOptions
from bot.core.policy import Policy, TurnContext
from bot.core.ports import DeliveringStore

log = logging.getLogger(__name__)

# Before a turn has a conversation (a connector's own failure), in English;
# inside a turn, in the customer's language.
APOLOGY = Outbound(text=text("apology", None))


@dataclass(frozen=True, slots=True)
class Turn:
    """The result of processing one inbound message (steps 1-7)."""

    customer_id: str
    duplicate: bool
    address: Address
    replies: tuple[Outbound, ...] = ()
    # The customer this one was joined into during the turn (a link said yes).
    joined_into: str | None = None
    # What the save left in the outbox for `Engine.deliver`.
    batch: Batch | None = None


class TurnHook(Protocol):
    """An engine-level step around the dialog policy (linking, handoff).

    `intercept` runs inside the customer's turn, under their lock, before the
    policy: it returns the turn's replies to take the turn over (an empty
    list: no reply at all), or None to let the next hook or the policy decide.
    `after_save` runs once the turn is saved and before its replies are
    delivered, for effects outside the customer's own keys.
    """

    async def intercept(self, context: TurnContext) -> list[Outbound] | None: ...

    async def after_save(self, context: TurnContext, turn: Turn) -> None: ...


@dataclass(slots=True)
class EngineOptions:
    lock_ttl_seconds: float = 30.0
    lock_wait_seconds: float = 10.0
    # A turn still deciding after this long is given up with an apology, so
    # a hung action cannot hold a customer's lock (which is kept alive) forever.
    turn_timeout_seconds: float = 60.0


@dataclass(slots=True)
class _LocalLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


class Engine:
    """Runs turns. One customer's turns run one at a time, in arrival order:
    an in-process FIFO lock orders them within a worker, the store's lock
    across workers."""

    def __init__(
        self,
        *,
        store: DeliveringStore,
        policy: Policy,
        hooks: Sequence[TurnHook] = (),
        senders: Senders | Mapping[str, OutboundSender] | None = None,
        options: EngineOptions | None = None,
        customers: Customers | None = None,
        locks: CustomerLocks | None = None,
        outbox: Outbox | None = None,
        events: EventSink = NO_EVENTS,
    ) -> None:
        self.store = store
        # What happened, for the business's systems: queued, never sent here.
        self.events = events
        self.policy = policy
        # In order: the first hook to answer takes the turn over.
        self.hooks: tuple[TurnHook, ...] = tuple(hooks)
        self.senders = senders if isinstance(senders, Senders) else Senders(senders)
        self.options = options or EngineOptions()
        self.locks = locks if locks is not None else CustomerLocks(store, LockOptions(
            ttl_seconds=self.options.lock_ttl_seconds, wait_seconds=self.options.lock_wait_seconds))
        self.customers = customers if customers is not None else Customers(store)
        self.outbox = outbox if outbox is not None else Outbox(
            store, self.senders, OutboxOptions(claim_seconds=self.options.lock_ttl_seconds))
        self._local_locks: dict[str, _LocalLock] = {}

    async def handle(self, inbound: Inbound) -> Turn:
        """Process and deliver one inbound message."""
        with turn_log.ensure_turn(channel=inbound.channel):
            turn = await self.process(inbound)
            await self.deliver(turn)
        return turn

    async def customer_of(self, identity: ChannelIdentity) -> str:
        """The customer an identity belongs to, creating one if it is new."""
        return await self.customers.customer_of(identity)

    async def process(self, inbound: Inbound) -> Turn:
        """Steps 1-7: when this returns, the turn is durably saved (or was a
        duplicate). Store errors propagate so the connector can refuse the
        message and have it sent again."""
        started = time.perf_counter()
        with turn_log.ensure_turn(channel=inbound.channel):
            for _ in range(3):
                customer_id = await self.customer_of(inbound.identity)
                # From here on, the turn's lines (the connector's, after this
                # returns, too) name the customer.
                turn_log.identify(customer_id)
                turn = await self._process_as(customer_id, inbound)
                if turn is not None:
                    break
                # The customer was merged or erased since we cached its id.
                self.customers.forget(inbound.identity)
            else:
                raise LockLost(f"the customer of {inbound.identity} keeps moving")
        outcome = "duplicate" if turn.duplicate else "processed"
        metrics.turns(inbound.channel, outcome).inc()
        if not turn.duplicate:
            metrics.TURN_SECONDS.observe(time.perf_counter() - started)
        return turn

    async def _process_as(self, customer_id: str, inbound: Inbound) -> Turn | None:
        # Scoped by the sender: web chat ids are chosen by each client.
        message_key = f"{inbound.channel}:{inbound.identity.user_id}:{inbound.message_id}"
        async with self._customer_turn(customer_id):
            token = new_lock_token()
            loaded = await self.locks.take(customer_id, token, message_key=message_key,
                                           identity=inbound.identity)
            if loaded.moved:
                return None
            if loaded.duplicate:
                log.debug("a message handled before came again: answered once only")
                return Turn(customer_id=customer_id, duplicate=True, address=inbound.address)
            try:
                state = ConversationState.from_json(loaded.state)
                context = TurnContext(customer_id, inbound, state)
                with self.locks.kept(customer_id, token):
                    replies = await self._decide(context)
                ids = turn_log.current()
                turn_id = ids.turn_id if ids is not None else None
                outgoing = [Reply(inbound.address, r, turn_id) for r in replies]
                entries = [*record(inbound, replies), *context.internal]
                saved = await self.store.save_and_unlock(
                    customer_id,
                    token=token,
                    state=state.to_json(),
                    entries=entries,
                    message_key=message_key,
                    identity=inbound.identity,
                    address=inbound.address,
                    outbox=[encode(r) for r in outgoing],
                    claim_seconds=self.outbox.options.claim_seconds,
                )
            except BaseException:
                await self.locks.release_quietly(customer_id, token)
                raise
        if not saved:
            raise LockLost(f"lock of customer {customer_id} expired before the turn was saved")
        # Counts only: what was said stays out of the log.
        log.debug("turn saved with %d replies", len(replies))
        batch = self.locks.batch(customer_id, token, outgoing, loaded, saved)
        turn = Turn(customer_id, False, inbound.address, tuple(replies), batch=batch)
        if not context.erase_customer:
            # The erase would take them along: they quote what it erases.
            await self._emit_turn(context, entries)
        for hook in self.hooks:
            await hook.after_save(context, turn)
        if context.joined_into is not None:
            turn = replace(turn, joined_into=context.joined_into)
        if context.erase_customer:
            # After the save, so the confirmation is delivered but not kept.
            await self.store.erase(customer_id)
            self.customers.forget(inbound.identity)
            log.info("erased the data of customer %s at their request", customer_id)
            await self.events.emit(customer_id, CUSTOMER_ERASED, {"by": "customer"})
        return turn

    async def _emit_turn(self, context: TurnContext, entries: list[HistoryEntry]) -> None:
        """A saved turn's events: the conversation's start on the customer's
        first turn ever, then every line the customer can see, in order."""
        customer_id, channel = context.customer_id, context.inbound.channel
        if context.state.turns == 1:
            await self.events.emit(customer_id, CONVERSATION_STARTED, {"channel": channel})
        for entry in entries:
            if is_public(entry):
                await self.events.emit(customer_id, MESSAGE_CREATED, message_data(entry))

    async def deliver(self, turn: Turn) -> None:
        """Step 8: send each reply to the address the customer wrote from,
        from the outbox the turn saved them in (a turn made by hand, with no
        batch, is sent directly)."""
        if turn.replies:
            log.debug("delivering %d replies on %s", len(turn.replies), turn.address.channel)
        if turn.batch is not None:
            await self.outbox.deliver(turn.batch)
            return
        for reply in turn.replies:
            await self.send(turn.address, reply)

    async def send(self, address: Address, outbound: Outbound) -> bool:
        return await self.senders.send(address, outbound)

    async def _decide(self, context: TurnContext) -> list[Outbound]:
        context.state.last_address = context.inbound.address
        context.state.turns += 1
        # Only what this channel says now replaces what it said before.
        context.state.note_profile(context.inbound.channel, context.inbound.profile)
        try:
            async with asyncio.timeout(self.options.turn_timeout_seconds):
                replies = await self._intercepted(context)
                if replies is None:
                    replies = await self.policy.decide(context)
        except Exception:
            # The one place a failing dialog is logged with its traceback; the
            # customer gets an apology and the message still counts as handled.
            log.exception("the dialog policy failed for customer %s", context.customer_id)
            context.erase_customer = False
            replies = [Outbound(text=text("apology", context.state.locale))]
        return [_with_reply_to(r, context.inbound.message_id) for r in replies]

    async def _intercepted(self, context: TurnContext) -> list[Outbound] | None:
        for hook in self.hooks:
            replies = await hook.intercept(context)
            if replies is not None:
                return replies
        return None

    @asynccontextmanager
    async def _customer_turn(self, customer_id: str) -> AsyncIterator[None]:
        entry = self._local_locks.get(customer_id)
        if entry is None:
            entry = self._local_locks[customer_id] = _LocalLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._local_locks[customer_id]


def record(inbound: Inbound, replies: list[Outbound]) -> list[HistoryEntry]:
    """The history entries of one turn: the message, then each reply."""
    now = time.time()
    entries = [HistoryEntry.of_inbound(inbound)]
    entries.extend(HistoryEntry.of_outbound(r, inbound.channel, now) for r in replies)
    return entries


def message_data(entry: HistoryEntry, *, agent: str | None = None) -> dict[str, object]:
    """A `message.created` event's data: a line of the conversation; an
    agent's names the agent (`agent`: their username, when known)."""
    data: dict[str, object] = {"sender": entry.sender, "channel": entry.channel,
                               "text": entry.text, "ts": entry.ts}
    if entry.sender == "agent":
        data["agent"] = agent or entry.agent
        data["agent_name"] = entry.agent_name
    return data


def _with_reply_to(reply: Outbound, message_id: str) -> Outbound:
    if reply.reply_to is not None or reply.sender != "bot":
        return reply
    # Built directly: dataclasses.replace inspects the fields on every call.
    return Outbound(
        text=reply.text,
        sender=reply.sender,
        buttons=reply.buttons,
        images=reply.images,
        links=reply.links,
        reply_to=message_id,
        agent_name=reply.agent_name,
        event=reply.event,
        channels=reply.channels,
    )
