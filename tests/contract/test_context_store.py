"""The ContextStore contract, one class per slice of `bot.core.ports`: every
test runs on the memory and the Redis store."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import ClassVar

from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import (
    ContextStore,
    ConversationReader,
    CounterStore,
    IdentityStore,
    InboxStore,
    ParkingStore,
    StoreHealth,
    TokenStore,
    TurnStore,
)
from context_store import MemoryContextStore, RedisContextStore
from tests.support.redis_cluster import every_client

WEB = ChannelIdentity("web", "s1")
TELEGRAM = ChannelIdentity("telegram", "5551234")


def entry(text: str, ts: float = 1.0, sender: str = "customer") -> HistoryEntry:
    return HistoryEntry(sender=sender, channel="web", text=text, ts=ts)  # type: ignore[arg-type]


async def save(store: ContextStore, customer: str, *entries: HistoryEntry, key: str | None = None,
               state: str | None = '{"n":1}') -> bool:
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=key)
    assert loaded.locked
    return await store.save_and_unlock(
        customer, token="t", state=state, entries=entries, message_key=key, identity=WEB
    )


async def takers_blocked(store: ContextStore) -> int:
    """How many `inbox_take` calls are waiting for a new item right now."""
    if isinstance(store, RedisContextStore):
        clients = await every_client(store.client)
        return sum(1 for c in clients if c["cmd"] == "xreadgroup" and "b" in c["flags"])
    assert isinstance(store, MemoryContextStore)
    return store.blocked_takers


class TestStoreHealth:
    """`StoreHealth`: whether the store answers."""

    covers: ClassVar[type] = StoreHealth

    async def test_a_live_store_answers(self, store: ContextStore) -> None:
        assert await store.ping() is None


class TestTurnStore:
    """`TurnStore`: resolving the customer, lock and load, save and unlock;
    extending and giving back the lock; erasing a customer."""

    covers: ClassVar[type] = TurnStore

    async def test_resolve_creates_once_and_keeps_the_first_id(self, store: ContextStore) -> None:
        assert await store.resolve_customer(WEB, "c1") == "c1"
        assert await store.resolve_customer(WEB, "c2") == "c1"
        assert await store.resolve_customer(TELEGRAM, "c3") == "c3"

    async def test_a_first_message_keeps_a_provisional_identity_whatever_the_retention(
        self, store: ContextStore,
    ) -> None:
        retained = store.limits
        forever = dataclasses.replace(retained, retention_seconds=0)
        cases = {  # identity -> (limits, resolved again as its first message would)
            ChannelIdentity("web", "forever"): (forever, True),
            ChannelIdentity("web", "retained"): (retained, True),
            ChannelIdentity("web", "hello-only"): (forever, False),
            ChannelIdentity("web", "hello-only-retained"): (retained, False),
        }
        for identity, (limits, wrote) in cases.items():
            store.limits = limits
            customer = f"c-{identity.user_id}"
            assert await store.resolve_customer(identity, customer, provisional_ttl=1) == customer
            if wrote:
                assert await store.resolve_customer(identity, "not-used") == customer
        # A hello again before writing leaves the mapping provisional.
        store.limits = forever
        hello_twice = ChannelIdentity("web", "hello-twice")
        for _ in range(2):
            await store.resolve_customer(hello_twice, "c-hello-twice", provisional_ttl=1)
        await asyncio.sleep(1.1)  # past the provisional TTL: expiry is the behaviour under test
        for identity, (limits, wrote) in cases.items():
            store.limits = limits
            again = await store.resolve_customer(identity, "new")
            assert (again == f"c-{identity.user_id}") is wrote, identity
        store.limits = forever
        assert await store.resolve_customer(hello_twice, "new") == "new"

    async def test_lock_is_exclusive_until_saved(self, store: ContextStore) -> None:
        first = await store.lock_and_load("c1", token="a", ttl_seconds=5, message_key="m1")
        second = await store.lock_and_load("c1", token="b", ttl_seconds=5, message_key="m2")
        assert first.locked and first.state is None
        assert not second.locked and not second.duplicate
        saved = await store.save_and_unlock(
            "c1", token="a", state='{"x":1}', entries=[entry("hi")], message_key="m1", identity=WEB
        )
        assert saved
        third = await store.lock_and_load("c1", token="b", ttl_seconds=5, message_key="m2")
        assert third.locked and third.state == '{"x":1}'

    async def test_a_processed_message_is_a_duplicate(self, store: ContextStore) -> None:
        assert await save(store, "c1", entry("hi"), key="m1")
        again = await store.lock_and_load("c1", token="t2", ttl_seconds=5, message_key="m1")
        assert again.duplicate and not again.locked
        # The duplicate check took no lock: another message goes through at once.
        other = await store.lock_and_load("c1", token="t3", ttl_seconds=5, message_key="m2")
        assert other.locked

    async def test_save_with_a_stolen_lock_writes_nothing(self, store: ContextStore) -> None:
        await store.lock_and_load("c1", token="old", ttl_seconds=0.05, message_key="m1")
        await asyncio.sleep(0.1)  # let the lock's TTL run out: expiry is the behaviour under test
        taken = await store.lock_and_load("c1", token="new", ttl_seconds=5, message_key="m2")
        assert taken.locked
        saved = await store.save_and_unlock(
            "c1", token="old", state='{"lost":1}', entries=[entry("x")], message_key="m1",
            identity=WEB,
        )
        assert not saved
        assert await store.history("c1", 10) == []
        assert await store.load_state("c1") is None
        # m1 was not marked processed: a redelivery will be handled.
        await store.unlock("c1", token="new")
        retry = await store.lock_and_load("c1", token="r", ttl_seconds=5, message_key="m1")
        assert retry.locked

    async def test_unlock_needs_the_token(self, store: ContextStore) -> None:
        await store.lock_and_load("c1", token="a", ttl_seconds=5, message_key=None)
        await store.unlock("c1", token="not-a")
        assert not (await store.lock_and_load("c1", token="b", ttl_seconds=5,
                                              message_key=None)).locked
        await store.unlock("c1", token="a")
        assert (await store.lock_and_load("c1", token="b", ttl_seconds=5, message_key=None)).locked

    async def test_a_held_lock_can_be_extended_only_by_its_holder(
        self, store: ContextStore
    ) -> None:
        loop = asyncio.get_running_loop()
        taken_at = loop.time()
        # A second is ample for the extension to be made while the lock is held.
        assert (await store.lock_and_load("c1", token="a", ttl_seconds=1, message_key=None)).locked
        assert not await store.extend_lock("c1", token="b", ttl_seconds=60)
        assert await store.extend_lock("c1", token="a", ttl_seconds=60)
        # Past the first TTL: the extension is what is under test.
        await asyncio.sleep(max(0.0, taken_at + 1.2 - loop.time()))
        assert not (await store.lock_and_load("c1", token="b", ttl_seconds=5,
                                              message_key=None)).locked
        await store.unlock("c1", token="a")
        assert not await store.extend_lock("c1", token="a", ttl_seconds=5)

    async def test_history_is_appended_in_order_and_capped(self, store: ContextStore) -> None:
        cap = store.limits.history_max
        for i in range(cap + 5):
            assert await save(store, "c1", entry(f"m{i}", ts=float(i)))
        history = await store.history("c1", 1000)
        assert len(history) == cap
        assert [e.text for e in history] == [f"m{i}" for i in range(5, cap + 5)]
        assert [e.text for e in await store.history("c1", 3)] == [f"m{cap + i}" for i in (2, 3, 4)]

    async def test_none_state_keeps_the_stored_state(self, store: ContextStore) -> None:
        assert await save(store, "c1", state='{"keep":true}')
        assert await save(store, "c1", entry("x"), state=None)
        assert await store.load_state("c1") == '{"keep":true}'

    async def test_the_latest_address_of_each_channel_is_kept(self, store: ContextStore) -> None:
        for target in ("chat-1", "chat-2"):
            await store.lock_and_load("c1", token="t", ttl_seconds=5, message_key=None)
            assert await store.save_and_unlock(
                "c1", token="t", state=None, entries=[], message_key=None, identity=TELEGRAM,
                address=Address("telegram", target),
            )
        assert await store.addresses("c1") == {"telegram": Address("telegram", "chat-2")}

    async def test_an_identity_no_longer_recorded_is_told_to_resolve_again(
        self, store: ContextStore,
    ) -> None:
        customer = await store.resolve_customer(WEB, "c1")
        assert await save(store, customer, entry("hi"))
        ok = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=None,
                                       identity=WEB)
        assert ok.locked
        await store.unlock(customer, token="t")
        await store.unlink(customer, WEB)
        await store.resolve_customer(TELEGRAM, customer)
        await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=None)
        assert await store.save_and_unlock(customer, token="t", state=None, entries=[],
                                           message_key=None, identity=TELEGRAM)
        gone = await store.lock_and_load(customer, token="u", ttl_seconds=5, message_key=None,
                                         identity=WEB)
        assert gone.moved and not gone.locked
        # A customer with no recorded identity yet (a first message) is not refused.
        fresh = await store.lock_and_load("new", token="v", ttl_seconds=5, message_key=None,
                                          identity=WEB)
        assert fresh.locked

    async def test_identities_are_recorded_and_erase_removes_everything(
        self, store: ContextStore
    ) -> None:
        customer = await store.resolve_customer(WEB, "c1")
        assert await save(store, customer, entry("hi"), key="m1")
        assert await store.identities(customer) == [WEB]
        await store.erase(customer)
        assert await store.history(customer, 10) == []
        assert await store.load_state(customer) is None
        assert await store.identities(customer) == []
        assert await store.resolve_customer(WEB, "fresh") == "fresh"
        # Whoever still knows the old id is told to resolve the identity again.
        gone = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key="m1")
        assert gone.moved and not gone.locked


class TestConversationReader:
    """`ConversationReader`: reading a conversation outside its turn."""

    covers: ClassVar[type] = ConversationReader

    async def test_history_entries_round_trip(self, store: ContextStore) -> None:
        from bot.core.model import Button

        original = HistoryEntry(
            sender="agent", channel="telegram", text="<b>not html</b> ✓", ts=12.5,
            buttons=(Button("Yes", "yes"),), agent_name="Ana",
        )
        assert await save(store, "c1", original)
        assert await store.history("c1", 5) == [original]

    async def test_many_states_load_at_once_in_the_order_asked(self, store: ContextStore) -> None:
        assert await save(store, "c1", state='{"n":1}')
        assert await save(store, "c2", state='{"n":2}')
        assert await store.load_states(["c2", "gone", "c1", "c2"]) == [
            '{"n":2}', None, '{"n":1}', '{"n":2}']
        assert await store.load_states([]) == []


class TestIdentityStore:
    """`IdentityStore`: appending outside a turn, joining customers and
    separating identities."""

    covers: ClassVar[type] = IdentityStore

    async def test_append_adds_to_the_history_outside_a_turn(self, store: ContextStore) -> None:
        assert await save(store, "c1", entry("hi", ts=1.0))
        await store.append("c1", [entry("from an agent", ts=2.0, sender="agent")])
        assert [e.text for e in await store.history("c1", 10)] == ["hi", "from an agent"]

    async def test_merge_joins_histories_in_time_order_and_moves_identities(
        self, store: ContextStore,
    ) -> None:
        web = await store.resolve_customer(WEB, "web-customer")
        telegram = await store.resolve_customer(TELEGRAM, "tg-customer")
        assert await save(store, web, entry("w1", ts=1.0), entry("w3", ts=3.0), state='{"web":1}')
        loaded = await store.lock_and_load(telegram, token="t", ttl_seconds=5, message_key=None)
        assert loaded.locked
        assert await store.save_and_unlock(
            telegram, token="t", state='{"tg":1}',
            entries=[entry("t2", ts=2.0), entry("t4", ts=4.0)], message_key=None,
            identity=TELEGRAM, address=Address("telegram", "5551234"),
        )
        await store.merge(telegram, web, lock_ttl_seconds=5)
        assert set(await store.addresses(web)) == {"telegram"}
        assert [e.text for e in await store.history(web, 10)] == ["w1", "t2", "w3", "t4"]
        assert await store.load_state(web) == '{"web":1}'
        assert await store.resolve_customer(TELEGRAM, "other") == web
        assert await store.identities(web) == [TELEGRAM, WEB]
        assert (await store.lock_and_load(telegram, token="x", ttl_seconds=5,
                                          message_key=None)).moved
        # Both locks were released.
        assert (await store.lock_and_load(web, token="y", ttl_seconds=5, message_key=None)).locked

    async def test_a_merge_carries_dedup_marks_and_refuses_a_gone_customer(
        self, store: ContextStore,
    ) -> None:
        import pytest

        from bot.core.errors import CustomerGone

        assert await save(store, "src", entry("hi"), key="m-1")
        assert await save(store, "dst", entry("there"), key="m-2")
        await store.merge("src", "dst", lock_ttl_seconds=5)
        again = await store.lock_and_load("dst", token="t", ttl_seconds=5, message_key="m-1")
        assert again.duplicate
        with pytest.raises(CustomerGone):
            await store.merge("other", "src", lock_ttl_seconds=5)
        await store.erase("dst")
        with pytest.raises(CustomerGone):
            await store.merge("other", "dst", lock_ttl_seconds=5)

    async def test_merging_again_into_the_same_target_changes_nothing(
        self, store: ContextStore,
    ) -> None:
        import pytest

        from bot.core.errors import CustomerGone

        web = await store.resolve_customer(WEB, "web-customer")
        telegram = await store.resolve_customer(TELEGRAM, "tg-customer")
        assert await save(store, web, entry("w1", ts=1.0))
        loaded = await store.lock_and_load(telegram, token="t", ttl_seconds=5, message_key="m")
        assert loaded.locked
        assert await store.save_and_unlock(telegram, token="t", state="{}",
                                           entries=[entry("t2", ts=2.0)], message_key="m",
                                           identity=TELEGRAM)
        await store.merge(telegram, web, lock_ttl_seconds=5)
        # Run again (as after a crash that hid whether it finished): done already.
        await store.merge(telegram, web, lock_ttl_seconds=5)
        assert [e.text for e in await store.history(web, 10)] == ["w1", "t2"]
        assert await store.identities(web) == [TELEGRAM, WEB]
        assert await store.resolve_customer(TELEGRAM, "other") == web
        with pytest.raises(CustomerGone):
            await store.merge(telegram, "someone-else", lock_ttl_seconds=5)

    async def test_a_merge_over_the_history_cap_keeps_the_newest_entries(
        self, store: ContextStore,
    ) -> None:
        cap = store.limits.history_max
        # Interleaved in time: 2/3 of a cap each, so together they are over it.
        count = cap * 2 // 3
        assert await save(store, "src", *(entry(f"s{i}", ts=float(2 * i)) for i in range(count)))
        assert await save(store, "dst",
                          *(entry(f"d{i}", ts=float(2 * i + 1)) for i in range(count)))
        await store.merge("src", "dst", lock_ttl_seconds=5)
        every = sorted([entry(f"s{i}", ts=float(2 * i)) for i in range(count)]
                       + [entry(f"d{i}", ts=float(2 * i + 1)) for i in range(count)],
                       key=lambda e: e.ts)
        kept = await store.history("dst", 1000)
        assert [e.text for e in kept] == [e.text for e in every[-cap:]]
        assert kept[-1].text == f"d{count - 1}" and len(kept) == cap

    async def test_unlink_detaches_one_identity(self, store: ContextStore) -> None:
        customer = await store.resolve_customer(WEB, "c1")
        await store.resolve_customer(TELEGRAM, "c1-other")
        assert await save(store, customer, entry("hi"))
        await store.unlink(customer, WEB)
        assert await store.identities(customer) == []
        assert await store.resolve_customer(WEB, "fresh") == "fresh"


class TestTokenStore:
    """`TokenStore`: one-time tokens."""

    covers: ClassVar[type] = TokenStore

    async def test_tokens_are_single_use_even_when_raced(self, store: ContextStore) -> None:
        assert await store.put_token("link:123456", "c1", 60)
        assert not await store.put_token("link:123456", "c2", 60)
        assert await store.peek_token("link:123456") == "c1"
        results = await asyncio.gather(*(store.take_token("link:123456") for _ in range(10)))
        assert results.count("c1") == 1 and results.count(None) == 9
        assert await store.peek_token("link:123456") is None

    async def test_tokens_expire(self, store: ContextStore) -> None:
        assert await store.put_token("short", "v", 1)
        await asyncio.sleep(1.1)  # expiry is the behaviour under test
        assert await store.take_token("short") is None


class TestCounterStore:
    """`CounterStore`: shared counters."""

    covers: ClassVar[type] = CounterStore

    async def test_counters_count_and_expire(self, store: ContextStore) -> None:
        assert [await store.incr("k", 1) for _ in range(3)] == [1, 2, 3]
        assert await store.incr("other", 1) == 1
        await asyncio.sleep(1.1)  # the counter's TTL running out is the behaviour under test
        assert await store.incr("k", 1) == 1


class TestParkingStore:
    """`ParkingStore`: items kept for an operator."""

    covers: ClassVar[type] = ParkingStore

    async def test_parked_items_are_kept_newest_first(self, store: ContextStore) -> None:
        for i in range(3):
            await store.park(f'{{"n":{i}}}')
        assert await store.parked(2) == ['{"n":2}', '{"n":1}']


class TestInboxStore:
    """`InboxStore`: the durable queue of work."""

    covers: ClassVar[type] = InboxStore

    async def test_inbox_hands_out_acknowledges_and_reclaims(self, store: ContextStore) -> None:
        first = await store.inbox_add("one")
        await store.inbox_add("two")
        taken = await store.inbox_take("w1", count=10, block_ms=100)
        assert [(i.payload, i.attempts) for i in taken] == [("one", 1), ("two", 1)]
        assert taken[0].item_id == first
        await store.inbox_ack(taken[0].item_id)
        assert await store.inbox_take("w2", count=10, block_ms=50) == []
        # "two" was never acknowledged: once stale, another worker gets it again.
        await asyncio.sleep(0.25 + 1.0)  # the stale time is the behaviour under test
        again = await store.inbox_take("w2", count=10, block_ms=50)
        assert [(i.payload, i.attempts) for i in again] == [("two", 2)]
        await store.inbox_ack(again[0].item_id)
        assert await store.inbox_take("w3", count=10, block_ms=50) == []

    async def test_a_kept_item_is_not_reclaimed_until_no_longer_kept(
        self, store: ContextStore
    ) -> None:
        await store.inbox_add("one")
        (item,) = await store.inbox_take("w1", count=10, block_ms=100)
        assert item.stale_ms == 200
        # Kept for six stale times, and over the second between looks for stale items.
        for _ in range(12):
            await asyncio.sleep(0.1)
            assert await store.inbox_keep("w1", item.item_id)
        assert await store.inbox_take("w2", count=10, block_ms=50) == []
        assert not await store.inbox_keep("w2", item.item_id)  # not w2's to keep
        await asyncio.sleep(0.25 + 1.0)  # no longer kept: the stale time is under test
        (again,) = await store.inbox_take("w2", count=10, block_ms=50)
        assert (again.item_id, again.attempts) == (item.item_id, 2)
        assert not await store.inbox_keep("w1", item.item_id)

    async def test_inbox_take_wakes_on_a_new_item(self, store: ContextStore) -> None:
        waiting = asyncio.create_task(store.inbox_take("w1", count=1, block_ms=60_000))
        async with asyncio.timeout(10):
            while not await takers_blocked(store):
                await asyncio.sleep(0.01)
        # Blocked on an empty inbox, not returned empty-handed.
        assert not waiting.done()
        await store.inbox_add("late")
        # Well before its block time runs out: the new item woke it.
        items = await asyncio.wait_for(waiting, 10)
        assert [i.payload for i in items] == ["late"]
        assert await takers_blocked(store) == 0
