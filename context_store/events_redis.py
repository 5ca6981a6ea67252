"""The event queue of `RedisContextStore` (`EventQueueStore`).

A customer's events wait in the list `{c:<id>}:events`, oldest first; the
worker sending them holds `{c:<id>}:events-lease` (a token with a TTL), and
`{c:<id>}:events-failures` counts failed sends of the oldest one (for the
backoff, whichever worker sends next). All three carry the customer's hash
tag, so each script below stays in one Redis Cluster slot, and an erase
takes them with the customer's other keys.

The index `events` (a sorted set: customer -> when to look, in ms) names
the customers who may have events to send; like the outbox index it has no
hash tag and is written in its own scripts. A score is also the entry's
mark: whoever moves or drops an entry names the score it read, so an entry
someone else has moved since is left alone. An emit appends and then indexes
(`ZADD NX`: a customer waiting out a backoff keeps waiting); one that finds
the queue empty drops the entry and then looks at the queue once more, so an
event appended meanwhile is never left unindexed.
"""

from __future__ import annotations

from typing import Any

from bot.core.events_queue import EventLease
from context_store.keys import KeyBuilder
from context_store.redis_client import RedisClient, ScriptCall, is_cluster, run_redis, run_scripts

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: events. ARGV: event, most kept, keep seconds. How many were dropped.
PUSH = """
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
local over = n - tonumber(ARGV[2])
if over > 0 then
  redis.call('LTRIM', KEYS[1], over, -1)
  return over
end
return 0
"""

# KEYS: index. ARGV: customer. Due now, unless the entry says when already.
INDEX = _NOW_MS + """
return redis.call('ZADD', KEYS[1], 'NX', string.format('%d', now), ARGV[1])
"""

# KEYS: index. ARGV: limit, hold ms. Customer, mark, customer, mark, ...
DUE = _NOW_MS + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now),
                       'LIMIT', 0, ARGV[1])
local out = {}
local at = now + tonumber(ARGV[2])
for _, customer in ipairs(due) do
  redis.call('ZADD', KEYS[1], string.format('%d', at), customer)
  out[#out + 1] = customer
  out[#out + 1] = at
end
return out
"""

# KEYS: events, lease, failures. ARGV: token, ttl ms.
# {1, head or '', failures} held; {0, ms left} busy.
LEASE = """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[2])} end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('LINDEX', KEYS[1], 0) or '',
        tonumber(redis.call('GET', KEYS[3]) or '0')}
"""

# KEYS: events, lease, failures. ARGV: token, ttl ms, event, sent (1/0).
# {1, head or '', failures} still held; {0} lost.
POP = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {0} end
if redis.call('LINDEX', KEYS[1], 0) == ARGV[3] then redis.call('LPOP', KEYS[1]) end
if ARGV[4] == '1' then redis.call('DEL', KEYS[3]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {1, redis.call('LINDEX', KEYS[1], 0) or '',
        tonumber(redis.call('GET', KEYS[3]) or '0')}
"""

# KEYS: events, lease, failures. ARGV: token.
# 1 empty, lease given back; 0 an event waits (lease kept); -1 lost.
DONE = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[1]) > 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
return 1
"""

# KEYS: events, lease, failures. ARGV: token, failed (1/0), keep seconds.
RETRY = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
if ARGV[2] == '1' then
  redis.call('INCR', KEYS[3])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return 1
"""

# KEYS: index. ARGV: customer, mark, ms from now ('' drops the entry).
REINDEX = _NOW_MS + """
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[3])), ARGV[1])
return 1
"""

# How long failure counts are kept: as long as an event may wait.
_FAILURES_KEEP_SECONDS = 4 * 86400


