"""Redis-only promises: key layout, TTLs, round trips."""

from __future__ import annotations

import dataclasses

import redis.asyncio as aioredis

from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.ports import StoreLimits
from context_store import RedisContextStore

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

    from bot.core.errors import StoreUnavailable
    from tests.support.redis_server import free_port

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

    from bot.core.errors import StoreError

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
    from context_store.redis_client import connect

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


async def test_a_first_message_keeps_a_provisional_identity_for_the_retention_time(
    redis_client: aioredis.Redis,
) -> None:
    key = "segue:{i:web:s1}:customer"
    for retention in (0, 3600):
        await redis_client.delete(key)
        store = RedisContextStore(redis_client, limits=StoreLimits(retention_seconds=retention))
        # A web chat hello: the mapping lives a day unless the visitor writes.
        await store.resolve_customer(WEB, "c1", provisional_ttl=86400)
        assert 86400 - 5 < await redis_client.ttl(key) <= 86400
        if retention == 0:
            # Another hello before the first message changes nothing.
            await store.resolve_customer(WEB, "c2", provisional_ttl=86400)
            assert 86400 - 5 < await redis_client.ttl(key) <= 86400
        # The first message resolves again: the customer is kept.
        assert await store.resolve_customer(WEB, "c3") == "c1"
        ttl = await redis_client.ttl(key)
        if retention == 0:
            assert ttl == -1  # for good
        else:
            assert retention - 5 < ttl <= retention


async def test_with_retention_off_no_key_of_a_kept_customer_expires(
    redis_client: aioredis.Redis,
) -> None:
    from bot.core.model import Address

    telegram = ChannelIdentity("telegram", "42")
    limits = StoreLimits(retention_seconds=0, dedup_ttl_seconds=600, moved_marker_seconds=900)
    store = RedisContextStore(redis_client, limits=limits)
    # Written first under a retention time, then with retention turned off:
    # what was written before must not expire either once it is written again.
    before = RedisContextStore(redis_client,
                               limits=dataclasses.replace(limits, retention_seconds=3600))

    async def turn(handle: RedisContextStore, identity: ChannelIdentity, message: str,
                   state: str | None) -> None:
        # A web chat hello, then the message.
        customer = await handle.resolve_customer(identity, f"c-{identity.channel}",
                                                 provisional_ttl=86400)
        assert await handle.resolve_customer(identity, "unused") == customer
        await handle.lock_and_load(customer, token="t", ttl_seconds=30, message_key=message)
        assert await handle.save_and_unlock(
            customer, token="t", state=state, message_key=message, identity=identity,
            entries=[HistoryEntry("customer", identity.channel, message, 1.0)],
            address=Address(identity.channel, identity.user_id),
        )

    async def nothing_expires_but_marks() -> None:
        keys = {k async for k in redis_client.scan_iter(match="segue:*")}
        assert {"segue:{c:c-web}:addresses", "segue:{c:c-web}:state",
                "segue:{i:telegram:42}:customer"} <= keys
        for key in keys:
            ttl = await redis_client.ttl(key)
            if ":seen:" in key:
                assert 0 < ttl <= 600, key  # dedup marks always expire
            elif key.endswith(":moved"):
                assert 0 < ttl <= 900, key  # the merged-away customer's marker
            else:
                assert ttl == -1, key

    for identity in (WEB, telegram):
        await turn(before, identity, "m1", "{}")
    await before.append("c-web", [HistoryEntry("agent", "web", "agent 1", 2.0)])
    await store.append("c-web", [HistoryEntry("agent", "web", "agent 2", 3.0)])
    assert await redis_client.ttl("segue:{c:c-web}:history") == -1
    for identity in (WEB, telegram):
        await turn(store, identity, "m2", None)  # the state key is not rewritten
    await nothing_expires_but_marks()
    await store.merge("c-telegram", "c-web", lock_ttl_seconds=5)
    await nothing_expires_but_marks()
