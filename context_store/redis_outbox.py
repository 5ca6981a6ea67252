"""The outbox of `RedisContextStore`.

A customer's undelivered replies are a hash `{c:<id>}:outbox` (sequence
number -> "<due ms> <payload>"), numbered by `{c:<id>}:outbox-seq`; whoever
delivers them holds `{c:<id>}:outbox-claim` (a token with a TTL). All three
share the customer's hash tag, so the save script writes them with the turn
and each script below stays in one Redis Cluster slot.

The index `outbox` (a sorted set: customer -> when to look, in ms) names the
customers who may have replies nobody delivers. It has no hash tag, so it is
written in its own scripts: pipelined with `lock_and_load`, before the lock
(a save needs the lock, so a customer is indexed before any reply of theirs
is saved, and a worker that dies after the save leaves them indexed), and
dropped when their outbox is found empty and unlocked. Its scores only grow,
so a score is also the entry's mark: an entry is dropped or moved only by
someone who read it as it still is.
"""

from __future__ import annotations

from typing import Any

from bot.core.ports import OutboxClaim, OutboxItem
from context_store import redis_scripts as lua
from context_store.keys import KeyBuilder
from context_store.redis_client import RedisClient, ScriptCall, run_redis, run_scripts

_NOW_MS = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: index. ARGV: customer, ms from now. Returns the entry's new mark.
INDEX = _NOW_MS + """
local at = now + tonumber(ARGV[2])
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if current and tonumber(current) >= at then at = tonumber(current) + 1 end
redis.call('ZADD', KEYS[1], string.format('%d', at), ARGV[1])
return at
"""

# KEYS: index. ARGV: limit. Customer, mark, customer, mark, ...
DUE = _NOW_MS + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now),
                  'WITHSCORES', 'LIMIT', 0, ARGV[1])
"""

# KEYS: index. ARGV: customer, mark, ms from now ('' drops the entry).
REINDEX = _NOW_MS + """
local current = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not current or tonumber(current) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then return redis.call('ZREM', KEYS[1], ARGV[1]) end
local at = now + tonumber(ARGV[3])
if at <= tonumber(current) then at = tonumber(current) + 1 end
redis.call('ZADD', KEYS[1], string.format('%d', at), ARGV[1])
return 1
"""

# KEYS: outbox, claim, lock. ARGV: token, ttl ms, due only (1/0).
# {1, {seq, item, ...}} claimed; {0, ms to wait} busy; {2} idle.
CLAIM = _NOW_MS + """
local owner = redis.call('GET', KEYS[2])
if owner and owner ~= ARGV[1] then return {0, redis.call('PTTL', KEYS[2])} end
local raw = redis.call('HGETALL', KEYS[1])
if #raw == 0 then
  if owner then redis.call('DEL', KEYS[2]) end
  local lock = redis.call('PTTL', KEYS[3])
  if lock > 0 then return {0, lock} end
  return {2}
end
if ARGV[3] == '1' then
  local head, due = nil, 0
  for i = 1, #raw, 2 do
    local seq = tonumber(raw[i])
    if not head or seq < head then
      head = seq
      due = tonumber(string.match(raw[i + 1], '^%d+'))
    end
  end
  if due > now then return {0, due - now} end
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
return {1, raw}
"""

# KEYS: outbox, claim, lock. ARGV: seq, claim token to give back ('' keeps it).
# 1: given back, and nothing is left to deliver nor a turn in progress.
DELIVERED = """
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == '' then return 0 end
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
if redis.call('HLEN', KEYS[1]) > 0 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
return 1
"""


class RedisOutboxMixin:
    """`OutboxStore` for `RedisContextStore`, on its client and keys."""

    client: RedisClient
    keys: KeyBuilder

    def _init_outbox(self) -> None:
        register = self.client.register_script
        self._outbox_index, self._outbox_due = register(INDEX), register(DUE)
        self._outbox_reindex, self._outbox_claim = register(REINDEX), register(CLAIM)
        self._outbox_delivered = register(DELIVERED)
        self._outbox_extend = register(lua.EXTEND_LOCK)

    def _outbox_keys(self, customer_id: str) -> list[str]:
        k = self.keys
        return [k.customer(customer_id, "outbox"), k.customer(customer_id, "outbox-claim"),
                k.customer(customer_id, "lock")]

    def _index_call(self, customer_id: str, after_ms: int) -> ScriptCall:
        return self._outbox_index, [self.keys.outbox_index()], [customer_id, after_ms]

    async def outbox_due(self, limit: int) -> list[tuple[str, int]]:
        flat = await run_redis(self._outbox_due(keys=[self.keys.outbox_index()], args=[limit]))
        return [(str(flat[i]), int(float(flat[i + 1]))) for i in range(0, len(flat), 2)]

    async def outbox_claim(
        self, customer_id: str, *, token: str, ttl_seconds: float, due_only: bool = False
    ) -> OutboxClaim:
        args: list[Any] = [token, _ms(ttl_seconds), "1" if due_only else "0"]
        reply = await run_redis(self._outbox_claim(keys=self._outbox_keys(customer_id),
                                                   args=args))
        if reply[0] == 2:
            return OutboxClaim("idle")
        if reply[0] == 0:
            return OutboxClaim("busy", retry_in=max(int(reply[1]), 0) / 1000)
        raw = reply[1]
        items = []
        for i in range(0, len(raw), 2):
            due, _, payload = str(raw[i + 1]).partition(" ")
            items.append(OutboxItem(int(raw[i]), payload, int(due) / 1000))
        return OutboxClaim("claimed", tuple(sorted(items, key=lambda item: item.seq)))

    async def outbox_extend(self, customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        key = self.keys.customer(customer_id, "outbox-claim")
        return bool(await run_redis(self._outbox_extend(keys=[key],
                                                        args=[token, _ms(ttl_seconds)])))

    async def outbox_delivered(
        self, customer_id: str, seq: int, *, release: str | None = None, mark: int | None = None
    ) -> None:
        delivered: ScriptCall = (self._outbox_delivered, self._outbox_keys(customer_id),
                            [seq, release or ""])
        if release is None or mark is None:
            await run_redis(delivered[0](keys=delivered[1], args=delivered[2]))
            return
        # One round trip: the entry is dropped only if it still carries the
        # mark, and every save of a reply follows a lock that changes it, so
        # an outbox that is not empty here was refilled under a newer mark.
        reindex: ScriptCall = (self._outbox_reindex, [self.keys.outbox_index()],
                               [customer_id, mark, ""])
        idle, dropped = await run_scripts(self.client, delivered, reindex)
        if dropped and not idle:
            # Replies arrived some other way (or a merge holds the lock):
            # keep the customer where a sweeper finds them.
            script, keys, args = self._index_call(customer_id, 0)
            await run_redis(script(keys=keys, args=args))

    async def outbox_reindex(
        self, customer_id: str, mark: int, *, after_seconds: float | None
    ) -> None:
        after = "" if after_seconds is None else _ms(after_seconds)
        await run_redis(self._outbox_reindex(keys=[self.keys.outbox_index()],
                                             args=[customer_id, mark, after]))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))
