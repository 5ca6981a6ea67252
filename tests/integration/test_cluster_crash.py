"""A merge or an erase that stops after any of its steps (the worker died)
is finished by running it again, or by the next turn, on one Redis and on a
Redis Cluster: nothing is lost, nothing is there twice, nothing is left.

Each step of these operations touches one hash slot (on a cluster no script
or MULTI may span two); a test runs the first steps alone, as a worker that
died after them would have, then recovers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import StoreLimits
from context_store import RedisContextStore
from context_store.redis_erase import ERASE_STEPS
from context_store.redis_merge import MERGE_STEPS
from tests.support.linking_rig import Person, code_in, make
from tests.support.privacy_rig import keyspace

WEB = ChannelIdentity("web", "w-target")
TELEGRAM = ChannelIdentity("telegram", "4242")
SLACK = ChannelIdentity("slack", "T1:U4242")
JOINING = ChannelIdentity("web", "w-joining")  # resolved, never wrote: passed as `also`
WEEK = 7 * 86400
DAY = 86400


@pytest.fixture
async def store(redis_or_cluster_url: str) -> AsyncIterator[RedisContextStore]:
    # Retention longer than the `moved` marker's day, to tell their lifetimes apart.
    opened = RedisContextStore.from_url(redis_or_cluster_url,
                                        limits=StoreLimits(retention_seconds=WEEK))
    yield opened
    await opened.close()


def entry(text: str, channel: str, ts: float) -> HistoryEntry:
    return HistoryEntry(sender="customer", channel=channel, text=text, ts=ts)


async def turn(store: RedisContextStore, identity: ChannelIdentity, key: str,
               *entries: HistoryEntry) -> str:
    customer = await store.resolve_customer(identity, f"c-{identity.user_id}")
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=key,
                                       identity=identity)
    assert loaded.locked
    assert await store.save_and_unlock(
        customer, token="t", state='{"turns":1}', entries=entries, message_key=key,
        identity=identity, address=Address(identity.channel, identity.user_id))
    return customer


async def two_customers(store: RedisContextStore) -> tuple[str, str]:
    """The target wrote on the web; the source on Telegram and Slack."""
    target = await turn(store, WEB, "m-web", entry("t1", "web", 1.0), entry("t3", "web", 3.0))
    source = await turn(store, TELEGRAM, "m-tg", entry("s2", "telegram", 2.0))
    assert await turn(store, SLACK, "m-slack", entry("s4", "slack", 4.0)) == "c-T1:U4242"
    await store.merge("c-T1:U4242", source, lock_ttl_seconds=5)  # Slack joined Telegram earlier
    assert await store.resolve_customer(JOINING, source) == source
    return source, target


async def assert_joined(store: RedisContextStore, source: str, target: str) -> None:
    """What a merge that ran through leaves: everything once, under the target."""
    assert [e.text for e in await store.history(target, 50)] == ["t1", "s2", "t3", "s4"]
    assert await store.identities(target) == sorted([WEB, TELEGRAM, SLACK, JOINING])
    for identity in (WEB, TELEGRAM, SLACK, JOINING):
        assert await store.resolve_customer(identity, "new") == target, identity
    assert set(await store.addresses(target)) == {"web", "telegram", "slack"}
    assert sorted(await store.merged_ids(target)) == sorted([source, "c-T1:U4242"])
    # A redelivery of what the source processed is still a duplicate.
    for key in ("m-tg", "m-slack"):
        assert (await store.lock_and_load(target, token="x", ttl_seconds=5,
                                          message_key=key)).duplicate
    assert (await store.lock_and_load(source, token="x", ttl_seconds=5, message_key=None)).moved
    assert await store.load_state(source) is None and await store.history(source, 50) == []
    # Both locks are free again (a dead worker's would have run out).
    assert (await store.lock_and_load(target, token="y", ttl_seconds=5, message_key=None)).locked
    await store.unlock(target, token="y")


async def marker_ttl(store: RedisContextStore, customer: str) -> int:
    return int(await store.client.ttl(store.keys.customer(customer, "moved")))


def test_the_steps_are_the_ones_named() -> None:
    assert MERGE_STEPS == ("join", "marks", "retire", "point", "settle")
    assert ERASE_STEPS == ("mark", "lock", "offers", "mappings", "keys", "shared", "markers",
                           "records")


@pytest.mark.parametrize("crashed_after", MERGE_STEPS[:-1])
async def test_a_merge_stopped_after_any_step_is_finished_by_merging_again(
    store: RedisContextStore, crashed_after: str
) -> None:
    source, target = await two_customers(store)
    steps = await store.merge_steps(source, target, also=[JOINING])
    assert steps.names == list(MERGE_STEPS)
    await steps.run(upto=crashed_after)
    await store.merge(source, target, lock_ttl_seconds=5, also=[JOINING])
    await assert_joined(store, source, target)
    # Identities may no longer point at the source: its marker lives its usual day.
    assert 0 < await marker_ttl(store, source) <= DAY


async def test_a_merge_stopped_before_retiring_leaves_the_source_whole(
    store: RedisContextStore,
) -> None:
    source, target = await two_customers(store)
    await (await store.merge_steps(source, target, also=[JOINING])).run(upto="marks")
    # The source still answers its identities, with its own state and history.
    assert await store.resolve_customer(TELEGRAM, "new") == source
    loaded = await store.lock_and_load(source, token="t", ttl_seconds=5, message_key="m-2",
                                       identity=TELEGRAM)
    assert loaded.locked and loaded.state == '{"turns":1}'
    await store.unlock(source, token="t")
    assert [e.text for e in await store.history(source, 50)] == ["s2", "s4"]


@pytest.mark.parametrize("crashed_after", ["retire", "point"])
async def test_after_the_source_retired_each_identitys_next_turn_lands_on_the_target(
    store: RedisContextStore, crashed_after: str
) -> None:
    source, target = await two_customers(store)
    await (await store.merge_steps(source, target, also=[JOINING])).run(upto=crashed_after)
    # Until every identity has moved on, the marker must last as long as they do.
    assert await marker_ttl(store, source) > DAY
    for identity in (TELEGRAM, SLACK, JOINING):
        # A worker whose cache still says the source: the store answers
        # `moved` and points the identity at the target on the way.
        moved = await store.lock_and_load(source, token="t", ttl_seconds=5,
                                          message_key="later", identity=identity)
        assert moved.moved
        assert await store.resolve_customer(identity, "new") == target
        landed = await store.lock_and_load(target, token="t", ttl_seconds=5,
                                           message_key="later", identity=identity)
        assert landed.locked
        await store.unlock(target, token="t")
    await assert_joined(store, source, target)


async def test_the_next_turn_finishes_a_merge_that_stopped_after_joining_the_target(
    store: RedisContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the engine: the worker dies inside the merge after a yes; the joining
    side's next message (its state still holds the pending merge) finishes
    it, and nothing is in the joined history twice."""
    await crash_in_a_link(store, monkeypatch, "join")
    engine, _ = make(store)
    web, telegram = Person(engine, "web", "sess-1"), Person(engine, "telegram", "5551234")
    telegram.n = web.n = 10  # new message ids
    # Answered on its own side (its state still holds the pending merge),
    # then joined with what it just said.
    assert (await telegram.say("still there?"))[0].text == "ok"
    assert await telegram.customer() == await web.customer()
    joined = await store.history(await web.customer(), 50)
    assert len(joined) == len(set(joined))
    texts = [e.text for e in joined]
    assert texts[0] == "where is my order"
    assert texts.index("yes") < texts.index("still there?")
    # The question asked on the web is answered on Telegram.
    assert (await telegram.say("A1001"))[0].text == "Order A1001 has shipped."


