"""The event queue of `MemoryContextStore` (`EventQueueStore`), with the
Redis store's semantics (`context_store.events_redis`): a queue per
customer, an index of customers with a mark per entry, a lease per customer.
Every method runs without awaiting in between, so each is atomic."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.events_queue import EventLease
from context_store.memory_erase import MemoryEraseMixin


@dataclass(slots=True)
class _Queue:
    events: deque[str] = field(default_factory=deque)
    lease: tuple[str, float] | None = None  # (token, expires at)
    failures: int = 0
    expires_at: float = 0.0


class MemoryEventQueueMixin(MemoryEraseMixin):
    """`EventQueueStore` in process memory; an erase takes the customers'
    queues along (their events can quote what was erased)."""

    _clock: Callable[[], float]

    def _init_events(self) -> None:
        self._event_queues: dict[str, _Queue] = {}
        # Customer id -> (look at, mark): who may have events to send.
        self._events_index: dict[str, tuple[float, int]] = {}
        self._events_marks = itertools.count(1)

    def _next_mark(self) -> int:
        return next(self._events_marks)

    def _queue(self, customer_id: str) -> _Queue | None:
        queue = self._event_queues.get(customer_id)
        if queue is not None and queue.expires_at <= self._clock():
            del self._event_queues[customer_id]
            return None
        return queue

    def _lease_of(self, queue: _Queue, token: str) -> bool:
        return (queue.lease is not None and queue.lease[0] == token
                and queue.lease[1] > self._clock())

    async def events_push(self, customer_id: str, event: str, *, max_queued: int,
                          keep_seconds: int) -> int:
        queue = self._queue(customer_id) or self._event_queues.setdefault(customer_id, _Queue())
        queue.events.append(event)
        queue.expires_at = self._clock() + keep_seconds
        dropped = max(0, len(queue.events) - max_queued)
        for _ in range(dropped):
            queue.events.popleft()
        if customer_id not in self._events_index:
            self._events_index[customer_id] = (self._clock(), self._next_mark())
        return dropped

    async def events_due(self, limit: int, *, hold_seconds: float) -> list[tuple[str, int]]:
        now = self._clock()
        due = sorted((at, mark, customer_id)
                     for customer_id, (at, mark) in self._events_index.items() if at <= now)
        taken = []
        for _, _, customer_id in due[:limit]:
            mark = self._next_mark()
            self._events_index[customer_id] = (now + hold_seconds, mark)
            taken.append((customer_id, mark))
        return taken

    async def events_lease(self, customer_id: str, *, token: str,
                           ttl_seconds: float) -> EventLease:
        now = self._clock()
        queue = self._queue(customer_id)
        if queue is None:
            queue = self._event_queues[customer_id] = _Queue(expires_at=now + ttl_seconds)
        if queue.lease is not None and queue.lease[0] != token and queue.lease[1] > now:
            return EventLease("busy", retry_in=queue.lease[1] - now)
        queue.lease = (token, now + ttl_seconds)
        head = queue.events[0] if queue.events else None
        return EventLease("held", head=head, failures=queue.failures)

    async def events_pop(self, customer_id: str, event: str, *, token: str,
                         ttl_seconds: float, sent: bool) -> EventLease:
        queue = self._queue(customer_id)
        if queue is None or not self._lease_of(queue, token):
            return EventLease("lost")
        if queue.events and queue.events[0] == event:
            queue.events.popleft()
        if sent:
            queue.failures = 0
        queue.lease = (token, self._clock() + ttl_seconds)
        head = queue.events[0] if queue.events else None
        return EventLease("held", head=head, failures=queue.failures)

    async def events_done(self, customer_id: str, mark: int, *, token: str) -> bool:
        queue = self._queue(customer_id)
        if queue is not None and not self._lease_of(queue, token):
            return True  # lost: the holder now sees to the rest
        if queue is not None and queue.events:
            return False
        self._event_queues.pop(customer_id, None)
        entry = self._events_index.get(customer_id)
        if entry is not None and entry[1] == mark:
            del self._events_index[customer_id]
        return True

    async def events_retry(self, customer_id: str, mark: int, *, token: str,
                           after_seconds: float, failed: bool) -> None:
        queue = self._queue(customer_id)
        if queue is not None and self._lease_of(queue, token):
            queue.lease = None
            if failed:
                queue.failures += 1
        entry = self._events_index.get(customer_id)
        if entry is not None and entry[1] == mark:
            self._events_index[customer_id] = (self._clock() + after_seconds,
                                               self._next_mark())

    async def erase(self, customer_id: str) -> None:
        # The ids first: the erase forgets who was joined into whom.
        gone = [customer_id, *await self.merged_ids(customer_id)]
        await super().erase(customer_id)
        for erased in gone:
            self._event_queues.pop(erased, None)
            self._events_index.pop(erased, None)
