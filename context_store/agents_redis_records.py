"""The report's handoff records and the assignment lease, for `RedisAgentStore`.

Keys (prefix `segue` by default):
- `segue:{reports}:handoffs` hash record id -> record JSON (csat always null there)
- `segue:{reports}:scores`   hash record id -> the customer's score, set once
- `segue:{reports}:closed`   sorted set record id -> closed at (unix s)
- `segue:assign-lease`       the worker assigning waiting conversations now, with a TTL
- `segue:assign-last`        the username automatic assignment chose last

The three report keys share a hash tag, so a record and its index change in
one script, also on Redis Cluster. The score is kept apart from the record
so that rating never rewrites (and so never rounds) the record's times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bot.handoff.ports import HandoffRecord
from context_store.redis_client import RedisClient, run_redis

# KEYS: records, scores, closed. ARGV: id, JSON, closed at, keep after.
# Records closed before the last are dropped a batch at a time, each put.
_PUT_RECORD = """
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
local old = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', '(' .. ARGV[4], 'LIMIT', 0, 100)
if #old > 0 then
  redis.call('HDEL', KEYS[1], unpack(old))
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('ZREM', KEYS[3], unpack(old))
end
return #old
"""
# KEYS: records, scores. ARGV: id, score. Only a kept record, only once.
_RATE_RECORD = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
return redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
"""
# KEYS: lease. ARGV: holder, ttl ms.
_TAKE_LEASE = """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
_DROP_LEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 0
"""
_READ_BATCH = 1000


class RedisRecords:
    """`HandoffRecordStore` and `AssignmentStore` on one Redis client."""

    def __init__(self, client: RedisClient, key: Callable[..., str]) -> None:
        self.client = client
        self._records = key("{reports}", "handoffs")
        self._scores = key("{reports}", "scores")
        self._closed = key("{reports}", "closed")
        self._lease = key("assign-lease")
        self._last = key("assign-last")
        self._put = client.register_script(_PUT_RECORD)
        self._rate = client.register_script(_RATE_RECORD)
        self._take = client.register_script(_TAKE_LEASE)
        self._drop = client.register_script(_DROP_LEASE)

    async def put_record(self, record: HandoffRecord, keep_seconds: float) -> None:
        unscored = replace(record, csat=None)
        await run_redis(self._put(
            keys=[self._records, self._scores, self._closed],
            args=[record.id, unscored.to_json(), repr(record.closed_at),
                  repr(record.closed_at - keep_seconds)]))
        if record.csat is not None:
            await self.rate_record(record.id, record.csat)

    async def rate_record(self, record_id: str, score: int) -> bool:
        rated = await run_redis(self._rate(keys=[self._records, self._scores],
                                           args=[record_id, score]))
        return bool(int(rated))

    async def records_between(self, start: float, end: float,
                              limit: int) -> list[HandoffRecord]:
        ids: list[str] = await run_redis(self.client.zrangebyscore(
            self._closed, repr(start), f"({end!r}", start=0, num=limit))
        records: list[HandoffRecord] = []
        for first in range(0, len(ids), _READ_BATCH):
            batch = ids[first:first + _READ_BATCH]
            raws = await run_redis(self.client.hmget(self._records, batch))
            scores = await run_redis(self.client.hmget(self._scores, batch))
            for raw, score in zip(raws, scores, strict=True):
                if raw is not None:  # dropped between the two reads
                    record = HandoffRecord.from_json(raw)
                    records.append(replace(record, csat=int(score)) if score else record)
        return records

    async def take_assignment_lease(self, holder: str, ttl_seconds: float) -> bool:
        taken = await run_redis(self._take(keys=[self._lease],
                                           args=[holder, max(1, int(ttl_seconds * 1000))]))
        return bool(int(taken))

    async def drop_assignment_lease(self, holder: str) -> None:
        await run_redis(self._drop(keys=[self._lease], args=[holder]))

    async def last_assigned(self) -> str | None:
        last: str | None = await run_redis(self.client.get(self._last))
        return last

    async def set_last_assigned(self, username: str) -> None:
        await run_redis(self.client.set(self._last, username))
