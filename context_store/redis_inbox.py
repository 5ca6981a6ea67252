"""The durable inbox and the parked items of `RedisContextStore`.

Items without a lane are one stream read by one consumer group that every
worker joins; an item taken and not acknowledged within the stale time is
claimed again by another worker. Each lane partition is a stream of its
own, read by the same group through one script that hands out its next item
only when none is out: the oldest unacknowledged entry, if its consumer let
it go stale, else the first new one. The pending entry is the partition's
lease, kept alive by its worker (`inbox_keep`). Parked items are a capped
list, newest first.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.exceptions import ResponseError

from bot.core.errors import StoreError
from bot.core.inbox import take_in_order
from bot.core.ports import INBOX_PARTITIONS, InboxItem, StoreLimits
from context_store.keys import KeyBuilder, check_partition, lane_partition
from context_store.redis_client import RedisClient, run_redis
from context_store.redis_replicas import Replicated

_INBOX_GROUP = "segue-workers"
PARKED_MAX = 1000
PARKED_KEEP_SECONDS = 30 * 86400

# KEYS[1] a partition's stream. ARGV: group, consumer, stale ms. Answers
# {id, fields, deliveries} for the item handed out, or {last id} when there
# is none to give (one is out and kept, or none is queued). An entry deleted
# while out (trimmed by hand) is dropped and the next one looked at.
_READ_LANE = """
for _ = 1, 10 do
  local out = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1)[1]
  if not out then break end
  if out[3] < tonumber(ARGV[3]) then
    local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
    return {last and last[1] or '0-0'}
  end
  local claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], out[1])[1]
  if claimed then return {claimed[1], claimed[2], out[4] + 1} end
  redis.call('XACK', KEYS[1], ARGV[1], out[1])
end
local fresh = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', 1,
                         'STREAMS', KEYS[1], '>')
if fresh then
  local entry = fresh[1][2][1]
  return {entry[1], entry[2], 1}
