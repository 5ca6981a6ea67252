"""`InboxStore`'s lanes, on every store: a lane's items are handed out one at
a time in the order queued, a stale one again before the next, and lanes on
other partitions do not wait for each other. Stale time: 200 ms (`store`)."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.ports import ContextStore, InboxItem
from context_store import MemoryContextStore, RedisContextStore
from context_store.keys import lane_partition
from tests.support.redis_cluster import every_client

A, B = "slack:T1:U0", "slack:T1:U1"  # on partitions 15 and 9
STALE = 0.25  # a little over the stale time


def taken(items: list[InboxItem]) -> list[tuple[str, int]]:
    return [(i.payload, i.attempts) for i in items]


async def reads_waiting(store: ContextStore) -> int:
    """How many reads are waiting for a new item right now."""
    if isinstance(store, RedisContextStore):
        clients = await every_client(store.client)
        return sum(1 for c in clients if c["cmd"] in {"xread", "xreadgroup"} and "b" in c["flags"])
    assert isinstance(store, MemoryContextStore)
    return store.blocked_takers


async def read(store: ContextStore, consumer: str, lane: str) -> list[InboxItem]:
    return await store.inbox_read(consumer, lane_partition(lane), count=5, block_ms=0)


def test_a_lane_is_on_the_same_partition_in_every_process() -> None:
    # Not Python's `hash`, which differs from one process to the next; a
    # change here moves lanes, and their queued items could run out of order.
    assert [lane_partition(lane) for lane in (A, B, "slack:T061EG9R6:U2147483697", "")] == [
        15, 9, 8, 0]


async def test_a_lane_hands_out_one_item_at_a_time_in_the_order_queued(
    store: ContextStore,
) -> None:
    ids = [await store.inbox_add(f"a{n}", lane=A) for n in range(3)]
    first = await read(store, "w1", A)
    assert taken(first) == [("a0", 1)]
    assert first[0].item_id == ids[0]
    assert await read(store, "w2", A) == []  # a0 is out: nothing else of its lane
    await store.inbox_ack(ids[0])
    second = await read(store, "w2", A)
    assert taken(second) == [("a1", 1)]
    assert second[0].item_id == ids[1]
    await store.inbox_ack(ids[1])
    assert taken(await read(store, "w1", A)) == [("a2", 1)]
    await store.inbox_ack(ids[2])
    assert await read(store, "w1", A) == []


async def test_a_lane_on_another_partition_does_not_wait(store: ContextStore) -> None:
    await store.inbox_add("a0", lane=A)
    await store.inbox_add("b0", lane=B)
    assert taken(await read(store, "w1", A)) == [("a0", 1)]
    assert taken(await read(store, "w2", B)) == [("b0", 1)]


async def test_an_item_gone_stale_is_handed_out_again_before_the_next(
    store: ContextStore,
) -> None:
    await store.inbox_add("a0", lane=A)
    await store.inbox_add("a1", lane=A)
    (dying,) = await read(store, "w1", A)
    assert await read(store, "w2", A) == []
    await asyncio.sleep(STALE)  # the stale time is the behaviour under test
    (again,) = await read(store, "w2", A)
    assert (again.item_id, again.payload, again.attempts) == (dying.item_id, "a0", 2)
    assert await read(store, "w3", A) == []  # w2 holds it now
    await store.inbox_ack(again.item_id)
    assert taken(await read(store, "w3", A)) == [("a1", 1)]


async def test_a_kept_item_does_not_go_stale(store: ContextStore) -> None:
    await store.inbox_add("a0", lane=A)
    await store.inbox_add("a1", lane=A)
    (item,) = await read(store, "w1", A)
    assert item.stale_ms == 200
    for _ in range(4):  # twice the stale time in all, kept all along
        await asyncio.sleep(0.1)
        assert await store.inbox_keep("w1", item.item_id)
        assert await read(store, "w2", A) == []
    assert not await store.inbox_keep("w2", item.item_id)  # not w2's to keep
    await asyncio.sleep(STALE)  # no longer kept: w1 died
    assert taken(await read(store, "w2", A)) == [("a0", 2)]
    assert not await store.inbox_keep("w1", item.item_id)  # taken over
    await store.inbox_ack(item.item_id)  # by w1, finishing late: done all the same
    assert not await store.inbox_keep("w2", item.item_id)
    assert taken(await read(store, "w2", A)) == [("a1", 1)]


async def test_a_waiting_read_wakes_for_a_new_item_but_not_past_one_out(
    store: ContextStore,
) -> None:
    waiting = asyncio.create_task(
        store.inbox_read("w1", lane_partition(A), count=1, block_ms=60_000))
    async with asyncio.timeout(10):
        while not await reads_waiting(store):
            await asyncio.sleep(0.01)
    assert not waiting.done()
    await store.inbox_add("a0", lane=A)
    # Well before its wait runs out: the new item woke it.
    assert taken(await asyncio.wait_for(waiting, 10)) == [("a0", 1)]

    again = asyncio.create_task(
        store.inbox_read("w2", lane_partition(A), count=1, block_ms=60_000))
    async with asyncio.timeout(10):
        while not await reads_waiting(store):
            await asyncio.sleep(0.01)
    await store.inbox_add("a1", lane=A)
    assert await asyncio.wait_for(again, 10) == []  # woken, but a0 is still out


async def test_inbox_take_hands_out_the_next_item_of_each_lane(store: ContextStore) -> None:
    await store.inbox_add("a0", lane=A)
    await store.inbox_add("a1", lane=A)
    await store.inbox_add("b0", lane=B)
    await store.inbox_add("loose")
    # Without a lane first, then by partition: B's (9) before A's (15).
    assert taken(await store.inbox_take("w1", count=10, block_ms=50)) == [
        ("loose", 1), ("b0", 1), ("a0", 1)]
    assert await store.inbox_take("w2", count=10, block_ms=50) == []


async def test_what_a_stopping_consumer_gives_back_is_handed_out_at_once(
    store: ContextStore,
) -> None:
    # Long enough that no item goes stale on its own, however slow the
    # machine: only the giving back may hand them out again.
    assert isinstance(store, MemoryContextStore | RedisContextStore)
    store.inbox_stale_ms = 60_000
    await store.inbox_add("a0", lane=A)
    await store.inbox_add("b0", lane=B)
    await store.inbox_add("loose")
    held = await store.inbox_take("w1", count=10, block_ms=50)
    assert [i.payload for i in held] == ["loose", "b0", "a0"]
    assert taken(await store.inbox_take("w2", count=10, block_ms=50)) == []
    await store.inbox_release("w2")  # holds nothing: gives back nothing
    assert taken(await store.inbox_take("w3", count=10, block_ms=50)) == []
    await store.inbox_release("w1")
    # Long before the stale time, and each counted as handed out once more.
    again = await store.inbox_take("w3", count=10, block_ms=50)
    assert sorted(taken(again)) == [("a0", 2), ("b0", 2), ("loose", 2)]


async def test_a_partition_that_does_not_exist_is_refused_and_nothing_made(
    store: ContextStore,
) -> None:
    for partition in (-1, 16):
        with pytest.raises(ValueError, match="no inbox partition"):
            await store.inbox_read("w1", partition, count=1, block_ms=0)
    if isinstance(store, RedisContextStore):
        assert [key async for key in store.client.scan_iter()] == []
