"""The redis-py client Segue's Redis stores share, and its errors in Segue's terms."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Protocol, TypeAlias

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel, SentinelConnectionPool
from redis.backoff import NoBackoff
from redis.exceptions import (
    ClusterDownError,
    NoScriptError,
    RedisClusterException,
    RedisError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.errors import StoreError, StoreUnavailable
from context_store.redis_autopipeline import AutoPipelineRedis
from context_store.redis_cluster import CLUSTER_SCHEME, connect_cluster

# One Redis (directly or through Sentinel), or a Redis Cluster.
RedisClient: TypeAlias = aioredis.Redis | RedisCluster

# A cluster that is failing over, resharding, or cannot be reached at all
# (redis-py says so with its own exception, outside `RedisError`): worth
# trying again shortly, like a connection refused.
_UNAVAILABLE = (RedisConnectionError, RedisTimeoutError, OSError, ClusterDownError,
                TryAgainError)


async def run_redis(awaitable: Any) -> Any:
    """Await a redis-py call, turning its errors into Segue's store errors."""
    try:
        return await awaitable
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"Redis error: {exc}") from exc
    except RedisClusterException as exc:
        # Slots no node serves, or no node answering to discover the
        # cluster from; anything else is a command the cluster refuses.
        if is_unreachable_cluster(exc):
            raise StoreUnavailable(f"Redis Cluster is unreachable: {exc}") from exc
        raise StoreError(f"Redis Cluster error: {exc}") from exc


def is_unreachable_cluster(exc: RedisClusterException) -> bool:
    """Whether redis-py's cluster error says no node could be reached (it
    tells only in the message) or a slot is not served."""
    return isinstance(exc, SlotNotCoveredError) or "cannot be connected" in str(exc)


def is_cluster(client: RedisClient) -> bool:
    return isinstance(client, RedisCluster)


class Script(Protocol):
    """A registered Lua script (redis-py's, or the pipelining client's)."""

    sha: str
    script: Any

    def __call__(self, keys: Any = ..., args: Any = ..., client: Any = ...) -> Awaitable[Any]: ...


# A script, its keys and its arguments.
ScriptCall: TypeAlias = tuple[Script, list[str], list[Any]]


async def run_scripts(client: RedisClient, *calls: ScriptCall) -> list[Any]:
    """Scripts in one round trip, each run on its own (not a transaction:
    their keys may be in different cluster slots); their answers in order."""
    if isinstance(client, AutoPipelineRedis) and not client.single_connection_client:
        # A single Redis: one command (their keys may be of any slot here).
        together: list[Any] = await run_redis(client.run_together(calls))
        return together
    if isinstance(client, AutoPipelineRedis | RedisCluster):
        # On a cluster, each goes to its slot's node, side by side (redis-py's
        # cluster pipeline refuses EVALSHA).
        return list(await asyncio.gather(
            *(run_redis(script(keys=keys, args=args)) for script, keys, args in calls)))
    # redis-py would ask whether the scripts are loaded before every such
    # pipeline; instead a script Redis no longer knows is loaded and run
    # again by itself.
    async with client.pipeline(transaction=False) as pipe:
        for script, keys, args in calls:
            pipe.evalsha(script.sha, len(keys), *keys, *args)
        results = await run_redis(pipe.execute(raise_on_error=False))
    out = []
    for (script, keys, args), result in zip(calls, results, strict=True):
        if isinstance(result, NoScriptError):
            result = await run_redis(script(keys=keys, args=args))
        elif isinstance(result, Exception):
            await run_redis(_raise(result))
        out.append(result)
    return out


async def _raise(exc: Exception) -> None:
    raise exc


async def scan(client: RedisClient, match: str, *, count: int = 500,
               slot_of: str | None = None) -> AsyncIterator[str]:
    """The keys matching `match`, errors in Segue's terms. On a cluster, every
    primary is scanned, unless `slot_of` names a key whose hash slot holds all
    the matches (they share its hash tag): then only the node serving it."""
    if isinstance(client, RedisCluster) and slot_of is not None:
        await run_redis(client.initialize())  # the slot map, if no command read it yet
        found = client.scan_iter(match=match, count=count,
                                 target_nodes=client.get_node_from_key(slot_of))
    else:
        found = client.scan_iter(match=match, count=count)
    keys = found.__aiter__()
    while True:
        try:
            key = await run_redis(keys.__anext__())
        except StopAsyncIteration:
            return
        yield str(key)


