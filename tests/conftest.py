"""Shared fixtures: a real Redis server, both stores, a running web chat app."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from bot.core.ports import ContextStore, StoreLimits
from context_store import MemoryContextStore, RedisContextStore
from tests.support.redis_server import redis_server


@pytest.fixture(scope="session")
def redis_url_session() -> Iterator[str]:
    with redis_server() as url:
        yield url


@pytest.fixture
def redis_url(redis_url_session: str) -> str:
    """A Redis URL whose database is empty when the test starts."""
    with redis.Redis.from_url(redis_url_session) as client:
        client.flushdb()
    return redis_url_session


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ContextStore]:
    """Each test using this runs once per store implementation."""
    limits = StoreLimits(history_max=50, retention_seconds=3600, dedup_ttl_seconds=3600)
    if request.param == "memory":
        yield MemoryContextStore(limits=limits, inbox_stale_ms=200)
        return
    url = request.getfixturevalue("redis_url")
    redis_store = RedisContextStore.from_url(url, limits=limits, inbox_stale_ms=200)
    yield redis_store
    await redis_store.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP and WebSocket client session, closed after the test."""
    async with aiohttp.ClientSession() as session:
        yield session
