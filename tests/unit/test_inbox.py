"""The inbox worker, on both stores: handled items are acknowledged, failing
ones retried a bounded number of times then parked, abandoned ones reclaimed,
and each lane's items handled one at a time in the order queued."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.core.errors import StoreUnavailable
from bot.core.inbox import (
    Handler,
    InboxOptions,
    InboxWorker,
    decode_item,
    encode_item,
    shared_worker,
)
from bot.core.ports import INBOX_PARTITIONS, ContextStore, InboxItem
from context_store import MemoryContextStore, RedisContextStore
from context_store.keys import lane_partition
from tests.support.redis_server import free_port, redis_server

FAST = InboxOptions(max_attempts=3, block_ms=100, retry_delay_seconds=0.001)


class Recorder:
    """A handler that records what it got and can fail on purpose."""

    def __init__(self, failures: int = 0, error: Exception | None = None) -> None:
        self.seen: list[dict[str, Any]] = []
        self.failures = failures
        self.error = error or RuntimeError("boom")
        self.done = asyncio.Event()

    async def __call__(self, data: dict[str, Any]) -> None:
        self.seen.append(data)
        if self.failures > 0:
            self.failures -= 1
            raise self.error
        self.done.set()


async def inbox_length(store: ContextStore) -> int:
    """Items not yet acknowledged, whoever holds them, with a lane or without."""
    if isinstance(store, RedisContextStore):
        streams = [store.keys.inbox(), *map(store.keys.inbox_lane, range(INBOX_PARTITIONS))]
        return sum([int(await store.client.xlen(stream)) for stream in streams])
    assert isinstance(store, MemoryContextStore)
    return len(store._inbox) + sum(len(p.entries) for p in store._partitions)


def test_items_round_trip_through_their_envelope() -> None:
    assert decode_item(encode_item("slack", {"a": 1})) == ("slack", {"a": 1})
    with pytest.raises(ValueError):
        decode_item('{"source": 3, "data": {}}')


async def test_a_handled_item_is_acknowledged(store: ContextStore) -> None:
    worker = InboxWorker(store=store, options=FAST)
    handler = Recorder()
    worker.register("chan", handler)
    await store.inbox_add(encode_item("chan", {"n": 1}))
    await worker.start()
    try:
        await asyncio.wait_for(handler.done.wait(), 5)
    finally:
        await worker.stop()
    assert handler.seen == [{"n": 1}]
    assert not worker.running
    assert await inbox_length(store) == 0


async def test_a_failing_item_is_retried_then_parked_with_its_error(store: ContextStore) -> None:
    worker = InboxWorker(store=store, options=FAST)
    handler = Recorder(failures=99, error=ValueError("cannot parse"))
    worker.register("chan", handler)
    item_id = await store.inbox_add(encode_item("chan", {"bad": True}))
    (item,) = await store.inbox_take("w", count=1, block_ms=100)
    await worker.handle(item)
    assert len(handler.seen) == FAST.max_attempts
    (parked,) = [json.loads(p) for p in await store.parked(10)]
    assert parked["item_id"] == item_id
    assert parked["error"] == "ValueError: cannot parse"
    assert json.loads(parked["payload"]) == {"source": "chan", "data": {"bad": True}}
    assert await inbox_length(store) == 0


async def test_a_transient_failure_is_retried_and_not_parked(store: ContextStore) -> None:
    worker = InboxWorker(store=store, options=FAST)
    handler = Recorder(failures=1)
    worker.register("chan", handler)
    await store.inbox_add(encode_item("chan", {"n": 2}))
    (item,) = await store.inbox_take("w", count=1, block_ms=100)
    await worker.handle(item)
    assert handler.seen == [{"n": 2}, {"n": 2}]
    assert await store.parked(10) == []
    assert await inbox_length(store) == 0


async def test_an_item_its_workers_keep_dying_on_is_parked_unrun(store: ContextStore) -> None:
    worker = InboxWorker(store=store, options=FAST)
    handler = Recorder()
    worker.register("chan", handler)
    await store.inbox_add(encode_item("chan", {"n": 3}))
    await worker.handle(InboxItem("1-0", encode_item("chan", {"n": 3}), FAST.max_attempts + 1))
    assert handler.seen == []
    (parked,) = [json.loads(p) for p in await store.parked(10)]
    assert "abandoned" in parked["error"]


async def test_an_abandoned_item_is_reclaimed_and_handled_once(store: ContextStore) -> None:
    await store.inbox_add(encode_item("chan", {"n": 4}))
    taken = await store.inbox_take("dies-after-taking", count=10, block_ms=100)
    assert len(taken) == 1
    worker = InboxWorker(store=store, options=FAST)
    handler = Recorder()
    worker.register("chan", handler)
    await worker.start()
    try:
        await asyncio.wait_for(handler.done.wait(), 5)
    finally:
        await worker.stop()
    assert handler.seen == [{"n": 4}]
    assert await inbox_length(store) == 0


async def test_an_unknown_source_is_left_for_another_worker() -> None:
    store = MemoryContextStore(inbox_stale_ms=0)
    worker = InboxWorker(store=store, options=FAST)
    await store.inbox_add(encode_item("telegram", {"n": 5}))
    (item,) = await store.inbox_take("w", count=1, block_ms=100)
    await worker.handle(item)
    assert await store.parked(10) == []
    (again,) = await store.inbox_take("another", count=1, block_ms=10)
    assert again.attempts == 2


async def test_the_store_being_down_does_not_count_as_an_attempt() -> None:
    store = MemoryContextStore()
    worker = InboxWorker(
        store=store, options=InboxOptions(max_attempts=1, store_backoff_max_seconds=0.001)
    )
    handler = Recorder(failures=2, error=StoreUnavailable("down"))
    worker.register("chan", handler)
    await store.inbox_add(encode_item("chan", {"n": 6}))
    (item,) = await store.inbox_take("w", count=1, block_ms=100)
    await worker.handle(item)
    assert len(handler.seen) == 3
    assert await store.parked(10) == []


async def test_connectors_share_one_worker_per_store() -> None:
    store = MemoryContextStore()
    first, second = shared_worker(store), shared_worker(store)
    assert first is second
    await first.start()
    await second.start()
    await first.stop()
    assert first.running  # the other owner still needs it
    await second.stop()
    assert not first.running
    assert shared_worker(store) is not first  # a stopped worker is forgotten


# Lanes: one sender's items in the order queued, whichever worker takes them.

LANE = "chan:T1:U0"


async def start_workers(store: ContextStore, handler: Handler, count: int) -> list[InboxWorker]:
    workers = [InboxWorker(store=store, options=FAST, consumer=f"w{n}") for n in range(count)]
    for worker in workers:
        worker.register("chan", handler)
        await worker.start()
    return workers


async def stop_workers(workers: list[InboxWorker]) -> None:
    for worker in workers:
        await worker.stop()


async def out_of_lane(store: ContextStore, lane: str) -> int:
    """How many items of `lane`'s partition are handed out, unacknowledged."""
    partition = lane_partition(lane)
    if isinstance(store, RedisContextStore):
        stream = store.keys.inbox_lane(partition)
        if not await store.client.exists(stream):
            return 0  # the worker has not read the partition yet: nothing handed out
        groups = {g["name"] for g in await store.client.xinfo_groups(stream)}
        if "segue-workers" not in groups:
            return 0
        summary = await store.client.xpending(stream, "segue-workers")
        return int(summary["pending"])
    assert isinstance(store, MemoryContextStore)
    return len(store._partitions[partition].pending)