class _HiredisPacking:
    """Commands serialised by hiredis in C. redis-py's asyncio connections
    pack in Python, which costs about a sixth of a turn's server time."""

    def pack_command(self, *args: Any) -> list[bytes]:
        # redis-py names some commands in two words ("XGROUP CREATE").
        if isinstance(args[0], str) and " " in args[0]:
            args = (*args[0].split(), *args[1:])
        return [hiredis.pack_command(args)]


class _HiredisConnection(_HiredisPacking, aioredis.Connection):
    pass


class _HiredisSSLConnection(_HiredisPacking, aioredis.SSLConnection):
    pass


# Connections for what does not go on the pipelining client's shared one
# (pipelines, blocking reads), and how long a command waits for one.
POOL_CONNECTIONS = 100
POOL_WAIT_SECONDS = 5


def connect(url: str) -> RedisClient:
    """A client for `redis://`, `rediss://`, `unix://`, `redis+sentinel://` or
    `redis+cluster://` URLs.

    Sentinel URLs read `redis+sentinel://[:password@]host:port[,host:port]/service[/db]`;
    cluster URLs `redis+cluster://[:password@]host:port[,host:port]`
    (`context_store.redis_cluster`).
    """
    if url.startswith(CLUSTER_SCHEME):
        return connect_cluster(url)
    # One quick retry: a webhook must answer (503) well within the platform's
    # timeout when Redis is down, not after redis-py's default backoff.
    retry = Retry(NoBackoff(), 1)
    if not url.startswith("redis+sentinel://"):
        extra: dict[str, Any] = {}
        if hasattr(hiredis, "pack_command") and url.startswith(("redis://", "rediss://")):
            extra["connection_class"] = (
                _HiredisSSLConnection if url.startswith("rediss://") else _HiredisConnection
            )
        # A burst of pipelines (many web chat hellos at once) waits a moment
        # for a pooled connection instead of failing at the pool's cap.
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, retry=retry, socket_connect_timeout=2,
            max_connections=POOL_CONNECTIONS, timeout=POOL_WAIT_SECONDS, **extra
        )
        client: aioredis.Redis = AutoPipelineRedis.from_pool(pool)
        return client
    rest = url.removeprefix("redis+sentinel://")
    auth, _, rest = rest.rpartition("@")
    hosts_part, _, path = rest.partition("/")
    service, _, db = path.partition("/")
    if not service:
        raise ValueError("a redis+sentinel:// URL needs a service name: .../<service>[/db]")
    password = auth.partition(":")[2] or None
    hosts = []
    for hostport in hosts_part.split(","):
        host, _, port = hostport.partition(":")
        hosts.append((host, int(port or 26379)))
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts, password=password, decode_responses=True, retry=retry
    )
    master: aioredis.Redis = sentinel.master_for(
        service, redis_class=AutoPipelineRedis, connection_pool_class=_FailoverPool,
        db=int(db or 0), password=password
    )
    return master


class _FailoverPool(SentinelConnectionPool):
    """redis-py's Sentinel pool, which finds the master anew for each new
    connection but leaves connections already open where they are: one
    held for good (the pipelining client's) would keep writing to the old
    master, which accepts writes, and loses them, until Sentinel demotes it
    seconds later. Here every connection is closed once the sentinels name
    a new master, so the next command of each goes to it."""

    async def get_master_address(self) -> Any:
        known = self.master_address
        address = await super().get_master_address()  # type: ignore[no-untyped-call]
        if known is not None and address != known:
            await self.disconnect(inuse_connections=True)
        return address


async def close_client(client: RedisClient) -> None:
    """Close the client's connections, and for Sentinel the connections to
    the sentinels too (redis-py leaves those open)."""
    pool = getattr(client, "connection_pool", None)
    await client.aclose()
    if isinstance(pool, SentinelConnectionPool):
        for sentinel in pool.sentinel_manager.sentinels:
            await sentinel.aclose()


async def recheck_master(client: RedisClient) -> None:
    """After a sign that the master may have changed (a write no replica
    holds): ask the sentinels, and if they name another master, move every
    connection to it. Nothing to do on one Redis or a cluster."""
    pool = getattr(client, "connection_pool", None)
    if isinstance(pool, _FailoverPool):
        await run_redis(pool.get_master_address())
