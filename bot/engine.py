"""The turn pipeline: dedup, identify, lock, load, record, decide, save, deliver.

The engine knows no channel library and no transport: connectors hand it an
`Inbound` and give it `OutboundSender`s to deliver with.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from bot import metrics
from bot.conversation import ConversationState
from bot.errors import ConnectorError, LockLost, LockTimeout
from bot.model import Address, ChannelIdentity, HistoryEntry, Inbound, Outbound
from bot.policy import Policy, TurnContext
from bot.rate_limits import RateLimiter
from context_store.base import ContextStore, LoadResult

log = logging.getLogger(__name__)

APOLOGY = Outbound(text="Sorry, something went wrong on our side. Please try again in a moment.")


class OutboundSender(Protocol):
    """The outbound half of a connector."""

    async def send(self, address: Address, outbound: Outbound) -> None: ...


@dataclass(frozen=True, slots=True)
class Turn:
    """The result of processing one inbound message (steps 1-7)."""

    customer_id: str
    duplicate: bool
    address: Address
    replies: tuple[Outbound, ...] = ()


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


class IdentityCache:
    """Channel identity -> customer id, kept in process to save a Redis round
    trip per turn. An entry can go stale when customers are merged or erased;
    the store then answers `moved` and the engine resolves again. Entries
    expire well before the store's `moved` markers do."""

    def __init__(self, *, max_entries: int = 100_000, max_age_seconds: float = 3600) -> None:
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self._entries: dict[ChannelIdentity, tuple[str, float]] = {}

    def get(self, identity: ChannelIdentity) -> str | None:
        entry = self._entries.get(identity)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, identity: ChannelIdentity, customer_id: str) -> None:
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: drop the oldest tenth at once.
            for stale in list(self._entries)[: self.max_entries // 10 + 1]:
                del self._entries[stale]
        self._entries[identity] = (customer_id, time.monotonic() + self.max_age_seconds)

    def drop(self, identity: ChannelIdentity) -> None:
        self._entries.pop(identity, None)


def new_customer_id() -> str:
    return secrets.token_hex(8)


class Engine:
    """Runs turns. One customer's turns run one at a time, in arrival order:
    an in-process FIFO lock orders them within a worker, the store's lock
    across workers."""

    def __init__(
        self,
        *,
        store: ContextStore,
        policy: Policy,
        senders: Mapping[str, OutboundSender] | None = None,
        options: EngineOptions | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.store = store
        # Per-client limits on what grows shared state (codes, handoffs).
        self.limiter = limiter if limiter is not None else RateLimiter(store)
        self.policy = policy
        self.senders: dict[str, OutboundSender] = dict(senders or {})
        self.options = options or EngineOptions()
        self._local_locks: dict[str, _LocalLock] = {}
        self.identities = IdentityCache()
        self.hooks: list[TurnHook] = []

    def add_sender(self, channel: str, sender: OutboundSender) -> None:
        self.senders[channel] = sender

    async def handle(self, inbound: Inbound) -> Turn:
        """Process and deliver one inbound message."""
        turn = await self.process(inbound)
        await self.deliver(turn)
        return turn

    async def customer_of(self, identity: ChannelIdentity) -> str:
        """The customer an identity belongs to, creating one if it is new."""
        customer_id = self.identities.get(identity)
        if customer_id is None:
            customer_id = await self.store.resolve_customer(identity, new_customer_id())
            self.identities.put(identity, customer_id)
        return customer_id

    async def process(self, inbound: Inbound) -> Turn:
        """Steps 1-7: when this returns, the turn is durably saved (or was a
        duplicate). Store errors propagate so the connector can refuse the
        message and have it sent again."""
        started = time.perf_counter()
        for _ in range(3):
            customer_id = await self.customer_of(inbound.identity)
            turn = await self._process_as(customer_id, inbound)
            if turn is not None:
                break
            # The customer was merged or erased since we cached its id.
            self.identities.drop(inbound.identity)
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
            token = secrets.token_hex(8)
            loaded = await self._lock_and_load(customer_id, token, message_key, inbound.identity)
            if loaded.moved:
                return None
            if loaded.duplicate:
                return Turn(customer_id=customer_id, duplicate=True, address=inbound.address)
            try:
                state = ConversationState.from_json(loaded.state)
                context = TurnContext(customer_id, inbound, state)
                with self._lock_kept(customer_id, token):
                    replies = await self._decide(context)
                saved = await self.store.save_and_unlock(
                    customer_id,
                    token=token,
                    state=state.to_json(),
                    entries=record(inbound, replies),
                    message_key=message_key,
                    identity=inbound.identity,
                    address=inbound.address,
                )
            except BaseException:
                await self._release_quietly(customer_id, token)
                raise
        if not saved:
            raise LockLost(f"lock of customer {customer_id} expired before the turn was saved")
        turn = Turn(customer_id, False, inbound.address, tuple(replies))
        for hook in self.hooks:
            await hook.after_save(context, turn)
        if context.erase_customer:
            # After the save, so the confirmation is delivered but not kept.
            await self.store.erase(customer_id)
            self.identities.drop(inbound.identity)
            log.info("erased the data of customer %s at their request", customer_id)
        return turn

    async def deliver(self, turn: Turn) -> None:
        """Step 8: send each reply to the address the customer wrote from."""
        for reply in turn.replies:
            await self.send(turn.address, reply)

    async def send(self, address: Address, outbound: Outbound) -> bool:
        """Deliver one message; a failing channel is logged, never raised,
        because the message is already in the customer's history."""
        sender = self.senders.get(address.channel)
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

    async def _decide(self, context: TurnContext) -> list[Outbound]:
        context.state.last_address = context.inbound.address
        context.state.turns += 1
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
            replies = [APOLOGY]
        return [_with_reply_to(r, context.inbound.message_id) for r in replies]

    async def _intercepted(self, context: TurnContext) -> list[Outbound] | None:
        for hook in self.hooks:
            replies = await hook.intercept(context)
            if replies is not None:
                return replies
        return None

    async def _lock_and_load(
        self, customer_id: str, token: str, message_key: str, identity: ChannelIdentity
    ) -> LoadResult:
        deadline = time.monotonic() + self.options.lock_wait_seconds
        delay = 0.005
        while True:
            loaded = await self.store.lock_and_load(
                customer_id,
                token=token,
                ttl_seconds=self.options.lock_ttl_seconds,
                message_key=message_key,
                identity=identity,
            )
            if loaded.locked or loaded.duplicate or loaded.moved:
                return loaded
            if time.monotonic() >= deadline:
                raise LockTimeout(f"customer {customer_id} stayed locked by another worker")
            # Another worker holds the lock; its turn takes milliseconds.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    @contextmanager
    def _lock_kept(self, customer_id: str, token: str) -> Iterator[None]:
        """Keep the customer's lock alive while a slow turn decides, so no
        other worker takes it and runs a later message first. Quick turns,
        nearly all of them, only schedule and cancel a timer."""
        loop = asyncio.get_running_loop()
        interval = self.options.lock_ttl_seconds / 3
        renewing: list[asyncio.Task[None]] = []

        async def renew() -> None:
            while await self.store.extend_lock(
                customer_id, token=token, ttl_seconds=self.options.lock_ttl_seconds
            ):
                await asyncio.sleep(interval)
            log.warning("lost the lock of customer %s during a turn", customer_id)

        timer = loop.call_later(interval, lambda: renewing.append(loop.create_task(renew())))
        try:
            yield
        finally:
            timer.cancel()
            for task in renewing:
                task.cancel()

    async def _release_quietly(self, customer_id: str, token: str) -> None:
        try:
            await self.store.unlock(customer_id, token=token)
        except Exception:  # the lock's TTL frees it anyway
            log.warning("could not release the lock of customer %s", customer_id)

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
    )