class RedisEventQueueMixin:
    """`EventQueueStore` for `RedisContextStore`, on its client and keys."""

    client: RedisClient
    keys: KeyBuilder

    def _init_events(self) -> None:
        register = self.client.register_script
        self._events_push, self._events_index = register(PUSH), register(INDEX)
        self._events_due, self._events_lease = register(DUE), register(LEASE)
        self._events_pop, self._events_done = register(POP), register(DONE)
        self._events_retry, self._events_reindex = register(RETRY), register(REINDEX)

    def _events_keys(self, customer_id: str) -> list[str]:
        k = self.keys
        return [k.customer(customer_id, "events"), k.customer(customer_id, "events-lease"),
                k.customer(customer_id, "events-failures")]

    def _events_index_key(self) -> str:
        # Every customer's entry in one key: no hash tag.
        return f"{self.keys.prefix}:events"

    def _index_now(self, customer_id: str) -> ScriptCall:
        return self._events_index, [self._events_index_key()], [customer_id]

    async def events_push(self, customer_id: str, event: str, *, max_queued: int,
                          keep_seconds: int) -> int:
        push: ScriptCall = (self._events_push, [self.keys.customer(customer_id, "events")],
                            [event, max_queued, keep_seconds])
        if not is_cluster(self.client):
            # One script on one Redis: appended and indexed at once.
            dropped, _ = await run_scripts(self.client, push, self._index_now(customer_id))
            return int(dropped)
        # Two slots, side by side: the index may land first, so it is written
        # once more after the append (see the module's docstring).
        _, dropped = await run_scripts(self.client, self._index_now(customer_id), push)
        script, keys, args = self._index_now(customer_id)
        await run_redis(script(keys=keys, args=args))
        return int(dropped)

    async def events_due(self, limit: int, *, hold_seconds: float) -> list[tuple[str, int]]:
        flat = await run_redis(self._events_due(keys=[self._events_index_key()],
                                                args=[limit, _ms(hold_seconds)]))
        return [(str(flat[i]), int(flat[i + 1])) for i in range(0, len(flat), 2)]

    async def events_lease(self, customer_id: str, *, token: str,
                           ttl_seconds: float) -> EventLease:
        reply = await run_redis(self._events_lease(keys=self._events_keys(customer_id),
                                                   args=[token, _ms(ttl_seconds)]))
        if reply[0] == 0:
            return EventLease("busy", retry_in=max(int(reply[1]), 0) / 1000)
        return _held(reply)

    async def events_pop(self, customer_id: str, event: str, *, token: str,
                         ttl_seconds: float, sent: bool) -> EventLease:
        args: list[Any] = [token, _ms(ttl_seconds), event, "1" if sent else "0"]
        reply = await run_redis(self._events_pop(keys=self._events_keys(customer_id),
                                                 args=args))
        return EventLease("lost") if reply[0] == 0 else _held(reply)

    async def events_done(self, customer_id: str, mark: int, *, token: str) -> bool:
        done = int(await run_redis(self._events_done(keys=self._events_keys(customer_id),
                                                     args=[token])))
        if done == 0:
            return False
        if done == 1:
            index = [self._events_index_key()]
            await run_redis(self._events_reindex(keys=index, args=[customer_id, mark, ""]))
            # An event appended between the look and the drop was indexed
            # with `NX` while the entry still stood: index it again.
            if await run_redis(self.client.llen(self.keys.customer(customer_id, "events"))):
                script, keys, args = self._index_now(customer_id)
                await run_redis(script(keys=keys, args=args))
        return True

    async def events_retry(self, customer_id: str, mark: int, *, token: str,
                           after_seconds: float, failed: bool) -> None:
        retry: ScriptCall = (self._events_retry, self._events_keys(customer_id),
                             [token, "1" if failed else "0", _FAILURES_KEEP_SECONDS])
        reindex: ScriptCall = (self._events_reindex, [self._events_index_key()],
                               [customer_id, mark, _ms(after_seconds)])
        await run_scripts(self.client, retry, reindex)


def _held(reply: list[Any]) -> EventLease:
    head = str(reply[1]) if reply[1] else None
    return EventLease("held", head=head, failures=int(reply[2]))


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))
