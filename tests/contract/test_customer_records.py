"""The `CustomerRecordStore` contract, and what `TurnStore.erase` promises
with it: nothing kept about an erased customer, nor about the customers
joined into them, is left for the store to give back; everyone else's data
stays. Every test runs on the memory and the Redis store."""

from __future__ import annotations

import inspect
import json
from typing import ClassVar

from bot.core.conversation import ConversationState, LinkOffer
from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.ports import ContextStore, CustomerRecordStore
from bot.core.privacy import erasable, exportable, records_of

TELEGRAM = ChannelIdentity("telegram", "5551234")
SLACK = ChannelIdentity("slack", "T0TEAM:U0ERASE")
WEB = ChannelIdentity("web", "w-erase-me")
BYSTANDER = ChannelIdentity("telegram", "55512345")  # its id holds the customer's digits


def entry(text: str, channel: str, ts: float) -> HistoryEntry:
    return HistoryEntry(sender="customer", channel=channel, text=text, ts=ts)


async def write(store: ContextStore, identity: ChannelIdentity, key: str,
                state: ConversationState | None = None) -> str:
    """A turn of `identity` (its message `key`), as the engine saves one; its customer."""
    customer = await store.resolve_customer(identity, f"c-{identity.user_id}")
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=key,
                                       identity=identity)
    assert loaded.locked
    saved = await store.save_and_unlock(
        customer, token="t", state=(state or ConversationState(turns=1)).to_json(),
        entries=[entry(key, identity.channel, 1.0)], message_key=key, identity=identity)
    assert saved
    return customer


