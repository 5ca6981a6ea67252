"""What only a Redis Cluster can get wrong: work spread over several nodes
(reads across customers, erase, a merge between customers on two nodes), the
bus's sharded subscriptions when a slot moves or a connection drops, and a
cluster nobody can reach. A real local cluster of three masters."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bot.core.bus import Event
from bot.core.errors import StoreUnavailable
from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.ports import StoreLimits
from context_store import RedisContextStore
from context_store.bus_redis import RedisBus
from tests.support.privacy_rig import keyspace
from tests.support.redis_cluster import ClusterNodes
from tests.support.redis_server import free_port

WEB = ChannelIdentity("web", "s1")


@pytest.fixture
async def store(cluster_url: str) -> AsyncIterator[RedisContextStore]:
    opened = RedisContextStore.from_url(cluster_url, limits=StoreLimits(retention_seconds=3600))
    yield opened
    await opened.close()


def on_each_node(nodes: ClusterNodes, store: RedisContextStore, count: int = 2) -> list[str]:
    """Customer ids whose keys are served by every node, `count` per node."""
    found: dict[int, list[str]] = {port: [] for port in nodes.ports}
    n = 0
    while any(len(ids) < count for ids in found.values()):
        n += 1
        customer = f"spread-{n}"
        ids = found[nodes.serving(store.keys.customer(customer, "state"))]
        if len(ids) < count:
            ids.append(customer)
    return [c for ids in found.values() for c in ids]


async def save(store: RedisContextStore, customer: str, text: str, key: str) -> None:
    loaded = await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key=key)
    assert loaded.locked
    assert await store.save_and_unlock(
        customer, token="t", state=f'{{"who":"{customer}"}}', message_key=key, identity=WEB,
        entries=[HistoryEntry(sender="customer", channel="web", text=text, ts=time.time())])


async def test_one_pipeline_reads_customers_served_by_every_node(
    store: RedisContextStore, redis_cluster_session: ClusterNodes
) -> None:
    customers = on_each_node(redis_cluster_session, store)
    for customer in customers:
        await save(store, customer, "hi", f"m-{customer}")
    # Not a transaction: redis-py's cluster pipeline splits it by node.
    states = await store.load_states([*reversed(customers), "nobody"])
    assert states == [*(f'{{"who":"{c}"}}' for c in reversed(customers)), None]


async def test_a_merge_between_customers_on_two_nodes_carries_everything(
    store: RedisContextStore, redis_cluster_session: ClusterNodes
) -> None:
    nodes = redis_cluster_session
    source, target = on_each_node(nodes, store, count=1)[:2]
    assert nodes.serving(store.keys.customer(source, "x")) != \
        nodes.serving(store.keys.customer(target, "x"))
    for n in range(3):
        await save(store, source, f"s{n}", f"src-{n}")
    await save(store, target, "t", "dst-0")
    await store.merge(source, target, lock_ttl_seconds=5)
    # The source's dedup marks were found on its own node and copied.
    for n in range(3):
        assert (await store.lock_and_load(target, token="x", ttl_seconds=5,
                                          message_key=f"src-{n}")).duplicate
    assert [e.text for e in await store.history(target, 10)] == ["s0", "s1", "s2", "t"]


async def test_erase_finds_what_names_the_customer_on_every_node(
    store: RedisContextStore, redis_cluster_session: ClusterNodes
) -> None:
    customer, *others = on_each_node(redis_cluster_session, store, count=1)
    await save(store, customer, "forget me", "m-1")
    # Counters and tokens have no hash tag: spread over the nodes by their names.
    subjects = [f"rate:handoffs-cust:{customer}", f"link-wrong:id:web:{WEB.user_id}",
                f"rate:codes-cust:{customer}"]
    for subject in subjects:
        await store.incr(subject, 600)
    assert len({redis_cluster_session.serving(store.keys.counter(s)) for s in subjects}) > 1
    await store.inbox_add(f'{{"customer":"{customer}"}}', lane=f"web:{customer}")
    for other in others:
        await save(store, other, "stay", "m-2")
    await store.erase(customer)
    for key, value in (await keyspace(store.client)).items():
        assert customer not in value, key
        assert customer not in key or key.endswith(":moved"), key
    for other in others:
        assert await store.load_state(other) is not None


class Received:
    """What a bus handler was given, to wait for."""

    def __init__(self) -> None:
        self.events: asyncio.Queue[Event] = asyncio.Queue()

    async def __call__(self, event: Event) -> None:
        await self.events.put(event)


@pytest.fixture
async def bus(store: RedisContextStore) -> AsyncIterator[tuple[RedisBus, Received]]:
    bus, received = store.bus(), Received()
    bus.subscribe("agents", received)
    await bus.start()
    yield bus, received
    await bus.stop()


async def subscribers_on(nodes: ClusterNodes, port: int, channel: str) -> int:
    """Shard subscribers of `channel` on that one node."""
    async with aioredis.Redis(port=port, decode_responses=True) as node:
        counts = await node.execute_command("PUBSUB", "SHARDNUMSUB", channel)
    return int(counts[1])


async def wait_for_subscriber(nodes: ClusterNodes, port: int, channel: str) -> None:
    """Until the node on `port` has a shard subscriber on `channel`: the
    reader subscribes again in the background, and nothing announces it."""
    async with asyncio.timeout(10):
        while await subscribers_on(nodes, port, channel) == 0:
            await asyncio.sleep(0.02)


@pytest.fixture
def bus_slot_restored(redis_cluster_session: ClusterNodes) -> Iterator[None]:
    """The bus channel's slot goes back where it was after the test."""
    channel = "segue:bus:agents"
    home = redis_cluster_session.serving(channel)
    yield
    if redis_cluster_session.serving(channel) != home:
        redis_cluster_session.move(channel, home)