async def test_two_workers_handle_each_lanes_items_once_in_the_order_queued(
    store: ContextStore,
) -> None:
    lanes = [f"chan:T1:U{n}" for n in range(5)]
    seen: dict[str, list[int]] = {lane: [] for lane in lanes}
    done = asyncio.Event()

    async def handler(data: dict[str, Any]) -> None:
        # Uneven handling times: items taken side by side would finish out of order.
        await asyncio.sleep(0.002 * (data["n"] % 3))
        seen[data["lane"]].append(data["n"])
        if sum(map(len, seen.values())) == 20 * len(lanes):
            done.set()

    workers = await start_workers(store, handler, 2)
    try:
        for n in range(20):
            for lane in lanes:
                await store.inbox_add(encode_item("chan", {"lane": lane, "n": n}), lane=lane)
        await asyncio.wait_for(done.wait(), 20)
    finally:
        await stop_workers(workers)
    assert seen == {lane: list(range(20)) for lane in lanes}
    assert await inbox_length(store) == 0


async def test_a_slow_item_stays_its_workers_and_its_lane_waits_for_it(
    store: ContextStore,
) -> None:
    events: list[str] = []
    done = asyncio.Event()

    async def handler(data: dict[str, Any]) -> None:
        events.append(f"start {data['n']}")
        if data["n"] == 0:
            await asyncio.sleep(0.7)  # over three stale times: the behaviour under test
        events.append(f"end {data['n']}")
        if data["n"] == 1:
            done.set()

    workers = await start_workers(store, handler, 2)
    try:
        await store.inbox_add(encode_item("chan", {"n": 0}), lane=LANE)
        await store.inbox_add(encode_item("chan", {"n": 1}), lane=LANE)
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await stop_workers(workers)
    assert events == ["start 0", "end 0", "start 1", "end 1"]


