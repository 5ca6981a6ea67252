"""Edges of the stores: merges of customers already gone, what a merge leaves
behind and copies, waiting for a customer's lock, large erasures, the parked
list's cap and lifetime, and how many inbox items one take hands out."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis.asyncio as aioredis

from bot.core.errors import CustomerGone
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import ContextStore, StoreLimits
from context_store import RedisContextStore
from context_store.redis import PARKED_KEEP_SECONDS, PARKED_MAX

WEB = ChannelIdentity("web", "s1")


def entry(text: str, ts: float = 1.0) -> HistoryEntry:
    return HistoryEntry(sender="customer", channel="web", text=text, ts=ts)


async def save(store: ContextStore, customer: str, *entries: HistoryEntry, key: str | None = None,
               identity: ChannelIdentity = WEB, address: Address | None = None) -> None:
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=key)
    assert loaded.locked
    assert await store.save_and_unlock(
        customer, token="t", state='{"n":1}', entries=entries, message_key=key,
        identity=identity, address=address,
    )


async def test_a_customer_merged_away_cannot_be_merged_again(store: ContextStore) -> None:
    await save(store, "src", entry("from src"))
    await save(store, "dst", entry("from dst"))
    await save(store, "other", entry("from other"))
    await store.merge("src", "dst", lock_ttl_seconds=5)
    with pytest.raises(CustomerGone):
        await store.merge("src", "other", lock_ttl_seconds=5)
    assert [e.text for e in await store.history("other", 10)] == ["from other"]


async def test_an_erased_customer_cannot_be_merged_into_another(store: ContextStore) -> None:
    await save(store, "gone", entry("erased"))
    await save(store, "kept", entry("kept"))
    await store.erase("gone")
    with pytest.raises(CustomerGone):
        await store.merge("gone", "kept", lock_ttl_seconds=5)
    assert [e.text for e in await store.history("kept", 10)] == ["kept"]


async def test_a_merge_keeps_the_target_address_of_a_channel_both_have(
    store: ContextStore,
) -> None:
    await save(store, "src", entry("a"), address=Address("web", "session-of-src"))
    await save(store, "dst", entry("b"), address=Address("web", "session-of-dst"))
    await store.merge("src", "dst", lock_ttl_seconds=5)
    assert await store.addresses("dst") == {"web": Address("web", "session-of-dst")}


async def test_a_merge_leaves_of_the_source_only_its_marker_and_dedup_marks(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url, limits=StoreLimits(retention_seconds=3600))
    telegram = ChannelIdentity("telegram", "42")
    await save(store, "src", entry("hi"), key="m-1", identity=telegram,
               address=Address("telegram", "42"))
    await save(store, "dst", entry("there"), key="m-2")
    await store.merge("src", "dst", lock_ttl_seconds=5)
    left = sorted([k async for k in redis_client.scan_iter(match="segue:{c:src}:*")])
    assert left == ["segue:{c:src}:moved", "segue:{c:src}:seen:m-1"]
    assert await store.history("src", 10) == []
    assert await store.identities("src") == []
    assert await store.addresses("src") == {}
    assert await store.load_state("src") is None
    await store.close()


async def test_a_merge_copies_the_source_dedup_marks_and_nothing_else(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url, limits=StoreLimits(retention_seconds=3600))
    await save(store, "src", entry("hi"), key="m-1")
    await save(store, "dst", entry("there"), key="m-2")
    # Another customer's keys, all with a time to live, are no business of this merge.
    await save(store, "bystander", entry("unrelated"), key="m-9")
    await store.merge("src", "dst", lock_ttl_seconds=5)
    seen = sorted([k async for k in redis_client.scan_iter(match="segue:{c:dst}:seen:*")])
    assert seen == ["segue:{c:dst}:seen:m-1", "segue:{c:dst}:seen:m-2"]
    await store.close()


async def test_a_merge_waits_for_a_briefly_held_lock_and_holds_its_own_with_a_lease(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    """Locks are taken in id order: the merge holds "a-src" while it waits for
    "b-dst", which a turn elsewhere holds for 0.7 s."""
    store = RedisContextStore.from_url(redis_url)
    await save(store, "a-src", entry("one"))
    await save(store, "b-dst", entry("two"))
    assert await redis_client.set("segue:{c:b-dst}:lock", "a-turn", nx=True, px=700)
    started = time.monotonic()
    merging = asyncio.create_task(store.merge("a-src", "b-dst", lock_ttl_seconds=5))
    async with asyncio.timeout(5):
        while not await redis_client.exists("segue:{c:a-src}:lock"):
            await asyncio.sleep(0.005)
    # The merge's own lock expires by itself should the worker die holding it.
    assert 1000 < await redis_client.pttl("segue:{c:a-src}:lock") <= 5000
    await merging
    elapsed = time.monotonic() - started
    # Not before the turn's lock ran out (how soon after is the machine's business).
    assert elapsed >= 0.65, elapsed
    assert [e.text for e in await store.history("b-dst", 10)] == ["one", "two"]
    assert await redis_client.exists("segue:{c:a-src}:lock", "segue:{c:b-dst}:lock") == 0
    await store.close()


async def test_erasing_a_customer_with_more_keys_than_one_batch_removes_them_all(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url)
    await save(store, "c1", entry("hi"))
    async with redis_client.pipeline(transaction=False) as pipe:
        for n in range(1200):
            pipe.set(f"segue:{{c:c1}}:seen:m{n}", "1", ex=3600)
        await pipe.execute()
    await store.erase("c1")
    left = [k async for k in redis_client.scan_iter(match="segue:{c:c1}:*")]
    assert left == ["segue:{c:c1}:moved"]
    await store.close()


async def test_the_parked_list_keeps_the_newest_up_to_its_cap(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url)
    for n in range(PARKED_MAX + 3):
        await store.park(f'{{"n":{n}}}')
    kept = await store.parked(PARKED_MAX + 10)
    assert len(kept) == PARKED_MAX
    assert kept[0] == f'{{"n":{PARKED_MAX + 2}}}' and kept[-1] == '{"n":3}'
    await store.close()


async def test_parked_items_live_no_longer_than_customer_data(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url, limits=StoreLimits(retention_seconds=3600))
    await store.park('{"n":1}')
    assert 3590 <= await redis_client.ttl("segue:parked") <= 3600
    await store.close()
    kept_for_good = RedisContextStore.from_url(redis_url, limits=StoreLimits(retention_seconds=0))
    await kept_for_good.park('{"n":2}')
    assert PARKED_KEEP_SECONDS - 10 <= await redis_client.ttl("segue:parked") \
        <= PARKED_KEEP_SECONDS
    await kept_for_good.close()


async def test_an_inbox_take_hands_out_no_more_than_asked(store: ContextStore) -> None:
    for n in range(5):
        await store.inbox_add(f"item {n}")
    first = await store.inbox_take("w1", count=2, block_ms=50)
    assert [i.payload for i in first] == ["item 0", "item 1"]
    rest = await store.inbox_take("w1", count=10, block_ms=50)
    assert [i.payload for i in rest] == ["item 2", "item 3", "item 4"]


async def test_a_stale_item_is_reclaimed_even_behind_one_just_reclaimed(redis_url: str) -> None:
    """Workers each look for abandoned items; an item another worker has just
    taken over is not abandoned and does not hide one that is."""
    stores = [RedisContextStore.from_url(redis_url, inbox_stale_ms=200) for _ in range(3)]
    first, second, third = stores
    await first.inbox_add("x")
    await first.inbox_add("y")
    taken = await first.inbox_take("w1", count=10, block_ms=50)
    assert [i.payload for i in taken] == ["x", "y"]
    await asyncio.sleep(0.25)  # both become stale: the stale time is the behaviour under test
    again = await second.inbox_take("w2", count=1, block_ms=50)
    assert [(i.payload, i.attempts) for i in again] == [("x", 2)]
    # "x" was just taken over by w2; "y" is still abandoned.
    rescued = await third.inbox_take("w3", count=1, block_ms=50)
    assert [(i.payload, i.attempts) for i in rescued] == [("y", 2)]
    for store in stores:
        await store.close()