async def test_the_bus_is_sharded_and_follows_its_channel_to_another_node(
    store: RedisContextStore, bus: tuple[RedisBus, Received],
    redis_cluster_session: ClusterNodes, bus_slot_restored: None,
) -> None:
    nodes, (events, received) = redis_cluster_session, bus
    channel = "segue:bus:agents"
    home = nodes.serving(channel)
    assert await subscribers_on(nodes, home, channel) == 1  # SSUBSCRIBE, on its node
    await events.publish("agents", {"n": 1})
    assert await asyncio.wait_for(received.events.get(), 5) == {"n": 1}

    elsewhere = next(p for p in nodes.ports if p != home)
    nodes.move(channel, elsewhere)  # resharding: Redis ends the subscription
    await wait_for_subscriber(nodes, elsewhere, channel)
    await events.publish("agents", {"n": 2})  # the publisher follows MOVED
    assert await asyncio.wait_for(received.events.get(), 5) == {"n": 2}
    assert received.events.empty()


async def test_the_bus_subscribes_again_after_its_connection_is_cut(
    bus: tuple[RedisBus, Received], redis_cluster_session: ClusterNodes,
) -> None:
    nodes, (events, received) = redis_cluster_session, bus
    channel = "segue:bus:agents"
    home = nodes.serving(channel)
    with nodes.clients()[nodes.ports.index(home)] as client:
        assert client.client_kill_filter(_type="pubsub") >= 1
    await wait_for_subscriber(nodes, home, channel)
    await events.publish("agents", {"n": 3})
    assert await asyncio.wait_for(received.events.get(), 5) == {"n": 3}


async def test_a_cluster_nobody_answers_is_unavailable_at_once() -> None:
    store = RedisContextStore.from_url(
        f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await store.resolve_customer(WEB, "c1")
        # Well within a platform's webhook timeout: a 503 goes out in time.
        assert time.monotonic() - started < 5
    finally:
        await store.close()
