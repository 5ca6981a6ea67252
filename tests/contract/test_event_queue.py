"""The event queue contract (`EventQueueStore`): every test runs on the
memory store, one Redis and a Redis Cluster. Lifetimes here are a few tenths
of a second, and a test that lets one run out waits for it: time passing is
what it checks."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import redis.asyncio as aioredis

from bot.core.events_queue import EventQueueStore
from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.ports import ContextStore
from context_store import RedisContextStore

WEB = ChannelIdentity("web", "w1")
HOLD = 60.0  # seconds an index entry is held by who took it from `events_due`
SHORT = 0.3  # seconds: a lease's lifetime where one runs out


def queue(store: ContextStore) -> Any:
    """The store as its event queue (every store of Segue offers it)."""
    assert isinstance(store, EventQueueStore)
    return store


async def push(store: ContextStore, customer: str, *events: str, most: int = 100) -> list[int]:
    return [await queue(store).events_push(customer, event, max_queued=most, keep_seconds=3600)
            for event in events]


async def due(store: ContextStore, limit: int = 100, hold: float = HOLD) -> dict[str, int]:
    return dict(await queue(store).events_due(limit, hold_seconds=hold))


async def drain(store: ContextStore, customer: str, token: str = "t") -> list[str]:
    """Every event of the customer, oldest first, as a sender takes them."""
    lease = await queue(store).events_lease(customer, token=token, ttl_seconds=5)
    taken = []
    while lease.head is not None:
        taken.append(lease.head)
        lease = await queue(store).events_pop(customer, lease.head, token=token,
                                              ttl_seconds=5, sent=True)
    return taken


class TestEventQueueStore:
    """`EventQueueStore`: a customer's events in order, one sender at a time,
    an index of customers that every sender reads."""

    covers: ClassVar[type] = EventQueueStore

    async def test_events_come_back_oldest_first(self, store: ContextStore) -> None:
        await push(store, "c1", "e1", "e2", "e3")
        await push(store, "c2", "x1")
        assert await drain(store, "c1") == ["e1", "e2", "e3"]
        assert await drain(store, "c2") == ["x1"]

    async def test_a_push_makes_the_customer_due_and_a_taker_holds_the_entry(
        self, store: ContextStore
    ) -> None:
        assert await due(store) == {}
        await push(store, "c1", "e1")
        await push(store, "c2", "x1")
        taken = await due(store)
        assert set(taken) == {"c1", "c2"}
        # Held: no other sender is handed them while this one looks, and a
        # later event does not make them due before the hold ends.
        await push(store, "c1", "e2")
        assert await due(store) == {}

    async def test_the_due_list_is_limited(self, store: ContextStore) -> None:
        await push(store, "c1", "e1")
        await push(store, "c2", "x1")
        first = await due(store, limit=1)
        second = await due(store, limit=1)
        assert len(first) == len(second) == 1 and first.keys() != second.keys()

    async def test_one_sender_at_a_time_holds_a_customers_queue(
        self, store: ContextStore
    ) -> None:
        await push(store, "c1", "e1", "e2")
        held = await queue(store).events_lease("c1", token="a", ttl_seconds=5)
        assert (held.status, held.head, held.failures) == ("held", "e1", 0)
        busy = await queue(store).events_lease("c1", token="b", ttl_seconds=5)
        assert busy.status == "busy" and 4 < busy.retry_in <= 5
        # The holder's own look again keeps it.
        again = await queue(store).events_lease("c1", token="a", ttl_seconds=5)
        assert (again.status, again.head) == ("held", "e1")
        lost = await queue(store).events_pop("c1", "e1", token="b", ttl_seconds=5, sent=True)
        assert lost.status == "lost"
        assert await drain(store, "c1", token="a") == ["e1", "e2"]

    async def test_a_lease_that_ran_out_passes_to_another(self, store: ContextStore) -> None:
        await push(store, "c1", "e1", "e2")
        await queue(store).events_lease("c1", token="a", ttl_seconds=SHORT)
        async with asyncio.timeout(5):
            while (lease := await queue(store).events_lease(
                    "c1", token="b", ttl_seconds=5)).status == "busy":
                await asyncio.sleep(0.05)
        assert (lease.status, lease.head) == ("held", "e1")
        # The first holder learns it lost the queue at its next step.
        late = await queue(store).events_pop("c1", "e1", token="a", ttl_seconds=5, sent=True)
        assert late.status == "lost"
        assert await drain(store, "c1", token="b") == ["e1", "e2"]

    async def test_only_the_oldest_event_is_removed(self, store: ContextStore) -> None:
        await push(store, "c1", "e1", "e2")
        await queue(store).events_lease("c1", token="t", ttl_seconds=5)
        # Not the oldest (it was dropped and replaced meanwhile): kept.
        kept = await queue(store).events_pop("c1", "e2", token="t", ttl_seconds=5, sent=True)
        assert kept.head == "e1"
        assert await drain(store, "c1") == ["e1", "e2"]

    async def test_the_oldest_events_go_beyond_the_limit(self, store: ContextStore) -> None:
        assert await push(store, "c1", "e1", "e2", "e3", "e4", "e5", most=3) == [0, 0, 0, 1, 1]
        assert await drain(store, "c1") == ["e3", "e4", "e5"]

    async def test_done_with_an_empty_queue_drops_the_entry(self, store: ContextStore) -> None:
        await push(store, "c1", "e1")
        mark = (await due(store))["c1"]
        assert await drain(store, "c1") == ["e1"]
        assert await queue(store).events_done("c1", mark, token="t")
        # Dropped, not held: the next event makes the customer due at once.
        await push(store, "c1", "e2")
        assert "c1" in await due(store)
        # And the lease was given back.
        lease = await queue(store).events_lease("c1", token="other", ttl_seconds=5)
        assert (lease.status, lease.head) == ("held", "e2")

    async def test_done_while_an_event_waits_keeps_the_lease_and_the_entry(
        self, store: ContextStore
    ) -> None:
        await push(store, "c1", "e1")
        mark = (await due(store))["c1"]
        assert await drain(store, "c1") == ["e1"]
        await push(store, "c1", "e2")  # came between the last look and done
        assert not await queue(store).events_done("c1", mark, token="t")
        assert (await queue(store).events_lease("c1", token="other",
                                                ttl_seconds=5)).status == "busy"
        assert await drain(store, "c1") == ["e2"]
        assert await queue(store).events_done("c1", mark, token="t")

    async def test_an_entry_moved_since_is_not_dropped(self, store: ContextStore) -> None:
        await push(store, "c1", "e1")
        stale = (await due(store, hold=0))["c1"]
        fresh = (await due(store, hold=HOLD))["c1"]
        assert fresh != stale
        assert await drain(store, "c1") == ["e1"]
        assert await queue(store).events_done("c1", stale, token="t")
        await push(store, "c1", "e2")
        # The entry stayed, held by the later taker: not due yet.
        assert await due(store) == {}

    async def test_a_retry_gives_the_lease_back_counts_the_failure_and_waits(
        self, store: ContextStore
    ) -> None:
        await push(store, "c1", "e1")
        mark = (await due(store))["c1"]
        await queue(store).events_lease("c1", token="a", ttl_seconds=5)
        await queue(store).events_retry("c1", mark, token="a", after_seconds=HOLD, failed=True)
        assert await due(store) == {}  # waiting out the retry
        lease = await queue(store).events_lease("c1", token="b", ttl_seconds=5)
        assert (lease.status, lease.head, lease.failures) == ("held", "e1", 1)
        mark = await _entry_mark(store, "c1")
        await queue(store).events_retry("c1", mark, token="b", after_seconds=0, failed=True)
        assert "c1" in await due(store)
        lease = await queue(store).events_lease("c1", token="c", ttl_seconds=5)
        assert lease.failures == 2
        # A stop, not a failure: counted as before.
        await queue(store).events_retry("c1", 0, token="c", after_seconds=0, failed=False)
        lease = await queue(store).events_lease("c1", token="d", ttl_seconds=5)
        assert lease.failures == 2
        # Sent: the count starts again.
        after = await queue(store).events_pop("c1", "e1", token="d", ttl_seconds=5, sent=True)
        assert (after.head, after.failures) == (None, 0)

    async def test_a_dropped_event_keeps_the_failure_count(self, store: ContextStore) -> None:
        await push(store, "c1", "e1", "e2")
        mark = (await due(store))["c1"]
        await queue(store).events_lease("c1", token="a", ttl_seconds=5)
        await queue(store).events_retry("c1", mark, token="a", after_seconds=0, failed=True)
        await queue(store).events_lease("c1", token="b", ttl_seconds=5)
        after = await queue(store).events_pop("c1", "e1", token="b", ttl_seconds=5, sent=False)
        assert (after.head, after.failures) == ("e2", 1)

    async def test_erase_removes_the_customers_events_and_later_ones_stay(
        self, store: ContextStore
    ) -> None:
        await _customer(store, "c1")
        await push(store, "c1", "said something")
        await push(store, "c2", "x1")
        await store.erase("c1")
        assert set(await due(store)) == {"c2"}
        assert await drain(store, "c1") == []
        # What is emitted after the erase (that it happened) is kept.
        await push(store, "c1", "erased")
        assert "c1" in await due(store)
        assert await drain(store, "c1") == ["erased"]
        assert await drain(store, "c2") == ["x1"]

    async def test_erase_removes_the_events_of_customers_joined_in(
        self, store: ContextStore
    ) -> None:
        await _customer(store, "kept", ChannelIdentity("web", "w-kept"))
        await _customer(store, "joined", ChannelIdentity("telegram", "55"))
        await push(store, "joined", "before the merge")
        await store.merge("joined", "kept", also=[], lock_ttl_seconds=5)
        await store.erase("kept")
        assert await due(store) == {}
        assert await drain(store, "joined") == []


async def _customer(store: ContextStore, customer: str,
                    identity: ChannelIdentity = WEB) -> None:
    """A customer with a saved turn, as erase finds them."""
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key="m1",
                                       identity=identity)
    assert loaded.locked
    assert await store.save_and_unlock(
        customer, token="t", state="{}", message_key="m1", identity=identity,
        entries=[HistoryEntry(sender="customer", channel=identity.channel, text="hi", ts=1.0)])


async def _entry_mark(store: ContextStore, customer: str) -> int:
    """The customer's index entry's mark, due or not."""
    if isinstance(store, RedisContextStore):
        score = await store.client.zscore(f"{store.keys.prefix}:events", customer)
        assert score is not None
        return int(score)
    return int(store._events_index[customer][1])  # type: ignore[attr-defined]


# Redis only: where the queue lives.


async def test_the_queue_shares_the_customers_hash_tag_and_expires(
    redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    await redis_store.events_push("c1", "e1", max_queued=10, keep_seconds=3600)
    mark = dict(await redis_store.events_due(10, hold_seconds=HOLD))["c1"]
    await redis_store.events_lease("c1", token="a", ttl_seconds=5)
    await redis_store.events_retry("c1", mark, token="a", after_seconds=HOLD, failed=True)
    await redis_store.events_lease("c1", token="b", ttl_seconds=5)
    keys = sorted([k async for k in redis_client.scan_iter(match="segue:{c:c1}:events*")])
    assert keys == ["segue:{c:c1}:events", "segue:{c:c1}:events-failures",
                    "segue:{c:c1}:events-lease"]
    assert 3595 < await redis_client.ttl("segue:{c:c1}:events") <= 3600
    assert await redis_client.ttl("segue:{c:c1}:events-failures") > 3600
    assert 0 < await redis_client.pttl("segue:{c:c1}:events-lease") <= 5000
    # The index names customers; it has no hash tag and no lifetime.
    assert await redis_client.zrange("segue:events", 0, -1) == ["c1"]
    assert await redis_client.ttl("segue:events") == -1


async def test_a_redis_that_forgot_its_scripts_still_queues(
    redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    await redis_client.script_flush()
    await redis_store.events_push("c1", "e1", max_queued=10, keep_seconds=3600)
    assert await redis_client.lrange("segue:{c:c1}:events", 0, -1) == ["e1"]
    assert await redis_client.zrange("segue:events", 0, -1) == ["c1"]