async def test_the_next_turn_finishes_a_merge_that_stopped_after_retiring_the_source(
    store: RedisContextStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await crash_in_a_link(store, monkeypatch, "retire")
    engine, _ = make(store)
    web, telegram = Person(engine, "web", "sess-1"), Person(engine, "telegram", "5551234")
    telegram.n = 10
    # Telegram's mapping still names its old customer: the turn follows the
    # marker and answers the web's open question.
    assert (await telegram.say("A1001"))[0].text == "Order A1001 has shipped."
    assert await telegram.customer() == await web.customer()
    joined = await store.history(await web.customer(), 50)
    assert len(joined) == len(set(joined)) and joined[-1].text == "Order A1001 has shipped."
    assert [e.text for e in joined].count("yes") == 1


class Crashed(Exception):
    """The worker died here."""


async def leases_run_out(store: RedisContextStore, *customers: str) -> None:
    """What a dead worker held (locks, outbox claims) runs out in a lock's
    lifetime; the test does not wait for it."""
    for customer in customers:
        await store.client.delete(store.keys.customer(customer, "lock"),
                                  store.keys.customer(customer, "outbox-claim"))


async def crash_in_a_link(store: RedisContextStore, monkeypatch: pytest.MonkeyPatch,
                          after: str) -> None:
    """The web issues a code, Telegram enters it and says yes; the merge that
    follows stops after the step `after`, as if its worker died."""
    engine, _ = make(store)
    web, telegram = Person(engine, "web", "sess-1"), Person(engine, "telegram", "5551234")
    assert (await web.say("where is my order"))[0].text == "What's the order number?"
    code = code_in(await web.say("link"))
    await telegram.say("hello")
    await telegram.say(f"/link {code}")

    async def dies_part_way(source: str, target: str, *, lock_ttl_seconds: float,
                            also: list[ChannelIdentity]) -> None:
        await (await store.merge_steps(source, target, also)).run(upto=after)
        raise Crashed

    with monkeypatch.context() as patched:
        patched.setattr(store, "merge", dies_part_way)
        with pytest.raises(Crashed):
            await telegram.say("yes", payload="link_yes")
    await leases_run_out(store, await web.customer(), await telegram.customer())


@pytest.mark.parametrize("crashed_after", ERASE_STEPS[:-1])
async def test_an_erase_stopped_after_any_step_is_finished_by_erasing_again(
    store: RedisContextStore, crashed_after: str
) -> None:
    source, target = await two_customers(store)
    await store.merge(source, target, lock_ttl_seconds=5, also=[JOINING])
    await store.note_tokens(target, ["link:ABCD2345"], 600)
    await store.put_token("link:ABCD2345", f'{{"customer":"{target}"}}', 600)
    await store.incr(f"rate:codes-cust:{target}", 600)
    bystander = await turn(store, ChannelIdentity("telegram", "777"), "m-b",
                           entry("b", "telegram", 5.0))
    steps = store.erase_steps(target)
    assert steps.names == list(ERASE_STEPS)
    await steps.run(upto=crashed_after)
    await leases_run_out(store, target)
    await store.erase(target)
    left = await keyspace(store.client)
    ids = (target, source, "c-T1:U4242")
    for key, value in left.items():
        if key.endswith(":moved"):
            assert value == '""', key  # only empty markers stay
            continue
        assert not any(i in key or i in value for i in ids), (key, value)
    assert await store.load_state(bystander) is not None
    for identity in (WEB, TELEGRAM, SLACK, JOINING):
        assert await store.resolve_customer(identity, "fresh") == "fresh"
