"""The outbox of `MemoryContextStore`: each customer's undelivered replies,
kept with the customer (so an erase takes them along), and the index of
customers who may have some, with the Redis store's semantics."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bot.core.ports import OutboxClaim, OutboxItem, Saved


@dataclass(slots=True)
class CustomerOutbox:
    items: dict[int, OutboxItem] = field(default_factory=dict)  # by seq, in order
    last_seq: int = 0
    claim: tuple[str, float] | None = None  # (token, expires at)


class _HasOutbox(Protocol):
    outbox: CustomerOutbox
    lock: tuple[str, float] | None


class MemoryOutboxMixin:
    """Every method runs without awaiting in between, so each is atomic."""

    _clock: Callable[[], float]
    _customers: Mapping[str, _HasOutbox]

    def _init_outbox(self) -> None:
        # Customer id -> (look at, mark): who may have replies nobody delivers.
        self._outbox_index: dict[str, tuple[float, int]] = {}
        self._outbox_marks = itertools.count(1)

    def _index_outbox(self, customer_id: str, after_seconds: float) -> int:
        """Look at the customer `after_seconds` from now (or later, if the
        entry says so already); the entry's new mark."""
        at = self._clock() + after_seconds
        current = self._outbox_index.get(customer_id)
        if current is not None:
            at = max(at, current[0])
        mark = next(self._outbox_marks)
        self._outbox_index[customer_id] = (at, mark)
        return mark

    def _add_to_outbox(self, customer: _HasOutbox, token: str, payloads: Sequence[str],
                       claim_seconds: float) -> Saved:
        box = customer.outbox
        earlier = len(box.items)
        if not payloads:
            return Saved(True, earlier=earlier)
        now = self._clock()
        first = box.last_seq + 1
        for seq, payload in enumerate(payloads, start=first):
            box.items[seq] = OutboxItem(seq, payload, now + claim_seconds)
        box.last_seq = first + len(payloads) - 1
        claimed = box.claim is None or box.claim[1] <= now
        if claimed:
            box.claim = (token, now + claim_seconds)
        return Saved(True, first_seq=first, claimed=claimed, earlier=earlier)

    async def outbox_due(self, limit: int) -> list[tuple[str, int]]:
        now = self._clock()
        due = sorted((at, customer_id, mark)
                     for customer_id, (at, mark) in self._outbox_index.items() if at <= now)
        return [(customer_id, mark) for _, customer_id, mark in due[:limit]]

    async def outbox_claim(
        self, customer_id: str, *, token: str, ttl_seconds: float, due_only: bool = False
    ) -> OutboxClaim:
        now = self._clock()
        customer = self._customers.get(customer_id)
        if customer is None:
            return OutboxClaim("idle")
        box = customer.outbox
        if box.claim is not None and box.claim[0] != token and box.claim[1] > now:
            return OutboxClaim("busy", retry_in=box.claim[1] - now)
        if not box.items:
            box.claim = None
            if customer.lock is not None and customer.lock[1] > now:
                # A turn in progress may save replies yet.
                return OutboxClaim("busy", retry_in=customer.lock[1] - now)
            return OutboxClaim("idle")
        head = next(iter(box.items.values()))
        if due_only and head.due > now:
            return OutboxClaim("busy", retry_in=head.due - now)
        box.claim = (token, now + ttl_seconds)
        return OutboxClaim("claimed", tuple(box.items.values()))

    async def outbox_extend(self, customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        now = self._clock()
        customer = self._customers.get(customer_id)
        if customer is None:
            return False
        box = customer.outbox
        if box.claim is None or box.claim[0] != token or box.claim[1] <= now:
            return False
        box.claim = (token, now + ttl_seconds)
        return True

    async def outbox_delivered(
        self, customer_id: str, seq: int, *, release: str | None = None, mark: int | None = None
    ) -> None:
        now = self._clock()
        customer = self._customers.get(customer_id)
        if customer is not None:
            customer.outbox.items.pop(seq, None)
        if release is None:
            return
        if customer is not None:
            box = customer.outbox
            if box.claim is not None and box.claim[0] == release:
                box.claim = None
            if box.items or (customer.lock is not None and customer.lock[1] > now):
                return
        if mark is not None:
            await self.outbox_reindex(customer_id, mark, after_seconds=None)

    async def outbox_reindex(
        self, customer_id: str, mark: int, *, after_seconds: float | None
    ) -> None:
        current = self._outbox_index.get(customer_id)
        if current is None or current[1] != mark:
            return
        if after_seconds is None:
            del self._outbox_index[customer_id]
        else:
            self._outbox_index[customer_id] = (self._clock() + after_seconds,
                                               next(self._outbox_marks))
