"""The outbox contract (`OutboxStore`, and the outbox parts of a turn's save):
every test runs on the memory and the Redis store. Lifetimes here are a few
tenths of a second, and a test that lets one run out waits for it: time
passing is what it checks."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import redis.asyncio as aioredis

from bot.core.model import ChannelIdentity
from bot.core.ports import ContextStore, OutboxStore, Saved
from context_store import RedisContextStore

WEB = ChannelIdentity("web", "s1")
SHORT = 0.3  # seconds: the lock's and the claim's lifetime where one runs out


async def turn(store: ContextStore, customer: str, *replies: str, token: str = "t",
               lock_seconds: float = 5.0, claim_seconds: float = 5.0,
               key: str | None = None) -> tuple[Saved, int]:
    """One turn that saves `replies` in the outbox; what the save said, and
    the index mark the lock left."""
    loaded = await store.lock_and_load(customer, token=token, ttl_seconds=lock_seconds,
                                       message_key=key, identity=WEB, index_outbox=True)
    assert loaded.locked
    saved = await store.save_and_unlock(customer, token=token, state="{}", entries=[],
                                        message_key=key, identity=WEB, outbox=replies,
                                        claim_seconds=claim_seconds)
    return saved, loaded.mark


async def due_customers(store: ContextStore) -> list[str]:
    return [customer for customer, _ in await store.outbox_due(100)]


async def wait_until_due(store: ContextStore, customer: str) -> int:
    """The customer's mark once the index says to look at them (a lifetime
    running out: polled, there is no event)."""
    async with asyncio.timeout(5):
        while True:
            for due, mark in await store.outbox_due(100):
                if due == customer:
                    return mark
            await asyncio.sleep(0.02)


class TestOutboxStore:
    """`OutboxStore`: replies saved with their turn, claimed by one holder at
    a time, in order, marked delivered; the index a sweeper reads."""

    covers: ClassVar[type] = OutboxStore

    async def test_a_turns_replies_are_numbered_in_order_and_held_by_the_saver(
        self, store: ContextStore
    ) -> None:
        first, _ = await turn(store, "c1", "one", "two")
        assert (first.ok, first.first_seq, first.claimed, first.earlier) == (True, 1, True, 0)
        # A second turn while the first one's replies are still being sent:
        # numbered after them, and not its saver's to send yet.
        second, _ = await turn(store, "c1", "three", token="t2")
        assert (second.first_seq, second.claimed, second.earlier) == (3, False, 2)
        busy = await store.outbox_claim("c1", token="t2", ttl_seconds=5)
        assert busy.status == "busy" and 4 < busy.retry_in <= 5
        held = await store.outbox_claim("c1", token="t", ttl_seconds=5)
        assert held.status == "claimed"
        assert [(i.seq, i.payload) for i in held.items] == [(1, "one"), (2, "two"), (3, "three")]

    async def test_a_save_without_replies_says_what_is_pending(self, store: ContextStore) -> None:
        await turn(store, "c1", "one")
        saved, _ = await turn(store, "c1", token="t2")
        assert (saved.ok, saved.first_seq, saved.claimed, saved.earlier) == (True, 0, False, 1)

    async def test_a_save_that_lost_its_lock_leaves_no_reply(self, store: ContextStore) -> None:
        loaded = await store.lock_and_load("c1", token="t", ttl_seconds=5, message_key="m1",
                                           index_outbox=True)
        assert loaded.locked
        await store.unlock("c1", token="t")
        saved = await store.save_and_unlock("c1", token="t", state="{}", entries=[],
                                            message_key="m1", identity=WEB, outbox=["lost"])
        assert not saved and saved == Saved(False)
        assert (await store.outbox_claim("c1", token="s", ttl_seconds=5)).status == "idle"

    async def test_a_sweeper_takes_replies_only_once_due_and_their_claim_ran_out(
        self, store: ContextStore
    ) -> None:
        await turn(store, "c1", "one", lock_seconds=SHORT, claim_seconds=SHORT)
        assert await due_customers(store) == []
        refused = await store.outbox_claim("c1", token="sweeper", ttl_seconds=5, due_only=True)
        assert refused.status == "busy" and 0 < refused.retry_in <= SHORT
        mark = await wait_until_due(store, "c1")
        await asyncio.sleep(SHORT)  # the saver's claim and the item's due time run out
        taken = await store.outbox_claim("c1", token="sweeper", ttl_seconds=5, due_only=True)
        assert taken.status == "claimed" and [i.payload for i in taken.items] == ["one"]
        assert mark > 0

    async def test_a_sweeper_waits_for_an_unclaimed_reply_to_be_due(
        self, store: ContextStore
    ) -> None:
        await turn(store, "c1", "one", claim_seconds=SHORT)
        await turn(store, "c1", "two", token="t2", claim_seconds=5)  # not claimed: t holds it
        await asyncio.sleep(SHORT)
        # t's claim ran out and "one" is due: the sweeper takes both, in order.
        taken = await store.outbox_claim("c1", token="sweeper", ttl_seconds=5, due_only=True)
        assert [i.payload for i in taken.items] == ["one", "two"]

    async def test_a_reply_nobody_holds_is_a_sweepers_only_once_due(
        self, store: ContextStore
    ) -> None:
        _, mark = await turn(store, "c1", "one")
        await turn(store, "c1", "two", token="t2")  # saved while t held the outbox
        await store.outbox_delivered("c1", 1, release="t", mark=mark)
        # Nobody holds "two" now, but its saver has until it is due to send it.
        early = await store.outbox_claim("c1", token="sweeper", ttl_seconds=5, due_only=True)
        assert early.status == "busy" and 4 < early.retry_in <= 5
        saver = await store.outbox_claim("c1", token="t2", ttl_seconds=5)
        assert [i.payload for i in saver.items] == ["two"]

    async def test_of_two_claimants_at_once_one_holds_the_outbox(
        self, store: ContextStore
    ) -> None:
        await turn(store, "c1", "one", claim_seconds=SHORT)
        await asyncio.sleep(SHORT)
        claims = await asyncio.gather(*(
            store.outbox_claim("c1", token=f"s{n}", ttl_seconds=5, due_only=True)
            for n in range(5)))
        assert sorted(c.status for c in claims) == ["busy"] * 4 + ["claimed"]

    async def test_a_delivered_reply_is_never_handed_out_again(self, store: ContextStore) -> None:
        await turn(store, "c1", "one", "two")
        await store.outbox_delivered("c1", 1)
        held = await store.outbox_claim("c1", token="t", ttl_seconds=5)
        assert [i.seq for i in held.items] == [2]

    async def test_the_last_delivery_gives_the_claim_back_and_drops_the_index_entry(
        self, store: ContextStore
    ) -> None:
        _, mark = await turn(store, "c1", "one", lock_seconds=SHORT)
        await store.outbox_delivered("c1", 1, release="t", mark=mark)
        assert (await store.outbox_claim("c1", token="other", ttl_seconds=5)).status == "idle"
        await asyncio.sleep(SHORT)  # the lock's time, when the entry would have come due
        assert await due_customers(store) == []

    async def test_an_entry_written_again_since_is_not_dropped(self, store: ContextStore) -> None:
        _, first_mark = await turn(store, "c1", "one", lock_seconds=SHORT)
        # Another turn of the customer locks (and indexes) before the first's
        # reply is marked delivered, and dies before saving.
        again = await store.lock_and_load("c1", token="t2", ttl_seconds=SHORT,
                                          message_key=None, index_outbox=True)
        assert again.locked and again.mark != first_mark
        await store.outbox_delivered("c1", 1, release="t", mark=first_mark)
        assert await wait_until_due(store, "c1") == again.mark

    async def test_a_claim_is_busy_while_a_turn_holds_the_lock(self, store: ContextStore) -> None:
        loaded = await store.lock_and_load("c1", token="t", ttl_seconds=5, message_key=None,
                                           index_outbox=True)
        busy = await store.outbox_claim("c1", token="s", ttl_seconds=5, due_only=True)
        assert busy.status == "busy" and 4 < busy.retry_in <= 5
        await store.unlock("c1", token="t")
        assert (await store.outbox_claim("c1", token="s", ttl_seconds=5)).status == "idle"
        assert loaded.mark > 0

    async def test_only_the_holder_extends_its_claim_and_only_while_it_lasts(
        self, store: ContextStore
    ) -> None:
        await turn(store, "c1", "one", claim_seconds=SHORT)
        assert await store.outbox_extend("c1", token="t", ttl_seconds=SHORT)
        assert not await store.outbox_extend("c1", token="other", ttl_seconds=5)
        await asyncio.sleep(SHORT + 0.05)
        assert not await store.outbox_extend("c1", token="t", ttl_seconds=5)

    async def test_reindex_moves_or_drops_an_entry_only_with_its_mark(
        self, store: ContextStore
    ) -> None:
        _, mark = await turn(store, "c1", "one", lock_seconds=SHORT)
        await store.outbox_reindex("c1", mark + 1, after_seconds=None)  # a stale mark
        mark = await wait_until_due(store, "c1")
        await store.outbox_reindex("c1", mark, after_seconds=60)
        assert await due_customers(store) == []
        await store.outbox_reindex("c1", mark, after_seconds=None)  # moved: mark changed
        assert "c1" in [c for c, _ in await _indexed(store)]

    async def test_the_due_list_is_earliest_first_and_limited(self, store: ContextStore) -> None:
        for n in range(3):
            await turn(store, f"c{n}", "hi", lock_seconds=0.05 * (n + 1))
        await wait_until_due(store, "c2")
        assert [c for c, _ in await store.outbox_due(2)] == ["c0", "c1"]

    async def test_erase_removes_the_outbox(self, store: ContextStore) -> None:
        await turn(store, "c1", "one", "two")
        await store.erase("c1")
        assert (await store.outbox_claim("c1", token="t", ttl_seconds=5)).status == "idle"

    async def test_a_lock_without_the_index_leaves_no_entry(self, store: ContextStore) -> None:
        loaded = await store.lock_and_load("c1", token="t", ttl_seconds=0.05, message_key=None)
        assert loaded.locked and loaded.mark == 0
        await asyncio.sleep(0.1)
        assert await due_customers(store) == []


async def _indexed(store: ContextStore) -> list[tuple[str, int]]:
    """Every index entry, due or not (read as a sweeper would, much later)."""
    if isinstance(store, RedisContextStore):
        flat = await store.client.zrange(store.keys.outbox_index(), 0, -1, withscores=True)
        return [(str(c), int(s)) for c, s in flat]
    return [(c, m) for c, (_, m) in store._outbox_index.items()]  # type: ignore[attr-defined]


# Redis only: where the outbox lives.


async def test_the_outbox_shares_the_customers_hash_tag_and_expires_with_them(
    redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    await turn(redis_store, "c1", "one")  # type: ignore[arg-type]
    keys = sorted([k async for k in redis_client.scan_iter(match="segue:{c:c1}:outbox*")])
    assert keys == ["segue:{c:c1}:outbox", "segue:{c:c1}:outbox-claim", "segue:{c:c1}:outbox-seq"]
    retention = redis_store.limits.retention_seconds
    for key in ("segue:{c:c1}:outbox", "segue:{c:c1}:outbox-seq"):
        assert retention - 5 < await redis_client.ttl(key) <= retention, key
    assert 0 < await redis_client.pttl("segue:{c:c1}:outbox-claim") <= 5000
    # The index names customers; it has no hash tag and no lifetime.
    assert await redis_client.zrange("segue:outbox", 0, -1) == ["c1"]


async def test_a_redis_that_forgot_its_scripts_still_indexes_and_locks(
    redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    await redis_client.script_flush()
    saved, mark = await turn(redis_store, "c1", "one")  # type: ignore[arg-type]
    assert saved.ok and mark > 0
    assert await redis_client.zscore("segue:outbox", "c1") == mark
