"""`ContextStore` on Redis (redis-py asyncio), one round trip per turn step.

The turn's Lua scripts are in `context_store.redis_scripts`; the inbox and
the parked items in `context_store.redis_inbox`; the outbox in
`context_store.redis_outbox`; merge in `context_store.redis_merge` and erase
in `context_store.redis_erase`, each as steps that touch one hash slot at a
time, as a Redis Cluster requires (the client: `context_store.redis_client`);
acknowledging only what replicas hold in `context_store.redis_replicas`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio.cluster import RedisCluster

from bot.core.backoff import poll_until
from bot.core.errors import LockTimeout, StoreUnavailable
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import LoadResult, Saved, StoreLimits
from context_store import redis_scripts as lua
from context_store.agents_redis import RedisAgentStore
from context_store.bus_redis import RedisBus
from context_store.events_redis import RedisEventQueueMixin
from context_store.keys import KeyBuilder, identity_member, parse_identity_member
from context_store.redis_client import (
    RedisClient,
    close_client,
    connect,
    recheck_master,
    run_redis,
    run_scripts,
)
from context_store.redis_erase import RedisEraseMixin
from context_store.redis_inbox import PARKED_KEEP_SECONDS, PARKED_MAX, RedisInboxMixin
from context_store.redis_merge import RedisMergeMixin
from context_store.redis_outbox import RedisOutboxMixin
from context_store.redis_replicas import Replicated, Replication, replication_of

__all__ = ["PARKED_KEEP_SECONDS", "PARKED_MAX", "RedisContextStore"]


class RedisContextStore(RedisInboxMixin, RedisOutboxMixin, RedisEventQueueMixin, RedisMergeMixin,
                        RedisEraseMixin):
    """Conversation state as one JSON string, history as a capped list; on one
    Redis (directly or through Sentinel) or a Redis Cluster."""

    def __init__(
        self,
        client: RedisClient,
        *,
        limits: StoreLimits | None = None,
        keys: KeyBuilder | None = None,
        inbox_stale_ms: int = 30_000,
        replication: Replication | None = None,
    ) -> None:
        self.client = client
        self.replicated = Replicated(client, replication or Replication())
        self.limits = limits or StoreLimits()
        self.keys = keys or KeyBuilder()
        self._init_inbox(inbox_stale_ms)
        self._init_outbox()
        self._init_events()
        self._init_merge()
        self._init_erase()
        self._resolve = client.register_script(lua.RESOLVE)
        self._lock_and_load = client.register_script(lua.LOCK_AND_LOAD)
        self._save = client.register_script(lua.SAVE_AND_UNLOCK)
        self._unlock = client.register_script(lua.UNLOCK)
        self._extend_lock = client.register_script(lua.EXTEND_LOCK)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisContextStore:
        """A store on the Redis `url` names; `?replicas=N` on one Redis or
        Sentinel: see `context_store.redis_replicas`."""
        url, replication = replication_of(url)
        client = connect(url)
        if replication.replicas and isinstance(client, RedisCluster):
            raise ValueError("replicas=N is for one Redis or a Sentinel set, not a cluster")
        return cls(client, replication=replication, **kwargs)

    async def ping(self) -> None:
        if isinstance(self.client, RedisCluster):
            # Ready only if every slot's node answers: each holds a share
            # of the customers.
            await run_redis(self.client.ping(target_nodes=RedisCluster.PRIMARIES))
        else:
            await run_redis(self.client.ping())

    async def close(self) -> None:
        await close_client(self.client)

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

    async def find_customer(self, identity: ChannelIdentity) -> str | None:
        found = await run_redis(self.client.get(self.keys.identity(identity)))
        return None if found is None else (found.decode() if isinstance(found, bytes)
                                           else str(found))

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
            mark, reply = await run_scripts(
                self.client, self._index_call(customer_id, max(1, int(ttl_seconds * 1000))),
                (self._lock_and_load, keys, args))
        else:
            reply = await self._call(self._lock_and_load, keys, args)
        if reply[0] == 3:
            if identity is not None and len(reply) > 1 and reply[1]:
                # Merged into another: this identity may still name the old
                # id if the merge stopped half-way (see redis_merge).
                await self.forward(identity, customer_id, str(reply[1]))
            return LoadResult(locked=False, moved=True)
        if reply[0] == 2:
            if self.replicated.wanted and message_key:
                await self._replicated_mark(k.seen(customer_id, message_key))
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
        if self.replicated.wanted:
            reply = await self.replicated.script(self._save, keys, args)
        else:
            reply = await self._call(self._save, keys, args)
        if reply[0] == 0:
            if self.replicated.wanted:
                # The lock may be on a master that is no longer one.
                await recheck_master(self.client)
            return Saved(False)
        return Saved(True, first_seq=int(reply[1]), claimed=bool(reply[2]),
                     earlier=int(reply[3]))

    async def _replicated_mark(self, seen: str) -> None:
        """Before a redelivery is answered as processed: the mark is on the
        master this connection talks to, and on the replicas (rewriting it
        is the write that `WAIT` then waits for)."""
        if await self.replicated.commands(lambda pipe: pipe.set(seen, "1", xx=True,
                                                                keepttl=True)) is None:
            raise StoreUnavailable("the message's mark is not on this master (a failover?)")

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

    async def _wait_lock(self, customer_id: str, token: str, ttl_seconds: float) -> None:
        key = self.keys.customer(customer_id, "lock")
        ttl_ms = max(1, int(ttl_seconds * 1000))

        async def attempt() -> bool | None:
            # Another worker's turn holds it for milliseconds.
            return await self._run(self.client.set(key, token, nx=True, px=ttl_ms)) or None

        if not await poll_until(attempt, within_seconds=self.limits.merge_lock_wait_seconds):
            raise LockTimeout(f"customer {customer_id} stayed locked")

    async def unlink(self, customer_id: str, identity: ChannelIdentity) -> None:
        # Two slots, so two steps; the mapping first (deleted only if it
        # still names this customer). The other way round, a crash between
        # would leave the identity resolving to a customer that no longer
        # lists it, and answering `moved` to every turn.
        await self._call(self._drop_mapping, [self.keys.identity(identity)], [customer_id])
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
