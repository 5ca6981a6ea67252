"""Shared fixtures: a real Redis server, the stores, running apps, the
platform fakes and an HTTP client. A test asks for them by name; a module
changes the settings of `app` and `proxied_app` by overriding `app_settings`
(and their dialog policy by overriding `app_policy`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis

from bot.core.policy import Policy
from bot.core.ports import ContextStore, StoreLimits
from context_store import MemoryContextStore, RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import FakeTelegram
from tests.support.app_server import RunningApp, serve_echo
from tests.support.channels_rig import ChannelsRig, channels_rig
from tests.support.handoff_rig import running
from tests.support.policies import EchoMenuPolicy
from tests.support.redis_cluster import ClusterNodes, redis_cluster
from tests.support.redis_server import redis_server
from tests.support.slack_rig import APP_TOKEN
from tests.support.slack_rig import TOKEN as SLACK_TOKEN

# Stores


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


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[ClusterNodes]:
    """A Redis Cluster of three masters, started once for the whole session."""
    with redis_cluster() as nodes:
        yield nodes


@pytest.fixture
def cluster_url(redis_cluster_session: ClusterNodes) -> str:
    """A `redis+cluster://` URL whose nodes are empty when the test starts."""
    redis_cluster_session.flush()
    return redis_cluster_session.url


@pytest.fixture(params=["redis", "cluster"])
def redis_or_cluster_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty Redis, then of an empty Redis Cluster: a test that
    takes it runs on both."""
    return str(request.getfixturevalue(f"{request.param}_url"))


StoreMaker = Callable[[str], AbstractAsyncContextManager[ContextStore]]


@pytest.fixture
def store_of(request: pytest.FixtureRequest) -> StoreMaker:
    """`store_of(kind)`: a store of that kind ("memory", "redis" or
    "cluster"), empty, with small limits; closed on leaving it."""

    @asynccontextmanager
    async def opened(kind: str) -> AsyncIterator[ContextStore]:
        limits = StoreLimits(history_max=50, retention_seconds=3600, dedup_ttl_seconds=3600)
        if kind == "memory":
            yield MemoryContextStore(limits=limits, inbox_stale_ms=200)
            return
        url = request.getfixturevalue("cluster_url" if kind == "cluster" else "redis_url")
        redis_store = RedisContextStore.from_url(url, limits=limits, inbox_stale_ms=200)
        try:
            yield redis_store
        finally:
            await redis_store.close()

    return opened


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, store_of: StoreMaker
                ) -> AsyncIterator[ContextStore]:
    """Each test using this runs once per store implementation (the contract
    suite's runs on a Redis Cluster too)."""
    async with store_of(request.param) as opened:
        yield opened


@pytest.fixture
async def redis_store(redis_url: str) -> AsyncIterator[RedisContextStore]:
    """The Redis store with its shipped limits; queued work that a stopped
    worker left is taken over after 200 ms instead of 30 s."""
    redis_store = RedisContextStore.from_url(redis_url, inbox_stale_ms=200)
    yield redis_store
    await redis_store.close()


# Running apps


@pytest.fixture
def app_settings() -> dict[str, Any]:
    """Settings `app` and `proxied_app` start with, beyond the web chat's."""
    return {}


@pytest.fixture
def app_policy() -> Policy:
    """The dialog policy of `app` and `proxied_app`."""
    return EchoMenuPolicy()


@pytest.fixture
async def app(
    redis_url: str, app_settings: dict[str, Any], app_policy: Policy
) -> AsyncIterator[RunningApp]:
    """Segue on loopback and Redis, answering with `app_policy`."""
    async with serve_echo(redis_url, policy=app_policy, **app_settings) as running_app:
        yield running_app


@pytest.fixture
async def proxied_app(
    redis_url: str, app_settings: dict[str, Any], app_policy: Policy
) -> AsyncIterator[RunningApp]:
    """As `app`, behind a proxy that names the client in X-Forwarded-For."""
    async with serve_echo(redis_url, policy=app_policy, trusted_proxy_header="X-Forwarded-For",
                          **app_settings) as running_app:
        yield running_app


@pytest.fixture
async def desk_app(redis_url: str) -> AsyncIterator[RunningApp]:
    """Segue on loopback and Redis with the demo bot and the console
    accounts ann, bob (agents) and root (admin)."""
    async with running(redis_url) as running_app:
        yield running_app


@pytest.fixture
async def channels(redis_url: str) -> AsyncIterator[ChannelsRig]:
    """`desk_app` with Telegram and Slack too, against their local fakes."""
    async with channels_rig(redis_url) as rig:
        yield rig


# Platform fakes and clients


@pytest.fixture
async def telegram_api() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
async def slack_api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(token=SLACK_TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP and WebSocket client session, closed after the test; with no
    cap on open connections, as some tests hold over a hundred sockets."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session
