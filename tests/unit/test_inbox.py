"""The inbox worker, on both stores: handled items are acknowledged, failing
ones retried a bounded number of times then parked, abandoned ones reclaimed."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from bot.core.errors import StoreUnavailable
from bot.core.inbox import InboxOptions, InboxWorker, decode_item, encode_item, shared_worker
from bot.core.ports import ContextStore, InboxItem
from context_store import MemoryContextStore, RedisContextStore

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
    """Items not yet acknowledged, whoever holds them."""
    if isinstance(store, RedisContextStore):
        return int(await store.client.xlen(store.keys.inbox()))
    assert isinstance(store, MemoryContextStore)
    return len(store._inbox)


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
