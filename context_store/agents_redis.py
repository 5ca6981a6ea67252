"""`AgentStore` on Redis, sharing the context store's `redis.asyncio` client.

Keys (prefix `segue` by default):
- `segue:{agents}:accounts`   hash username -> account JSON
- `segue:{agents}:online`     sorted set "username worker" -> expiry (unix s)
- `segue:agent-session:<id>`  session JSON, expiring with the session
- `segue:agent-login:<key>`   login-attempt counter with a TTL (the window)
- `segue:agent-attempts:<key>` hash n (attempts), until (unix ms of the next
                              allowed one), with a TTL (its delay + the window)
- `segue:{handoff}:queue`     sorted set customer -> queued since
- `segue:{handoff}:claims`    hash customer -> agent username
- `segue:{w:<session>}:sockets` sorted set worker -> expiry, with a TTL
- `segue:canned`              hash shortcut -> canned reply text
- the report's records and the assignment lease: `context_store.agents_redis_records`
- the public API's keys: `context_store.apikeys_redis`

Queue and claims share a hash tag so that moving a conversation between them
is one MULTI, also on Redis Cluster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from bot.core.backoff import Backoff
from bot.handoff.ports import (
    AgentAccount,
    AgentSession,
    CannedReply,
    HandoffRecord,
    QueueEntry,
)
from bot.outreach.ports import ApiKey
from context_store.agents_redis_records import RedisRecords
from context_store.apikeys_redis import RedisApiKeys
from context_store.redis_client import RedisClient, run_redis

# KEYS: counter. ARGV: window seconds. INCR and set the TTL only when new.
_ADD_FAILURE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# KEYS: counter. DECR only a live count: an expired one must not come back
# as a key with no TTL.
_FORGIVE_FAILURE = """
local n = tonumber(redis.call('GET', KEYS[1]))
if n and n > 0 then redis.call('DECR', KEYS[1]) end
return 0
"""

# KEYS: attempts hash. ARGV: now ms, free, first delay ms, max delay ms, window ms.
# Returns the ms to wait, 0 to go ahead. Mirrors `Backoff.delay`.
_ADD_ATTEMPT = """
local now = tonumber(ARGV[1])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local wait_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local free = tonumber(ARGV[2])
local delay = 0
if n >= free then
  delay = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) * 2 ^ math.min(n - free, 40))
end
delay = math.floor(delay)
redis.call('HSET', KEYS[1], 'until', string.format('%d', now + delay))
redis.call('PEXPIRE', KEYS[1], delay + tonumber(ARGV[5]))
if now < wait_until then return delay end
return 0
"""

# KEYS: canned hash. ARGV: shortcut, text, limit. The count and the write in
# one step, so admins saving at once cannot pass the limit together.
_PUT_CANNED = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1
   or redis.call('HLEN', KEYS[1]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0
"""


