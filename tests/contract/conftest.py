"""The contract suite runs on every store: in memory, on one Redis, and on a
Redis Cluster of three masters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from bot.core.ports import ContextStore
from bot.handoff.ports import AgentStore
from context_store.agents_memory import MemoryAgentStore
from context_store.agents_redis import RedisAgentStore
from context_store.redis_client import connect


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(
    request: pytest.FixtureRequest,
    store_of: Callable[[str], AbstractAsyncContextManager[ContextStore]],
) -> AsyncIterator[ContextStore]:
    async with store_of(request.param) as opened:
        yield opened


@pytest.fixture(params=["memory", "redis", "cluster"])
async def agents(request: pytest.FixtureRequest) -> AsyncIterator[AgentStore]:
    if request.param == "memory":
        yield MemoryAgentStore()
        return
    url = request.getfixturevalue("cluster_url" if request.param == "cluster" else "redis_url")
    client = connect(url)
    yield RedisAgentStore(client)
    await client.aclose()