class TestCustomerRecordStore:
    """`CustomerRecordStore`: what erase and export need, recorded as written."""

    covers: ClassVar[type] = CustomerRecordStore

    def test_each_store_offers_the_slice_with_its_signatures(self, store: ContextStore) -> None:
        assert records_of(store) is store and exportable(store) is store
        assert erasable(store) is store
        for name, wanted in inspect.getmembers(CustomerRecordStore, inspect.isfunction):
            if name.startswith("_"):
                continue
            offered = getattr(type(store), name)
            assert inspect.iscoroutinefunction(offered), name
            assert inspect.signature(offered).parameters.keys() == \
                inspect.signature(wanted).parameters.keys(), name

    async def test_a_merge_records_who_was_joined_in_directly_or_not(
        self, store: ContextStore
    ) -> None:
        target = await write(store, TELEGRAM, "m1")
        middle = await write(store, SLACK, "m2")
        first = await write(store, WEB, "m3")
        await store.merge(first, middle, lock_ttl_seconds=5)
        assert await records_of(store).merged_ids(middle) == [first]
        await store.merge(middle, target, lock_ttl_seconds=5)
        assert await records_of(store).merged_ids(target) == sorted([first, middle])
        assert await records_of(store).merged_ids(await write(store, BYSTANDER, "m4")) == []

    async def test_erase_leaves_nothing_of_the_customer_and_those_joined_in(
        self, store: ContextStore
    ) -> None:
        target = await write(store, TELEGRAM, "m1")
        joined = await write(store, SLACK, "m2")
        await store.merge(joined, target, lock_ttl_seconds=5)
        bystander = await write(store, BYSTANDER, "m9")
        await store.erase(target)
        records = records_of(store)
        for gone in (target, joined):
            assert await store.load_state(gone) is None
            assert await store.history(gone, 10) == []
            assert await store.identities(gone) == []
            assert await records.merged_ids(gone) == []
            # Workers that cached either id are sent to resolve again.
            assert (await store.lock_and_load(gone, token="x", ttl_seconds=5,
                                              message_key=None)).moved
        # Both identities start afresh; their old messages are new messages now.
        for identity, key in ((TELEGRAM, "m1"), (SLACK, "m2")):
            fresh = await store.resolve_customer(identity, f"new-{identity.channel}")
            assert fresh == f"new-{identity.channel}"
            loaded = await store.lock_and_load(fresh, token="t", ttl_seconds=5,
                                               message_key=key, identity=identity)
            assert loaded.locked and not loaded.duplicate
            await store.unlock(fresh, token="t")
        assert await store.identities(bystander) == [BYSTANDER]
        assert await store.resolve_customer(BYSTANDER, "other") == bystander

    async def test_erase_takes_the_tokens_issued_for_the_customer_and_those_joined_in(
        self, store: ContextStore
    ) -> None:
        target = await write(store, TELEGRAM, "m1")
        joined = await write(store, SLACK, "m2")
        bystander = await write(store, BYSTANDER, "m3")
        records = records_of(store)
        for customer, code in ((target, "AAAA2222"), (joined, "BBBB3333"),
                               (bystander, "CCCC4444")):
            keys = [f"link:{code}", f"resume:n-{code}"]
            for key in keys:
                assert await store.put_token(key, json.dumps({"customer": customer}), 600)
            await records.note_tokens(customer, keys, 600)
        await store.merge(joined, target, lock_ttl_seconds=5)
        await store.erase(target)
        for code in ("AAAA2222", "BBBB3333"):
            assert await store.peek_token(f"link:{code}") is None
            assert await store.peek_token(f"resume:n-{code}") is None
        assert await store.peek_token("link:CCCC4444") is not None
        assert await store.peek_token("resume:n-CCCC4444") is not None

    async def test_erase_resets_what_is_counted_under_the_customer_or_their_identities(
        self, store: ContextStore
    ) -> None:
        customer = await write(store, TELEGRAM, "m1")
        bystander = await write(store, BYSTANDER, "m2")
        named = [f"rate:codes-cust:{customer}", f"rate:handoffs-cust:{customer}",
                 "link-wrong:id:telegram:5551234"]
        others = [f"rate:codes-cust:{bystander}", "link-wrong:id:telegram:55512345",
                  "link-wrong:addr:10.0.0.1"]
        for name in named + others:
            assert await store.incr(name, 600) == 1
        theirs = ["link-wait:id:telegram:5551234", "answered:telegram:5551234:77"]
        kept = ["link-wait:id:telegram:55512345", "answered:telegram:55512345:77",
                "answered:web:s1:5551234"]
        for token in theirs + kept:
            assert await store.put_token(token, "1", 600)
        await store.erase(customer)
        assert [await store.incr(name, 600) for name in named] == [1, 1, 1]
        assert [await store.incr(name, 600) for name in others] == [2, 2, 2]
        assert [await store.peek_token(token) for token in theirs] == [None, None]
        assert [await store.peek_token(token) for token in kept] == ["1", "1", "1"]

    async def test_erase_drops_parked_and_queued_items_that_hold_their_ids(
        self, store: ContextStore
    ) -> None:
        target = await write(store, TELEGRAM, "m1")
        joined = await write(store, SLACK, "m2")
        await store.merge(joined, target, lock_ttl_seconds=5)
        update = {"update_id": 9, "message": {"from": {"id": 5551234}, "chat": {"id": 5551234},
                                              "text": "my parcel"}}
        slack_item = {"source": "slack", "data": {"user_id": SLACK.user_id, "text": "hi"}}
        theirs = [json.dumps({"kind": "update", "update": update}),
                  json.dumps({"payload": json.dumps(slack_item), "error": "KeyError"})]
        # Another customer's, whose numbers merely contain the customer's digits.
        other_update = {"update_id": 5551234, "message": {"from": {"id": 55512345},
                                                          "text": "call 5551234"}}
        kept = json.dumps({"kind": "update", "update": other_update})
        for record in (*theirs, kept):
            await store.park(record)
        other_item = {"source": "slack", "data": {"user_id": "T0TEAM:U0OTHER"}}
        # Queued without a lane, and in their sender's lane.
        for payload, lane in ((slack_item, None), (slack_item, "slack:T0TEAM:U0ERASE"),
                              (other_item, None), (other_item, "slack:T0TEAM:U0OTHER")):
            await store.inbox_add(json.dumps(payload), lane=lane)
        await store.erase(target)
        assert await store.parked(10) == [kept]
        handed: list[str] = []
        for _ in range(3):  # a lane hands out one item per take
            handed.extend(i.payload for i in await store.inbox_take("w1", count=10,
                                                                    block_ms=50))
        assert sorted(handed) == [json.dumps(other_item)] * 2

    async def test_erase_withdraws_a_link_offer_naming_them_from_another_customer(
        self, store: ContextStore
    ) -> None:
        customer = await write(store, TELEGRAM, "m1")
        offer = LinkOffer(ask="link", customer_id=customer, channel="telegram",
                          resume=entry("What is your order number?", "telegram", 2.0))
        holder = await write(store, BYSTANDER, "m2",
                             ConversationState(turns=4, pending_link=offer))
        await records_of(store).note_offer(customer, holder)
        await store.erase(customer)
        state = ConversationState.from_json(await store.load_state(holder))
        assert state.pending_link is None and state.turns == 4
        assert customer not in (await store.load_state(holder) or "")
        assert [e.text for e in await store.history(holder, 10)] == ["m2"]
