"""`ContextStore` in process memory: the embedded default when no Redis is set.

It keeps the Redis store's semantics (locks with tokens and TTLs, dedup marks,
capped history, expiring counters) so both pass one contract suite; it is not
shared between processes and forgets everything on restart.
"""

from __future__ import annotations

import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from bot.core.backoff import poll_until
from bot.core.bus import LocalBus
from bot.core.errors import CustomerGone, LockTimeout
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import LoadResult, Saved, StoreLimits, merge_histories
from context_store.agents_memory import MemoryAgentStore
from context_store.events_memory import MemoryEventQueueMixin
from context_store.memory_erase import MemoryEraseMixin
from context_store.memory_inbox import MemoryInboxMixin
from context_store.memory_outbox import CustomerOutbox, MemoryOutboxMixin


@dataclass(slots=True)
class _Customer:
    state: str | None = None
    history: deque[HistoryEntry] = field(default_factory=deque)
    identities: set[ChannelIdentity] = field(default_factory=set)
    addresses: dict[str, Address] = field(default_factory=dict)
    lock: tuple[str, float] | None = None  # (token, expires at)
    seen: dict[str, float] = field(default_factory=dict)  # message key -> expires at
    outbox: CustomerOutbox = field(default_factory=CustomerOutbox)


class MemoryContextStore(MemoryInboxMixin, MemoryOutboxMixin, MemoryEventQueueMixin,
                         MemoryEraseMixin):
    """Dicts guarded by the event loop: every method runs without awaiting
    in between, so each is atomic like its Redis script."""

    def __init__(
        self,
        *,
        limits: StoreLimits | None = None,
        inbox_stale_ms: int = 30_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limits = limits or StoreLimits()
        # What every lifetime (locks, marks, tokens, counters) is measured on.
        self._clock = clock
        self._init_outbox()
        self._init_events()
        self._identities: dict[ChannelIdentity, str] = {}
        # Identities mapped provisionally (a hello, no message yet) -> expires at.
        self._provisional: dict[ChannelIdentity, float] = {}
        self._customers: dict[str, _Customer] = {}
        self._moved: dict[str, float] = {}  # customer id -> marker expires at
        self._merged_into: dict[str, str] = {}  # customer id -> the one it joined
        self._counters: dict[str, tuple[int, float]] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._last_sweep = self._clock()
        self._parked: deque[str] = deque(maxlen=1000)
        self._init_inbox(inbox_stale_ms)

    async def ping(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def agent_store(self) -> MemoryAgentStore:
        """Agents' accounts, queue and presence, in this process (one worker)."""
        return MemoryAgentStore()

    def bus(self) -> LocalBus:
        """Events within this process: the embedded store has one worker."""
        return LocalBus()

    async def resolve_customer(
        self, identity: ChannelIdentity, new_customer_id: str, *, provisional_ttl: int = 0
    ) -> str:
        # Like the Redis store: a provisional mapping lives `provisional_ttl`;
        # a later call that is not provisional (the identity's first message)
        # keeps it for good, as does any later call when retention is on (the
        # memory store keeps customer data for the life of the process).
        now = self._clock()
        customer_id = self._identities.get(identity)
        if customer_id is not None and self._provisional.get(identity, now + 1) <= now:
            del self._identities[identity], self._provisional[identity]
            customer_id = None
        if customer_id is None:
            self._identities[identity] = new_customer_id
            if provisional_ttl > 0:
                self._provisional[identity] = now + provisional_ttl
                self._sweep(now)
            return new_customer_id
        if provisional_ttl == 0 or self.limits.retention_seconds > 0:
            self._provisional.pop(identity, None)
        return customer_id

    async def find_customer(self, identity: ChannelIdentity) -> str | None:
        customer_id = self._identities.get(identity)
        if customer_id is not None and self._provisional.get(identity, math.inf) <= self._clock():
            return None
        return customer_id

    async def lock_and_load(
        self,
        customer_id: str,
        *,
        token: str,
        ttl_seconds: float,
        message_key: str | None,
        identity: ChannelIdentity | None = None,
        index_outbox: bool = False,
    ) -> LoadResult:
        # Indexed first, whatever the answer, as the Redis store does.
        mark = self._index_outbox(customer_id, ttl_seconds) if index_outbox else 0
        now = self._clock()
        if self._moved.get(customer_id, 0.0) > now:
            return LoadResult(locked=False, moved=True)
        customer = self._customers.setdefault(customer_id, _Customer())
        if identity is not None and customer.identities and identity not in customer.identities:
            return LoadResult(locked=False, moved=True)
        if message_key is not None and customer.seen.get(message_key, 0.0) > now:
            return LoadResult(locked=False, duplicate=True)
        if customer.lock is not None and customer.lock[1] > now:
            return LoadResult(locked=False)
        customer.lock = (token, now + ttl_seconds)
        return LoadResult(locked=True, state=customer.state, mark=mark)

    async def save_and_unlock(
        self,
        customer_id: str,
        *,
        token: str,
        state: str | None,
        entries: Sequence[HistoryEntry],
        message_key: str | None,
        identity: ChannelIdentity | None,
        address: Address | None = None,
        outbox: Sequence[str] = (),
        claim_seconds: float = 30.0,
    ) -> Saved:
        now = self._clock()
        customer = self._customers.get(customer_id)
        if customer is None or not self._holds(customer, token, now):
            return Saved(False)
        if state is not None:
            customer.state = state
        customer.history.extend(entries)
        while len(customer.history) > self.limits.history_max:
            customer.history.popleft()
        if identity is not None:
            customer.identities.add(identity)
        if address is not None:
            customer.addresses[address.channel] = address
        if message_key is not None:
            customer.seen[message_key] = now + self.limits.dedup_ttl_seconds
            self._forget_expired_marks(customer, now)
        saved = self._add_to_outbox(customer, token, outbox, claim_seconds)
        customer.lock = None
        return saved

    async def extend_lock(self, customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        customer = self._customers.get(customer_id)
        now = self._clock()
        if customer is None or not self._holds(customer, token, now):
            return False
        customer.lock = (token, now + ttl_seconds)
        return True

    async def unlock(self, customer_id: str, *, token: str) -> None:
        customer = self._customers.get(customer_id)
        if customer is not None and self._holds(customer, token, self._clock()):
            customer.lock = None

    async def addresses(self, customer_id: str) -> dict[str, Address]:
        customer = self._customers.get(customer_id)
        return dict(customer.addresses) if customer else {}

    async def load_state(self, customer_id: str) -> str | None:
        customer = self._customers.get(customer_id)
        return customer.state if customer else None

    async def load_states(self, customer_ids: Sequence[str]) -> list[str | None]:
        return [await self.load_state(customer_id) for customer_id in customer_ids]

    async def history(self, customer_id: str, limit: int) -> list[HistoryEntry]:
        customer = self._customers.get(customer_id)
        if customer is None:
            return []
        return list(customer.history)[-limit:]

    async def identities(self, customer_id: str) -> list[ChannelIdentity]:
        customer = self._customers.get(customer_id)
        return sorted(customer.identities) if customer else []

    async def append(self, customer_id: str, entries: Sequence[HistoryEntry]) -> None:
        customer = self._customers.setdefault(customer_id, _Customer())
        customer.history.extend(entries)
        while len(customer.history) > self.limits.history_max:
            customer.history.popleft()

    async def merge(
        self,
        source: str,
        target: str,
        *,
        lock_ttl_seconds: float,
        also: Sequence[ChannelIdentity] = (),
    ) -> None:
        now = self._clock()
        if self._moved.get(source, 0.0) > now and self._merged_into.get(source) == target \
                and self._moved.get(target, 0.0) <= now:
            return  # joined already: as on Redis, merging again changes nothing
        if any(self._moved.get(c, 0.0) > now for c in (source, target)):
            raise CustomerGone(f"customer {source} or {target} was erased or merged")
        tokens = {source: secrets.token_hex(8), target: secrets.token_hex(8)}
        for customer_id in sorted(tokens):
            await self._wait_lock(customer_id, tokens[customer_id], lock_ttl_seconds)
        src = self._customers.pop(source, _Customer())
        dst = self._customers.setdefault(target, _Customer())
        merged = merge_histories(src.history, dst.history)[-self.limits.history_max :]
        dst.history = deque(merged)
        dst.identities |= src.identities | set(also)
        dst.addresses = {**src.addresses, **dst.addresses}
        dst.seen.update(src.seen)
        for identity in src.identities | set(also):
            self._identities[identity] = target
            self._provisional.pop(identity, None)
        self._moved[source] = self._clock() + self.limits.moved_marker_seconds
        self._merged_into[source] = target
        self._note_merge(source, target)
        dst.lock = None

    async def _wait_lock(self, customer_id: str, token: str, ttl_seconds: float) -> None:
        async def attempt() -> bool | None:
            customer = self._customers.setdefault(customer_id, _Customer())
            now = self._clock()
            if customer.lock is None or customer.lock[1] <= now:
                customer.lock = (token, now + ttl_seconds)
                return True
            return None  # a turn in progress; it takes milliseconds

        if not await poll_until(attempt, within_seconds=self.limits.merge_lock_wait_seconds):
            raise LockTimeout(f"customer {customer_id} stayed locked")

    async def unlink(self, customer_id: str, identity: ChannelIdentity) -> None:
        if self._identities.get(identity) == customer_id:
            del self._identities[identity]
            self._provisional.pop(identity, None)
        customer = self._customers.get(customer_id)
        if customer is not None:
            customer.identities.discard(identity)

    async def put_token(self, key: str, value: str, ttl_seconds: int) -> bool:
        now = self._clock()
        current = self._tokens.get(key)
        if current is not None and current[1] > now:
            return False
        self._tokens[key] = (value, now + ttl_seconds)
        self._sweep(now)
        return True

    async def peek_token(self, key: str) -> str | None:
        current = self._tokens.get(key)
        return current[0] if current is not None and current[1] > self._clock() else None

    async def take_token(self, key: str) -> str | None:
        value = await self.peek_token(key)
        self._tokens.pop(key, None)
        return value

    async def incr(self, key: str, ttl_seconds: int) -> int:
        now = self._clock()
        value, expires = self._counters.get(key, (0, now + ttl_seconds))
        if expires <= now:
            value, expires = 0, now + ttl_seconds
        self._counters[key] = (value + 1, expires)
        self._sweep(now)
        return value + 1

    async def park(self, record: str) -> None:
        self._parked.appendleft(record)

    async def parked(self, limit: int) -> list[str]:
        return list(self._parked)[:limit]

    def _sweep(self, now: float) -> None:
        """Forget expired tokens, counters, markers and provisional identities,
        at most once a minute, so a long-running embedded server does not
        grow without end."""
        if now - self._last_sweep < 60:
            return
        self._last_sweep = now
        for table in (self._tokens, self._counters):
            for key in [k for k, (_, expires) in table.items() if expires <= now]:
                del table[key]
        for customer_id in [c for c, expires in self._moved.items() if expires <= now]:
            del self._moved[customer_id]
            self._merged_into.pop(customer_id, None)
        for identity in [i for i, expires in self._provisional.items() if expires <= now]:
            del self._provisional[identity]
            self._identities.pop(identity, None)

    @staticmethod
    def _holds(customer: _Customer, token: str, now: float) -> bool:
        return customer.lock is not None and customer.lock[0] == token and customer.lock[1] > now

    @staticmethod
    def _forget_expired_marks(customer: _Customer, now: float) -> None:
        if len(customer.seen) > 1024:
            for key, expires in list(customer.seen.items()):
                if expires <= now:
                    del customer.seen[key]
