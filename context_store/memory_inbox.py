"""The durable inbox of `MemoryContextStore`, with the Redis inbox's
semantics in one process: items without a lane in one queue that any
consumer takes from (stale ones reclaimed), and lanes hashed onto
partitions, each handing out one item at a time, in order.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.core.inbox import take_in_order
from bot.core.ports import INBOX_PARTITIONS, InboxItem
from context_store.keys import check_partition, lane_partition


@dataclass(slots=True)
class _Partition:
    entries: dict[str, str] = field(default_factory=dict)  # id -> payload, until acknowledged
    fresh: deque[str] = field(default_factory=deque)  # never handed out, oldest first
    # Handed out, not acknowledged, oldest first: id -> (consumer, deliveries, kept at).
    pending: dict[str, tuple[str, int, float]] = field(default_factory=dict)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryInboxMixin:
    """`InboxStore` for `MemoryContextStore`, on its clock. No method awaits
    between reading and writing, so each is atomic like its Redis script."""

    inbox_stale_ms: int
    _clock: Callable[[], float]

    def _init_inbox(self, inbox_stale_ms: int) -> None:
        self.inbox_stale_ms = inbox_stale_ms
        self._inbox: dict[str, str] = {}
        self._inbox_new: deque[str] = deque()
        # Items without a lane handed out: id -> (taken or kept at, attempts), and by whom.
        self._inbox_taken: dict[str, tuple[float, int]] = {}
        self._inbox_takers: dict[str, str] = {}
        self._inbox_ids = itertools.count(1)
        self._inbox_event = asyncio.Event()
        self._partitions = [_Partition() for _ in range(INBOX_PARTITIONS)]
        # When each item not yet acknowledged was queued, oldest first.
        self._inbox_queued_at: dict[str, float] = {}
        # Reads waiting for a new item right now.
        self.blocked_takers = 0

    async def inbox_add(self, payload: str, *, lane: str | None = None) -> str:
        if lane is None:
            item_id = f"{next(self._inbox_ids)}-0"
            self._inbox_queued_at[item_id] = self._clock()
            self._inbox[item_id] = payload
            self._inbox_new.append(item_id)
            self._inbox_event.set()
            return item_id
        number = lane_partition(lane)
        partition = self._partitions[number]
        item_id = f"{number}/{next(self._inbox_ids)}-0"
        self._inbox_queued_at[item_id] = self._clock()
        partition.entries[item_id] = payload
        partition.fresh.append(item_id)
        partition.arrived.set()
        return item_id

    async def inbox_take(self, consumer: str, *, count: int, block_ms: int) -> list[InboxItem]:
        return await take_in_order(self, consumer, count=count, block_ms=block_ms)

    async def inbox_read(
        self, consumer: str, partition: int | None, *, count: int, block_ms: int
    ) -> list[InboxItem]:
        if partition is None:
            return await self._take_loose(consumer, count, block_ms)
        check_partition(partition)
        lane = self._partitions[partition]
        item = self._next_of(lane, consumer)
        if item is None and block_ms > 0:
            lane.arrived.clear()
            self.blocked_takers += 1
            try:
                await asyncio.wait_for(lane.arrived.wait(), block_ms / 1000)
            except TimeoutError:
                return []
            finally:
                self.blocked_takers -= 1
            item = self._next_of(lane, consumer)
        return [item] if item is not None else []

    async def inbox_keep(self, consumer: str, item_id: str) -> bool:
        number, slash, _ = item_id.partition("/")
        now = self._clock()
        if slash:
            out = self._partitions[int(number)].pending
            held = out.get(item_id)
            if held is None or held[0] != consumer:
                return False
            out[item_id] = (consumer, held[1], now)
            return True
        taken = self._inbox_taken.get(item_id)
        if taken is None or self._inbox_takers.get(item_id) != consumer:
            return False
        self._inbox_taken[item_id] = (now, taken[1])
        return True

    async def inbox_release(self, consumer: str) -> None:
        for lane in self._partitions:
            for item_id, (holder, deliveries, _) in lane.pending.items():
                if holder == consumer:
                    lane.pending[item_id] = (holder, deliveries, -math.inf)
        for item_id, holder in self._inbox_takers.items():
            if holder == consumer and item_id in self._inbox_taken:
                self._inbox_taken[item_id] = (-math.inf, self._inbox_taken[item_id][1])

    async def inbox_oldest_age(self) -> float | None:
        oldest = next(iter(self._inbox_queued_at.values()), None)
        return None if oldest is None else max(0.0, self._clock() - oldest)

    async def inbox_ack(self, item_id: str) -> None:
        self._inbox_queued_at.pop(item_id, None)
        number, slash, _ = item_id.partition("/")
        if slash:
            lane = self._partitions[int(number)]
            lane.entries.pop(item_id, None)
            lane.pending.pop(item_id, None)
            return
        self._inbox.pop(item_id, None)
        self._inbox_taken.pop(item_id, None)
        self._inbox_takers.pop(item_id, None)

    def _next_of(self, lane: _Partition, consumer: str) -> InboxItem | None:
        """The partition's next item: the one out if it went stale, else the
        first never handed out; None while one is out and kept."""
        now = self._clock()
        for item_id, (_, deliveries, kept_at) in lane.pending.items():
            if kept_at > now - self.inbox_stale_ms / 1000:
                return None
            lane.pending[item_id] = (consumer, deliveries + 1, now)
            return InboxItem(item_id, lane.entries[item_id], deliveries + 1, self.inbox_stale_ms)
        while lane.fresh:
            item_id = lane.fresh.popleft()
            if item_id in lane.entries:
                lane.pending[item_id] = (consumer, 1, now)
                return InboxItem(item_id, lane.entries[item_id], 1, self.inbox_stale_ms)
        return None

    async def _take_loose(self, consumer: str, count: int, block_ms: int) -> list[InboxItem]:
        items = self._reclaim(consumer, count)
        if items:
            return items
        if not self._inbox_new and block_ms > 0:
            self._inbox_event.clear()
            self.blocked_takers += 1
            try:
                await asyncio.wait_for(self._inbox_event.wait(), block_ms / 1000)
            except TimeoutError:
                return []
            finally:
                self.blocked_takers -= 1
        now = self._clock()
        while self._inbox_new and len(items) < count:
            item_id = self._inbox_new.popleft()
            if item_id in self._inbox:
                self._inbox_taken[item_id] = (now, 1)
                self._inbox_takers[item_id] = consumer
                items.append(InboxItem(item_id, self._inbox[item_id], 1, self.inbox_stale_ms))
        return items

    def _reclaim(self, consumer: str, count: int) -> list[InboxItem]:
        now = self._clock()
        stale = now - self.inbox_stale_ms / 1000
        items: list[InboxItem] = []
        for item_id, (taken_at, attempts) in list(self._inbox_taken.items()):
            if taken_at <= stale and len(items) < count:
                self._inbox_taken[item_id] = (now, attempts + 1)
                self._inbox_takers[item_id] = consumer
                items.append(
                    InboxItem(item_id, self._inbox[item_id], attempts + 1, self.inbox_stale_ms)
                )
        return items