async def test_a_dead_workers_item_is_handled_before_the_next_of_its_lane(
    store: ContextStore,
) -> None:
    await store.inbox_add(encode_item("chan", {"n": 0}), lane=LANE)
    taken = await store.inbox_read("dies-after-taking", lane_partition(LANE), count=1, block_ms=0)
    assert len(taken) == 1
    await store.inbox_add(encode_item("chan", {"n": 1}), lane=LANE)
    seen: list[int] = []
    done = asyncio.Event()

    async def handler(data: dict[str, Any]) -> None:
        seen.append(data["n"])
        if data["n"] == 1:
            done.set()

    workers = await start_workers(store, handler, 1)
    try:
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await stop_workers(workers)
    assert seen == [0, 1]
    assert await inbox_length(store) == 0


async def test_an_item_without_a_lane_in_hand_goes_before_a_lanes_next(
    store: ContextStore,
) -> None:
    events: list[str] = []
    loose_started, release, done = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def handler(data: dict[str, Any]) -> None:
        events.append(f"start {data['name']}")
        if data["name"] == "loose":
            loose_started.set()
            await release.wait()
        events.append(f"end {data['name']}")
        if data["name"] == "lane":
            done.set()

    workers = await start_workers(store, handler, 1)
    try:
        await store.inbox_add(encode_item("chan", {"name": "loose"}))
        await asyncio.wait_for(loose_started.wait(), 10)
        await store.inbox_add(encode_item("chan", {"name": "lane"}), lane=LANE)
        async with asyncio.timeout(10):
            while not await out_of_lane(store, LANE):  # the worker holds it, waiting
                await asyncio.sleep(0.01)
        release.set()
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await stop_workers(workers)
    assert events == ["start loose", "end loose", "start lane", "end lane"]


async def test_the_worker_rides_out_a_redis_restart_and_keeps_its_lanes_in_order() -> None:
    port = free_port()
    seen: list[int] = []
    changed = asyncio.Condition()

    async def handler(data: dict[str, Any]) -> None:
        async with changed:
            seen.append(data["n"])
            changed.notify_all()

    with redis_server(port=port) as url:
        store = RedisContextStore.from_url(url, inbox_stale_ms=200)
        workers = await start_workers(store, handler, 1)
        await store.inbox_add(encode_item("chan", {"n": 0}), lane=LANE)
        async with changed:
            await asyncio.wait_for(changed.wait_for(lambda: seen == [0]), 10)
    try:
        # Down, and back without its data: the worker keeps trying meanwhile.
        with redis_server(port=port):
            try:
                for n in range(1, 6):
                    await store.inbox_add(encode_item("chan", {"n": n}), lane=LANE)
                async with changed:
                    await asyncio.wait_for(changed.wait_for(lambda: len(seen) == 6), 20)
            finally:
                await stop_workers(workers)
    finally:
        await store.close()
    assert seen == list(range(6))


@pytest.fixture(params=["memory", "redis"])
async def long_stale_store(request: pytest.FixtureRequest) -> AsyncIterator[ContextStore]:
    """A store whose taken items go stale only after 30 s, as shipped."""
    if request.param == "memory":
        yield MemoryContextStore(inbox_stale_ms=30_000)
        return
    store = RedisContextStore.from_url(request.getfixturevalue("redis_url"),
                                       inbox_stale_ms=30_000)
    yield store
    await store.close()


async def test_a_stopped_worker_gives_its_item_in_hand_to_the_next_at_once(
    long_stale_store: ContextStore,
) -> None:
    store = long_stale_store
    started = asyncio.Event()

    async def never_done(data: dict[str, Any]) -> None:
        started.set()
        await asyncio.Event().wait()

    worker = InboxWorker(store=store, consumer="w1",
                         options=InboxOptions(block_ms=100, stop_grace_seconds=0.05))
    worker.register("chan", never_done)
    await worker.start()
    await store.inbox_add(encode_item("chan", {"n": 0}), lane=LANE)
    await asyncio.wait_for(started.wait(), 10)
    await worker.stop()  # the grace runs out and the handler is cancelled
    # Not 30 s from now: the lane goes on with its item at once.
    (item,) = await store.inbox_read("w2", lane_partition(LANE), count=1, block_ms=0)
    assert (decode_item(item.payload)[1], item.attempts) == ({"n": 0}, 2)
