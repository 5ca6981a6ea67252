"""The redis-py client Segue's Redis stores share, and its errors in Segue's terms."""

from __future__ import annotations

from typing import Any

import hiredis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.core.errors import StoreError, StoreUnavailable
from context_store.redis_autopipeline import AutoPipelineRedis


async def run_redis(awaitable: Any) -> Any:
    """Await a redis-py call, turning its errors into Segue's store errors."""
    try:
        return await awaitable
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise StoreUnavailable(f"Redis is unreachable: {exc}") from exc
    except RedisError as exc:
        raise StoreError(f"Redis error: {exc}") from exc


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


def connect(url: str) -> aioredis.Redis:
    """A client for `redis://`, `rediss://`, `unix://` or `redis+sentinel://` URLs.

    Sentinel URLs read `redis+sentinel://[:password@]host:port[,host:port]/service[/db]`.
    """
    # One quick retry: a webhook must answer (503) well within the platform's
    # timeout when Redis is down, not after redis-py's default backoff.
    retry = Retry(NoBackoff(), 1)
    if not url.startswith("redis+sentinel://"):
        extra: dict[str, Any] = {}
        if hasattr(hiredis, "pack_command") and url.startswith(("redis://", "rediss://")):
            extra["connection_class"] = (
                _HiredisSSLConnection if url.startswith("rediss://") else _HiredisConnection
            )
        client: aioredis.Redis = AutoPipelineRedis.from_url(
            url, decode_responses=True, retry=retry, socket_connect_timeout=2, **extra
        )
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
        service, redis_class=AutoPipelineRedis, db=int(db or 0), password=password
    )
    return master
