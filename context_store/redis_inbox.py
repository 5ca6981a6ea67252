"""The durable inbox and the parked items of `RedisContextStore`.

The inbox is a Redis stream read by one consumer group that every worker
joins; an item taken and not acknowledged within the stale time is claimed
again by another worker. Parked items are a capped list, newest first.
"""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from bot.core.errors import StoreError
from bot.core.ports import InboxItem, StoreLimits
from context_store.keys import KeyBuilder
from context_store.redis_client import run_redis

_INBOX_GROUP = "segue-workers"
PARKED_MAX = 1000
PARKED_KEEP_SECONDS = 30 * 86400


class RedisInboxMixin:
    """`InboxStore` and `ParkingStore` for `RedisContextStore`, on its client,
    keys and limits."""

    client: aioredis.Redis
    keys: KeyBuilder
    limits: StoreLimits
    inbox_stale_ms: int
    _group_ready: bool
    _last_reclaim: float

    def _init_inbox(self, inbox_stale_ms: int) -> None:
        self.inbox_stale_ms = inbox_stale_ms
        self._group_ready = False
        self._last_reclaim = 0.0

    async def park(self, record: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.parked(), record)
            pipe.ltrim(self.keys.parked(), 0, PARKED_MAX - 1)
            # Parked items hold customer text: kept no longer than customer data.
            pipe.expire(self.keys.parked(), self.limits.retention_seconds or PARKED_KEEP_SECONDS)
            await run_redis(pipe.execute())

    async def parked(self, limit: int) -> list[str]:
        return list(await run_redis(self.client.lrange(self.keys.parked(), 0, limit - 1)))

    async def inbox_add(self, payload: str) -> str:
        return str(await run_redis(self.client.xadd(self.keys.inbox(), {"p": payload})))

    async def inbox_take(self, consumer: str, *, count: int, block_ms: int) -> list[InboxItem]:
        await self._ensure_group()
        try:
            items = await self._reclaim(consumer, count)
            if items:
                return items
            reply = await run_redis(
                self.client.xreadgroup(
                    _INBOX_GROUP, consumer, {self.keys.inbox(): ">"}, count=count, block=block_ms
                )
            )
        except StoreError as exc:
            # A Redis restarted without its data lost the group: make it again.
            if "NOGROUP" in str(exc):
                self._group_ready = False
            raise
        for _stream, entries in reply or []:
            items.extend(InboxItem(item_id, fields["p"], 1) for item_id, fields in entries)
        return items

    async def inbox_ack(self, item_id: str) -> None:
        inbox = self.keys.inbox()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(inbox, _INBOX_GROUP, item_id)
            pipe.xdel(inbox, item_id)
            await run_redis(pipe.execute())

    async def _reclaim(self, consumer: str, count: int) -> list[InboxItem]:
        # Looking for abandoned items costs a round trip; once a second is plenty.
        now = time.monotonic()
        if now - self._last_reclaim < 1.0:
            return []
        self._last_reclaim = now
        inbox = self.keys.inbox()
        pending = await run_redis(
            self.client.xpending_range(
                inbox, _INBOX_GROUP, min="-", max="+", count=count, idle=self.inbox_stale_ms
            )
        )
        if not pending:
            return []
        attempts = {p["message_id"]: int(p["times_delivered"]) + 1 for p in pending}
        claimed = await run_redis(
            self.client.xclaim(inbox, _INBOX_GROUP, consumer, self.inbox_stale_ms, list(attempts))
        )
        return [
            InboxItem(item_id, fields["p"], attempts[item_id])
            for item_id, fields in claimed
            if fields
        ]

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await run_redis(
                self.client.xgroup_create(self.keys.inbox(), _INBOX_GROUP, id="0", mkstream=True)
            )
        except StoreError as exc:
            # Made already, by another worker or before a restart.
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True