end
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)[1]
return {last and last[1] or '0-0'}
"""
# KEYS[1] a stream. ARGV: group, consumer, entry id. Resets the entry's idle
# time if the consumer still holds it; without counting a delivery.
_KEEP = """
local out = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)[1]
if not out or out[2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1
"""

# KEYS[1] a stream. ARGV: group, consumer, stale ms. Every entry the consumer
# holds is made stale at once, so the next reader takes it over.
_GIVE_BACK = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1000, ARGV[2])
for _, entry in ipairs(held) do
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, entry[1], 'IDLE', ARGV[3], 'JUSTID')
end
return #held
"""


class RedisInboxMixin:
    """`InboxStore` and `ParkingStore` for `RedisContextStore`, on its client,
    keys and limits."""

    client: RedisClient
    keys: KeyBuilder
    limits: StoreLimits
    replicated: Replicated
    inbox_stale_ms: int
    _last_reclaim: float

    def _init_inbox(self, inbox_stale_ms: int) -> None:
        self.inbox_stale_ms = inbox_stale_ms
        self._groups: set[str] = set()  # streams whose consumer group is known to exist
        self._last_reclaim = 0.0
        self._read_lane = self.client.register_script(_READ_LANE)
        self._keep_entry = self.client.register_script(_KEEP)
        self._give_back = self.client.register_script(_GIVE_BACK)

    async def park(self, record: str) -> None:
        def write(pipe: Any) -> None:
            pipe.lpush(self.keys.parked(), record)
            pipe.ltrim(self.keys.parked(), 0, PARKED_MAX - 1)
            # Parked items hold customer text: kept no longer than customer data.
            pipe.expire(self.keys.parked(), self.limits.retention_seconds or PARKED_KEEP_SECONDS)

        if self.replicated.wanted:
            await self.replicated.commands(write)  # one key: in order, if not all at once
            return
        async with self.client.pipeline(transaction=True) as pipe:
            write(pipe)
            await run_redis(pipe.execute())

    async def parked(self, limit: int) -> list[str]:
        return list(await run_redis(self.client.lrange(self.keys.parked(), 0, limit - 1)))

    async def inbox_add(self, payload: str, *, lane: str | None = None) -> str:
        partition = None if lane is None else lane_partition(lane)
        stream = self.keys.inbox() if partition is None else self.keys.inbox_lane(partition)
        if self.replicated.wanted:
            # Queued is acknowledged (Slack's 200): on the replicas first.
            entry = await self.replicated.commands(lambda pipe: pipe.xadd(stream, {"p": payload}))
        else:
            entry = await run_redis(self.client.xadd(stream, {"p": payload}))
        return str(entry) if partition is None else f"{partition}/{entry}"

    async def inbox_take(self, consumer: str, *, count: int, block_ms: int) -> list[InboxItem]:
        return await take_in_order(self, consumer, count=count, block_ms=block_ms)

    async def inbox_read(
        self, consumer: str, partition: int | None, *, count: int, block_ms: int
    ) -> list[InboxItem]:
        if partition is None:
            return await self._take_loose(consumer, count, block_ms)
        check_partition(partition)
        stream = self.keys.inbox_lane(partition)
        args: list[str | int] = [_INBOX_GROUP, consumer, self.inbox_stale_ms]
        reply = await self._grouped(stream, lambda: self._read_lane([stream], args))
        if len(reply) == 1 and block_ms > 0:
            # None to give: wait for an entry newer than the last one, then
            # look again (the one out may be acknowledged by then).
            await run_redis(self.client.xread({stream: reply[0]}, count=1, block=block_ms))
            reply = await self._grouped(stream, lambda: self._read_lane([stream], args))
        if len(reply) == 1:
            return []
        entry_id, fields, deliveries = reply
        return [InboxItem(f"{partition}/{entry_id}", _payload(fields), int(deliveries),
                          self.inbox_stale_ms)]

    async def inbox_keep(self, consumer: str, item_id: str) -> bool:
        partition, slash, entry = item_id.partition("/")
        if slash:
            stream = self.keys.inbox_lane(int(partition))
        else:
            stream, entry = self.keys.inbox(), item_id
        args = [_INBOX_GROUP, consumer, entry]
        return bool(await run_redis(self._keep_entry([stream], args)))

    async def inbox_release(self, consumer: str) -> None:
        streams = [self.keys.inbox(), *map(self.keys.inbox_lane, range(INBOX_PARTITIONS))]
        args: list[str | int] = [_INBOX_GROUP, consumer, self.inbox_stale_ms]
        # Side by side (one write, or one per cluster node).
        answers = await asyncio.gather(
            *(self._give_back(keys=[stream], args=args) for stream in streams),
            return_exceptions=True)
        for answer in answers:
            # A stream whose group was never made has nothing to give back.
            if isinstance(answer, Exception) and not isinstance(answer, ResponseError):
                await run_redis(_raised(answer))
        self._last_reclaim = 0.0  # look for them at the next take, not a second later

    async def inbox_oldest_age(self) -> float | None:
        """Acknowledged entries are deleted, so each stream's first entry is
        its oldest item not yet handled, and its id the time it was queued
        (Redis's clock, in ms). One XRANGE per stream, sent side by side."""
        streams = [self.keys.inbox(), *map(self.keys.inbox_lane, range(INBOX_PARTITIONS))]
        firsts = await asyncio.gather(
            *(run_redis(self.client.xrange(stream, "-", "+", count=1)) for stream in streams))
        stamps = [int(str(entries[0][0]).partition("-")[0]) for entries in firsts if entries]
        if not stamps:
            return None
        return max(0.0, time.time() - min(stamps) / 1000)

    async def inbox_ack(self, item_id: str) -> None:
        partition, slash, entry = item_id.partition("/")
        if slash:
            stream = self.keys.inbox_lane(int(partition))
        else:
            stream, entry = self.keys.inbox(), item_id
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(stream, _INBOX_GROUP, entry)
            pipe.xdel(stream, entry)
            await run_redis(pipe.execute())

    async def _grouped(self, stream: str, call: Callable[[], Awaitable[Any]]) -> Any:
        """`call()` on `stream`, its consumer group made first if need be."""
        try:
            await self._ensure_group(stream)
            return await run_redis(call())
        except StoreError as exc:
            if "NOGROUP" in str(exc):
                # A Redis restarted without its data lost every group: make
                # them again as they are used.
                self._groups.clear()
            raise

    async def _take_loose(self, consumer: str, count: int, block_ms: int) -> list[InboxItem]:
        inbox = self.keys.inbox()
        items: list[InboxItem] = await self._grouped(
            inbox, lambda: self._reclaim(consumer, count)
        )
        if items:
            return items
        reply = await self._grouped(inbox, lambda: self.client.xreadgroup(
            _INBOX_GROUP, consumer, {inbox: ">"}, count=count,
            block=block_ms if block_ms > 0 else None,
        ))
        for _stream, entries in reply or []:
            items.extend(InboxItem(item_id, fields["p"], 1, self.inbox_stale_ms)
                         for item_id, fields in entries)
        return items

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
            InboxItem(item_id, fields["p"], attempts[item_id], self.inbox_stale_ms)
            for item_id, fields in claimed
            if fields
        ]

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            await run_redis(self.client.xgroup_create(stream, _INBOX_GROUP, id="0", mkstream=True))
        except StoreError as exc:
            # Made already, by another worker or before a restart.
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)


async def _raised(exc: Exception) -> None:
    raise exc


def _payload(fields: Any) -> str:
    """The payload of an entry as a script answers it: a flat field list."""
    values = dict(zip(fields[::2], fields[1::2], strict=True))
    return str(values["p"])
