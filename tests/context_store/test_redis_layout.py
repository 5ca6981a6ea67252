"""Redis-only promises: key layout, TTLs, round trips."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot.model import ChannelIdentity, HistoryEntry
from context_store import RedisContextStore, StoreLimits

WEB = ChannelIdentity("web", "s1")


async def test_customer_keys_share_one_hash_tag_and_expire(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    limits = StoreLimits(retention_seconds=3600, dedup_ttl_seconds=600)
    store = RedisContextStore.from_url(redis_url, limits=limits)
    customer = await store.resolve_customer(WEB, "c1")
    await store.lock_and_load(customer, token="t", ttl_seconds=30, message_key="m1")
    lock_ttl = await redis_client.pttl("segue:{c:c1}:lock")
    assert 0 < lock_ttl <= 30_000
    await store.save_and_unlock(
        customer, token="t", state="{}", message_key="m1", identity=WEB,
        entries=[HistoryEntry("customer", "web", "hi", 1.0)],
    )
    keys = sorted([k async for k in redis_client.scan_iter(match="segue:*")])
    assert keys == [
        "segue:{c:c1}:history", "segue:{c:c1}:identities", "segue:{c:c1}:seen:m1",
        "segue:{c:c1}:state", "segue:{i:web:s1}:customer",
    ]
    for key in keys:
        assert 0 < await redis_client.ttl(key) <= 3600, key
    assert await redis_client.type("segue:{c:c1}:history") == "list"
    await store.close()


async def test_unreachable_redis_is_store_unavailable() -> None:
    import pytest

    from bot.errors import StoreUnavailable
    from tests.redis_server import free_port

    store = RedisContextStore.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.resolve_customer(WEB, "c1")
    await store.close()


async def test_the_inbox_survives_a_redis_that_lost_its_data(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    import pytest

    from bot.errors import StoreError

    store = RedisContextStore.from_url(redis_url)
    await store.inbox_add("before")
    assert [i.payload for i in await store.inbox_take("w", count=5, block_ms=10)] == ["before"]
    await redis_client.flushdb()  # as a restart without persistence would
    with pytest.raises(StoreError):
        await store.inbox_take("w", count=5, block_ms=10)
    await store.inbox_add("after")
    assert [i.payload for i in await store.inbox_take("w", count=5, block_ms=10)] == ["after"]
    await store.close()


async def test_keys_left_after_a_merge_all_expire(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url, limits=StoreLimits(retention_seconds=3600))
    telegram = ChannelIdentity("telegram", "42")
    web_customer = await store.resolve_customer(WEB, "c-web")
    tg_customer = await store.resolve_customer(telegram, "c-tg")
    for customer, identity in ((web_customer, WEB), (tg_customer, telegram)):
        await store.lock_and_load(customer, token="t", ttl_seconds=30, message_key="m")
        await store.save_and_unlock(
            customer, token="t", state="{}", message_key="m", identity=identity,
            entries=[HistoryEntry("customer", identity.channel, "hi", 1.0)],
        )
    await store.merge(tg_customer, web_customer, lock_ttl_seconds=5)
    async for key in redis_client.scan_iter(match="segue:*"):
        assert await redis_client.ttl(key) > 0, key
    await store.close()


async def test_a_restarted_worker_reads_the_inbox_it_made_before(redis_url: str) -> None:
    before = RedisContextStore.from_url(redis_url)
    await before.inbox_add("first")
    assert [i.payload for i in await before.inbox_take("w", count=5, block_ms=10)] == ["first"]
    await before.close()
    after = RedisContextStore.from_url(redis_url)  # the consumer group exists already
    await after.inbox_add("second")
    assert [i.payload for i in await after.inbox_take("w2", count=5, block_ms=10)] == ["second"]
    await after.close()


async def test_commands_packed_by_hiredis_round_trip_every_argument_type(
    redis_url: str,
) -> None:
    from context_store.redis import connect

    client = connect(redis_url)
    assert client.connection_pool.connection_class.__name__ == "_HiredisConnection"
    await client.set("segue:test:k", "é ✓", ex=60)  # str with non-ASCII, int
    await client.set("segue:test:b", b"\x00\xffraw", px=60_000)  # bytes
    await client.zadd("segue:test:z", {"m": 1.5})  # float
    await client.xgroup_create("segue:test:s", "g", id="0", mkstream=True)  # two-word name
    assert await client.get("segue:test:k") == "é ✓"
    assert await client.zscore("segue:test:z", "m") == 1.5
    assert await client.strlen("segue:test:b") == 5
    await client.aclose()
