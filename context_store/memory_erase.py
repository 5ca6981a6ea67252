"""Erase for `MemoryContextStore`, and the records that make it complete,
with the Redis store's reach (see `context_store.redis_erase`): the
customer and everyone joined into them, their identity mappings, the tokens
issued for them, counters and tokens named by their ids or identities,
link offers naming them in other customers' states, their parked and
queued items, and their entries in the outbox index. A `moved` marker
stays under each id for a day, as on Redis."""

from __future__ import annotations

import functools
import secrets
from collections import deque
from collections.abc import Callable, Collection, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.conversation import ConversationState, LinkOffer
from bot.core.errors import LockTimeout
from bot.core.model import ChannelIdentity
from bot.core.ports import StoreLimits
from bot.core.privacy import mentions, named_by, needles
from context_store.keys import identity_member

_ERASE_LOCK_SECONDS = 30.0


class _Erasable(Protocol):
    state: str | None
    identities: set[ChannelIdentity]


@dataclass(slots=True)
class _Records:
    merged: dict[str, set[str]] = field(default_factory=dict)  # target -> joined ids
    tokens: dict[str, dict[str, float]] = field(default_factory=dict)  # id -> key -> until
    offers: dict[str, set[str]] = field(default_factory=dict)  # named id -> holders


class MemoryEraseMixin:
    """`erase` and `CustomerRecordStore` for `MemoryContextStore`. Between
    its awaits (the locks) nothing is half-written."""

    limits: StoreLimits
    _clock: Callable[[], float]
    _customers: MutableMapping[str, Any]
    _identities: dict[ChannelIdentity, str]
    _provisional: dict[ChannelIdentity, float]
    _moved: dict[str, float]
    _merged_into: dict[str, str]
    _counters: dict[str, tuple[int, float]]
    _tokens: dict[str, tuple[str, float]]
    _parked: deque[str]
    _inbox: dict[str, str]
    _inbox_taken: dict[str, tuple[float, int]]
    _inbox_takers: dict[str, str]
    _partitions: list[Any]
    _outbox_index: dict[str, tuple[float, int]]

    async def _wait_lock(self, customer_id: str, token: str, ttl_seconds: float) -> None:
        raise NotImplementedError  # MemoryContextStore's

    async def unlock(self, customer_id: str, *, token: str) -> None:
        raise NotImplementedError  # MemoryContextStore's

    @functools.cached_property
    def _records(self) -> _Records:
        return _Records()

    async def note_tokens(self, customer_id: str, keys: Sequence[str], ttl_seconds: int) -> None:
        now = self._clock()
        until = now + ttl_seconds
        issued = self._records.tokens.setdefault(customer_id, {})
        for key in [k for k, expires in issued.items() if expires <= now]:
            del issued[key]
        issued.update(dict.fromkeys(keys, until))

    async def note_offer(self, customer_id: str, holder: str) -> None:
        self._records.offers.setdefault(customer_id, set()).add(holder)

    async def merged_ids(self, customer_id: str) -> list[str]:
        return sorted(self._records.merged.get(customer_id, ()))

    def _note_merge(self, source: str, target: str) -> None:
        merged = self._records.merged
        merged.setdefault(target, set()).update({source, *merged.get(source, ())})

    async def erase(self, customer_id: str) -> None:
        self._moved[customer_id] = self._clock() + self.limits.moved_marker_seconds
        self._merged_into.pop(customer_id, None)  # erased: the marker names no one
        if customer_id in self._customers:
            try:
                # A turn already running saves first, as on Redis.
                await self._wait_lock(customer_id, secrets.token_hex(8), _ERASE_LOCK_SECONDS)
            except LockTimeout:
                pass
        records = self._records
        ids = [customer_id, *sorted(records.merged.get(customer_id, ()))]
        holders = {h for i in ids for h in records.offers.get(i, ())} - set(ids)
        for holder in sorted(holders):
            await self._drop_offer(holder, ids)
        identities: set[ChannelIdentity] = set()
        for gone in ids:
            customer = self._customers.pop(gone, None)
            if customer is not None:
                identities |= customer.identities
            for key in records.tokens.pop(gone, {}):
                self._tokens.pop(key, None)
            records.merged.pop(gone, None)
            records.offers.pop(gone, None)
            # Their outbox went with them; so goes its entry for the sweeper.
            self._outbox_index.pop(gone, None)
        for identity, owner in list(self._identities.items()):
            if owner in ids:
                del self._identities[identity]
                self._provisional.pop(identity, None)
        named = [*ids, *(identity_member(i) for i in identities)]
        for table in (self._tokens, self._counters):
            for key in [k for k in table if named_by(k, named)]:
                del table[key]
        self._drop_items(needles(ids, identities))

    async def _drop_offer(self, holder: str, ids: Collection[str]) -> None:
        if holder not in self._customers:
            return
        token = secrets.token_hex(8)
        try:
            await self._wait_lock(holder, token, _ERASE_LOCK_SECONDS)
        except LockTimeout:
            return
        try:
            customer: _Erasable | None = self._customers.get(holder)
            if customer is None or customer.state is None:
                return
            state = ConversationState.from_json(customer.state)
            offer = state.pending_link
            if isinstance(offer, LinkOffer) and offer.customer_id in ids:
                state.pending_link = None
                customer.state = state.to_json()
        finally:
            await self.unlock(holder, token=token)

    def _drop_items(self, wanted: Collection[str]) -> None:
        """Parked items, and queued work not yet acknowledged, that hold one
        of `wanted`."""
        kept = [item for item in self._parked if not mentions(item, wanted)]
        if len(kept) != len(self._parked):
            self._parked.clear()
            self._parked.extend(kept)
        for item_id in [i for i, payload in self._inbox.items() if mentions(payload, wanted)]:
            del self._inbox[item_id]
            self._inbox_taken.pop(item_id, None)
            self._inbox_takers.pop(item_id, None)
        for lane in self._partitions:
            for item_id in [i for i, p in lane.entries.items() if mentions(p, wanted)]:
                del lane.entries[item_id]
                lane.pending.pop(item_id, None)
