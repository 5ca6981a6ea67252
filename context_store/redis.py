"""`ContextStore` on Redis (redis-py asyncio), one round trip per turn step.

The turn's Lua scripts are in `context_store.redis_scripts`; the inbox and
the parked items in `context_store.redis_inbox`; the outbox in
`context_store.redis_outbox`.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.backoff import poll_until
from bot.core.errors import CustomerGone, LockTimeout, StoreUnavailable
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import LoadResult, Saved, StoreLimits, merge_histories
from context_store import redis_scripts as lua
from context_store.agents_redis import RedisAgentStore
from context_store.bus_redis import RedisBus
from context_store.keys import KeyBuilder, identity_member, parse_identity_member
from context_store.redis_client import connect, run_redis
from context_store.redis_erase import RedisEraseMixin
from context_store.redis_inbox import PARKED_KEEP_SECONDS, PARKED_MAX, RedisInboxMixin
from context_store.redis_outbox import RedisOutboxMixin

__all__ = ["PARKED_KEEP_SECONDS", "PARKED_MAX", "RedisContextStore"]


class RedisContextStore(RedisInboxMixin, RedisOutboxMixin, RedisEraseMixin):
    """Conversation state as one JSON string, history as a capped list."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        limits: StoreLimits | None = None,
        keys: KeyBuilder | None = None,
        inbox_stale_ms: int = 30_000,
    ) -> None:
        self.client = client
        self.limits = limits or StoreLimits()
        self.keys = keys or KeyBuilder()
        self._init_inbox(inbox_stale_ms)
        self._init_outbox()
        self._resolve = client.register_script(lua.RESOLVE)
        self._lock_and_load = client.register_script(lua.LOCK_AND_LOAD)
        self._save = client.register_script(lua.SAVE_AND_UNLOCK)
        self._unlock = client.register_script(lua.UNLOCK)
        self._extend_lock = client.register_script(lua.EXTEND_LOCK)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisContextStore:
        return cls(connect(url), **kwargs)

    async def ping(self) -> None:
        try:
            await self.client.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc

    async def close(self) -> None:
        await self.client.aclose()

    def agent_store(self) -> RedisAgentStore:
        """Agents' accounts, queue and presence, on this store's connections."""
        return RedisAgentStore(self.client, prefix=self.keys.prefix)

    def bus(self) -> RedisBus:
        """Events between the workers that share this Redis."""
        return RedisBus(self.client, prefix=self.keys.prefix)

    async def resolve_customer(
        self, identity: ChannelIdentity, new_customer_id: str, *, provisional_ttl: int = 0
    ) -> str:
        args = [new_customer_id, self.limits.retention_seconds, provisional_ttl]
        return str(await self._call(self._resolve, [self.keys.identity(identity)], args))

    async def lock_and_load(
        self,
        customer_id: str,
        *,
        token: str,
        ttl_seconds: float,
        message_key: str | None,
        identity: ChannelIdentity | None = None,
        index_outbox: bool = False,
    ) -> LoadResult:
        k = self.keys
        keys = [
            k.customer(customer_id, "lock"),
            k.seen(customer_id, message_key or ""),
            k.customer(customer_id, "state"),
            k.customer(customer_id, "moved"),
            k.customer(customer_id, "identities"),
        ]
        args = [
            token,
            max(1, int(ttl_seconds * 1000)),
            "1" if message_key else "0",
            identity_member(identity) if identity else "",
        ]
        mark = 0
        if index_outbox:
            # The index first, in the same round trip (see redis_outbox).
            mark, reply = await self._pipelined(
                self._index_call(customer_id, max(1, int(ttl_seconds * 1000))),
                (self._lock_and_load, keys, args))
        else:
            reply = await self._call(self._lock_and_load, keys, args)
        if reply[0] == 3:
            return LoadResult(locked=False, moved=True)
        if reply[0] == 2:
            return LoadResult(locked=False, duplicate=True)
        if reply[0] == 0:
            return LoadResult(locked=False)
        return LoadResult(locked=True, state=reply[1] if len(reply) > 1 else None, mark=int(mark))

    async def save_and_unlock(
        self,
        customer_id: str,
        *,
        token: str,
        state: str | None,
        entries: Sequence[HistoryEntry],
        message_key: str | None,
        identity: ChannelIdentity | None,
        address: Address | None = None,
        outbox: Sequence[str] = (),
        claim_seconds: float = 30.0,
    ) -> Saved:
        k = self.keys
        keys = [
            k.customer(customer_id, "lock"),
            k.seen(customer_id, message_key or ""),
            k.customer(customer_id, "state"),
            k.customer(customer_id, "history"),
            k.customer(customer_id, "identities"),
            k.customer(customer_id, "addresses"),
            k.customer(customer_id, "outbox"),
            k.customer(customer_id, "outbox-seq"),
            k.customer(customer_id, "outbox-claim"),
        ]
        args: list[Any] = [
            token,
            state or "",
            "1" if message_key else "0",
            self.limits.dedup_ttl_seconds,
            self.limits.history_max,
            self.limits.retention_seconds,
            identity_member(identity) if identity else "",
            address.channel if address else "",
            orjson.dumps(address.to_json()) if address else "",
            len(entries),
            max(1, int(claim_seconds * 1000)),
        ]
        args.extend(orjson.dumps(e.to_json()) for e in entries)
        args.extend(outbox)
        reply = await self._call(self._save, keys, args)
        if reply[0] == 0:
            return Saved(False)
        return Saved(True, first_seq=int(reply[1]), claimed=bool(reply[2]),
                     earlier=int(reply[3]))

    async def extend_lock(self, customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        key = self.keys.customer(customer_id, "lock")
        args = [token, max(1, int(ttl_seconds * 1000))]
        return bool(await self._call(self._extend_lock, [key], args))

    async def unlock(self, customer_id: str, *, token: str) -> None:
        await self._call(self._unlock, [self.keys.customer(customer_id, "lock")], [token])

    async def addresses(self, customer_id: str) -> dict[str, Address]:
        raw = await self._run(self.client.hgetall(self.keys.customer(customer_id, "addresses")))
        return {channel: Address.from_json(orjson.loads(v)) for channel, v in raw.items()}

    async def load_state(self, customer_id: str) -> str | None:
        value = await self._run(self.client.get(self.keys.customer(customer_id, "state")))
        return None if value is None else str(value)

    async def load_states(self, customer_ids: Sequence[str]) -> list[str | None]:
        if not customer_ids:
            return []
        # Each state key carries its customer's hash tag, so on Redis Cluster
        # an MGET across customers is cross-slot: a pipeline of GETs (not a
        # transaction) is one round trip on a single Redis, one per node on a
        # cluster.
        async with self.client.pipeline(transaction=False) as pipe:
            for customer_id in customer_ids:
                pipe.get(self.keys.customer(customer_id, "state"))
            values = await self._run(pipe.execute())
        return [None if value is None else str(value) for value in values]

    async def history(self, customer_id: str, limit: int) -> list[HistoryEntry]:
        key = self.keys.customer(customer_id, "history")
        raw = await self._run(self.client.lrange(key, -limit, -1))
        return [HistoryEntry.from_json(orjson.loads(item)) for item in raw]

    async def identities(self, customer_id: str) -> list[ChannelIdentity]:
        key = self.keys.customer(customer_id, "identities")
        members = await self._run(self.client.smembers(key))
        return sorted(parse_identity_member(m) for m in members)

    async def append(self, customer_id: str, entries: Sequence[HistoryEntry]) -> None:
        if not entries:
            return
        key = self.keys.customer(customer_id, "history")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.rpush(key, *(orjson.dumps(e.to_json()) for e in entries))
            pipe.ltrim(key, -self.limits.history_max, -1)
            if self.limits.retention_seconds:
                pipe.expire(key, self.limits.retention_seconds)
            else:
                pipe.persist(key)
            await self._run(pipe.execute())

    async def merge(
        self,
        source: str,
        target: str,
        *,
        lock_ttl_seconds: float,
        also: Sequence[ChannelIdentity] = (),
    ) -> None:
        # Locks in a fixed order, so two merges of the same pair cannot deadlock.
        tokens = {source: secrets.token_hex(8), target: secrets.token_hex(8)}
        held: list[str] = []
        try:
            for customer_id in sorted(tokens):
                await self._wait_lock(customer_id, tokens[customer_id], lock_ttl_seconds)
                held.append(customer_id)
            await self._merge_locked(source, target, also)
        finally:
            for customer_id in held:
                await self.unlock(customer_id, token=tokens[customer_id])

    async def _merge_locked(
        self, source: str, target: str, also: Sequence[ChannelIdentity]
    ) -> None:
        k = self.keys
        if await self._run(self.client.exists(k.customer(source, "moved"),
                                              k.customer(target, "moved"))):
            raise CustomerGone(f"customer {source} or {target} was erased or merged")
        cap = self.limits.history_max
        merged = merge_histories(await self.history(source, cap), await self.history(target, cap))
        moved_identities = sorted(set(await self.identities(source)) | set(also))
        earlier = await self.merged_ids(source)
        source_addresses = await self.addresses(source)
        target_addresses = await self.addresses(target)
        history, members = k.customer(target, "history"), k.customer(target, "identities")
        addresses = k.customer(target, "addresses")
        # Target first: a crash half-way leaves the source intact and resolvable.
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(history)
            self._note_merge(pipe, source, target, earlier)
            if merged:
                pipe.rpush(history, *(orjson.dumps(e.to_json())
                                      for e in merged[-cap:]))
            if moved_identities:
                pipe.sadd(members, *(identity_member(i) for i in moved_identities))
            for channel, address in source_addresses.items():
                if channel not in target_addresses:
                    pipe.hset(addresses, channel, orjson.dumps(address.to_json()).decode())
            for key in (history, members, addresses):
                if self.limits.retention_seconds:
                    pipe.expire(key, self.limits.retention_seconds)
                else:
                    pipe.persist(key)
            await self._run(pipe.execute())
        await self._copy_dedup_marks(source, target)
        for identity in moved_identities:
            keep = self.limits.retention_seconds or None
            await self._run(self.client.set(k.identity(identity), target, ex=keep))
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.set(k.customer(source, "moved"), target, ex=self.limits.moved_marker_seconds)
            for part in ("state", "history", "identities", "addresses"):
                pipe.delete(k.customer(source, part))
            await self._run(pipe.execute())

    async def _copy_dedup_marks(self, source: str, target: str) -> None:
        """A redelivery of a message the source processed is still a duplicate
        once its identity resolves to the target."""
        prefix = self.keys.seen(source, "")
        async for key in self.client.scan_iter(match=prefix + "*", count=500):
            ttl = await self._run(self.client.pttl(key))
            if ttl > 0:
                target_key = self.keys.seen(target, key[len(prefix):])
                await self._run(self.client.set(target_key, "1", px=ttl))

    async def _wait_lock(self, customer_id: str, token: str, ttl_seconds: float) -> None:
        key = self.keys.customer(customer_id, "lock")
        ttl_ms = max(1, int(ttl_seconds * 1000))

        async def attempt() -> bool | None:
            # Another worker's turn holds it for milliseconds.
            return await self._run(self.client.set(key, token, nx=True, px=ttl_ms)) or None

        if not await poll_until(attempt, within_seconds=self.limits.merge_lock_wait_seconds):
            raise LockTimeout(f"customer {customer_id} stayed locked")

    async def unlink(self, customer_id: str, identity: ChannelIdentity) -> None:
        key = self.keys.identity(identity)
        if await self._run(self.client.get(key)) == customer_id:
            await self._run(self.client.delete(key))
        members = self.keys.customer(customer_id, "identities")
        await self._run(self.client.srem(members, identity_member(identity)))

    async def put_token(self, key: str, value: str, ttl_seconds: int) -> bool:
        name = self.keys.token(key)
        return bool(await self._run(self.client.set(name, value, nx=True, ex=ttl_seconds)))

    async def peek_token(self, key: str) -> str | None:
        value = await self._run(self.client.get(self.keys.token(key)))
        return None if value is None else str(value)

    async def take_token(self, key: str) -> str | None:
        value = await self._run(self.client.getdel(self.keys.token(key)))
        return None if value is None else str(value)

    async def incr(self, key: str, ttl_seconds: int) -> int:
        name = self.keys.counter(key)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.incr(name)
            pipe.expire(name, ttl_seconds, nx=True)
            value, _ = await self._run(pipe.execute())
        return int(value)

    async def _call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        return await self._run(script(keys=keys, args=args))

    @staticmethod
    async def _run(awaitable: Any) -> Any:
        return await run_redis(awaitable)