class RedisAgentStore:
    """Accounts, sessions, the handoff index and presence in Redis."""

    def __init__(self, client: RedisClient, *, prefix: str = "segue") -> None:
        self.client = client
        self.prefix = prefix
        self._add_failure = client.register_script(_ADD_FAILURE)
        self._forgive_failure = client.register_script(_FORGIVE_FAILURE)
        self._add_attempt = client.register_script(_ADD_ATTEMPT)
        self._put_canned = client.register_script(_PUT_CANNED)
        self._records = RedisRecords(client, self._key)
        self._api_keys = RedisApiKeys(client, self._key)

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    @property
    def _accounts(self) -> str:
        return self._key("{agents}", "accounts")

    @property
    def _online(self) -> str:
        return self._key("{agents}", "online")

    @property
    def _queue(self) -> str:
        return self._key("{handoff}", "queue")

    @property
    def _claims(self) -> str:
        return self._key("{handoff}", "claims")

    @property
    def _canned(self) -> str:
        return self._key("canned")

    def _web(self, session: str) -> str:
        return self._key(f"{{w:{session}}}", "sockets")

    async def put_agent(self, account: AgentAccount) -> None:
        await run_redis(self.client.hset(self._accounts, account.username, account.to_json()))

    async def get_agent(self, username: str) -> AgentAccount | None:
        raw = await run_redis(self.client.hget(self._accounts, username))
        return None if raw is None else AgentAccount.from_json(raw)

    async def agents(self) -> list[AgentAccount]:
        raw = await run_redis(self.client.hgetall(self._accounts))
        return [AgentAccount.from_json(raw[name]) for name in sorted(raw)]

    async def put_session(self, session_id: str, session: AgentSession) -> None:
        ttl = max(1, math.ceil(session.expires_at - time.time()))
        key = self._key("agent-session", session_id)
        await run_redis(self.client.set(key, session.to_json(), ex=ttl))

    async def get_session(self, session_id: str) -> AgentSession | None:
        raw = await run_redis(self.client.get(self._key("agent-session", session_id)))
        return None if raw is None else AgentSession.from_json(raw)

    async def drop_session(self, session_id: str) -> None:
        await run_redis(self.client.delete(self._key("agent-session", session_id)))

    async def failures(self, key: str) -> int:
        raw = await run_redis(self.client.get(self._key("agent-login", key)))
        return int(raw or 0)

    async def add_failure(self, key: str, window_seconds: int) -> int:
        name = self._key("agent-login", key)
        return int(await run_redis(self._add_failure(keys=[name], args=[window_seconds])))

    async def forgive_failure(self, key: str) -> None:
        name = self._key("agent-login", key)
        await run_redis(self._forgive_failure(keys=[name], args=[]))

    async def clear_failures(self, key: str) -> None:
        await run_redis(self.client.delete(self._key("agent-login", key)))

    async def add_attempt(self, key: str, rule: Backoff, now: float) -> float:
        name = self._key("agent-attempts", key)
        args = [int(now * 1000), rule.free, int(rule.first_delay * 1000),
                int(rule.max_delay * 1000), rule.window_seconds * 1000]
        waited = await run_redis(self._add_attempt(keys=[name], args=args))
        return int(waited) / 1000

    async def clear_attempts(self, key: str) -> None:
        await run_redis(self.client.delete(self._key("agent-attempts", key)))

    async def index_queued(self, customer: str, since: float) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hdel(self._claims, customer)
            pipe.zadd(self._queue, {customer: since})
            await run_redis(pipe.execute())

    async def index_claimed(self, customer: str, agent: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._queue, customer)
            pipe.hset(self._claims, customer, agent)
            await run_redis(pipe.execute())

    async def index_closed(self, customer: str) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._queue, customer)
            pipe.hdel(self._claims, customer)
            await run_redis(pipe.execute())

    async def index_closed_all(self, customers: Sequence[str]) -> None:
        if not customers:
            return
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zrem(self._queue, *customers)
            pipe.hdel(self._claims, *customers)
            await run_redis(pipe.execute())

    async def queued(self, limit: int | None = None) -> list[QueueEntry]:
        if limit is not None and limit <= 0:
            return []  # ZRANGE 0 -1 would mean every entry
        last = -1 if limit is None else limit - 1
        entries = await run_redis(self.client.zrange(self._queue, 0, last, withscores=True))
        return [QueueEntry(customer, float(since)) for customer, since in entries]

    async def queue_length(self) -> int:
        return int(await run_redis(self.client.zcard(self._queue)))

    async def claimed(self) -> dict[str, str]:
        return dict(await run_redis(self.client.hgetall(self._claims)))

    async def touch_agent(self, username: str, worker: str, ttl_seconds: float) -> None:
        now = time.time()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zadd(self._online, {f"{username} {worker}": now + ttl_seconds})
            # Consoles of crashed workers: their entries simply run out.
            pipe.zremrangebyscore(self._online, "-inf", now)
            await run_redis(pipe.execute())

    async def drop_agent(self, username: str, worker: str) -> None:
        await run_redis(self.client.zrem(self._online, f"{username} {worker}"))

    async def agents_online(self) -> set[str]:
        members = await run_redis(self.client.zrangebyscore(self._online, time.time(), "+inf"))
        return {member.rpartition(" ")[0] for member in members}

    async def touch_web(self, sessions: Sequence[str], worker: str, ttl_seconds: float) -> None:
        if not sessions:
            return
        expires = time.time() + ttl_seconds
        async with self.client.pipeline(transaction=False) as pipe:
            for session in sessions:
                pipe.zadd(self._web(session), {worker: expires})
                pipe.expire(self._web(session), math.ceil(ttl_seconds))
            await run_redis(pipe.execute())

    async def drop_web(self, session: str, worker: str) -> None:
        await run_redis(self.client.zrem(self._web(session), worker))

    async def web_workers(self, session: str) -> set[str]:
        key = self._web(session)
        workers = await run_redis(self.client.zrangebyscore(key, time.time(), "+inf"))
        return set(workers)

    async def put_canned(self, reply: CannedReply, limit: int) -> bool:
        stored = await run_redis(self._put_canned(
            keys=[self._canned], args=[reply.shortcut, reply.text, limit]))
        return bool(int(stored))

    async def get_canned(self, shortcut: str) -> CannedReply | None:
        text = await run_redis(self.client.hget(self._canned, shortcut))
        return None if text is None else CannedReply(shortcut, text)

    async def canned_replies(self) -> list[CannedReply]:
        raw = await run_redis(self.client.hgetall(self._canned))
        return [CannedReply(name, raw[name]) for name in sorted(raw)]

    async def drop_canned(self, shortcut: str) -> bool:
        return bool(await run_redis(self.client.hdel(self._canned, shortcut)))

    # The report's records and the assignment lease (`agents_redis_records`).

    async def put_record(self, record: HandoffRecord, keep_seconds: float) -> None:
        await self._records.put_record(record, keep_seconds)

    async def rate_record(self, record_id: str, score: int) -> bool:
        return await self._records.rate_record(record_id, score)

    async def records_between(self, start: float, end: float,
                              limit: int) -> list[HandoffRecord]:
        return await self._records.records_between(start, end, limit)

    async def take_assignment_lease(self, holder: str, ttl_seconds: float) -> bool:
        return await self._records.take_assignment_lease(holder, ttl_seconds)

    async def drop_assignment_lease(self, holder: str) -> None:
        await self._records.drop_assignment_lease(holder)

    async def last_assigned(self) -> str | None:
        return await self._records.last_assigned()

    async def set_last_assigned(self, username: str) -> None:
        await self._records.set_last_assigned(username)

    async def put_api_key(self, key: ApiKey) -> bool:
        return await self._api_keys.put_api_key(key)

    async def api_key_by_digest(self, digest: str) -> ApiKey | None:
        return await self._api_keys.api_key_by_digest(digest)

    async def api_keys(self) -> list[ApiKey]:
        return await self._api_keys.api_keys()

    async def drop_api_key(self, name: str) -> bool:
        return await self._api_keys.drop_api_key(name)
