"""Every store implementation offers every slice of the store protocols, its
factory methods give working parts, and each caller asks only for the slices
it uses (it works on a store narrowed to them)."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest
from argon2 import PasswordHasher

from bot.core.bus import Bus, Event
from bot.core.delivery import Senders
from bot.core.engine import Engine
from bot.core.inbox import InboxOptions, InboxWorker, InboxWorkerStore, encode_item
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.outbox import Outbox, OutboxSweeper
from bot.core.ports import ContextStore, CounterStore, DeliveringStore, OutboxStore
from bot.core.rate_limits import Limit, RateLimiter
from bot.handoff.accounts import AgentAuth, AuthStore, NotAuthenticated
from bot.handoff.ports import AgentStore
from context_store import RedisContextStore
from context_store.agents_memory import MemoryAgentStore
from context_store.keys import KeyBuilder
from tests.contract import (
    test_agent_store,
    test_canned_replies,
    test_context_store,
    test_event_queue,
    test_handoff_records,
    test_outbox,
)
from tests.contract.slices import AGENT_SLICES, BESIDE_SLICES, methods, narrowed
from tests.contract.slices import CONTEXT_SLICES as LISTED_SLICES
from tests.support.policies import EchoMenuPolicy

# What `ContextStore` is made of: the slices listed for every contract
# module, and the outbox, whose contract is `test_outbox`.
CONTEXT_SLICES: tuple[type, ...] = tuple(dict.fromkeys((*LISTED_SLICES, OutboxStore)))


def slice_name(protocol: type) -> str:
    return protocol.__name__


@pytest.mark.parametrize(("whole", "slices"), [
    (ContextStore, CONTEXT_SLICES), (AgentStore, AGENT_SLICES),
], ids=["ContextStore", "AgentStore"])
def test_the_slices_share_no_method_and_make_up_the_whole(
    whole: type, slices: tuple[type, ...]
) -> None:
    every = [name for s in slices for name in methods(s)]
    assert len(every) == len(set(every))
    assert set(every) == methods(whole)
    assert all(issubclass(whole, s) for s in slices)


def test_every_slice_has_its_contract_class() -> None:
    covered = {
        klass.covers
        for module in (test_context_store, test_agent_store, test_outbox, test_canned_replies,
                       test_handoff_records, test_event_queue)
        for klass in vars(module).values()
        if inspect.isclass(klass) and klass.__name__.startswith("Test")
    }
    assert covered == set(CONTEXT_SLICES) | set(AGENT_SLICES) | set(BESIDE_SLICES)


def assert_offers(implementation: object, protocol: type) -> None:
    """`isinstance` against the protocol, and each method a coroutine taking
    the protocol's parameters (names, kinds and defaults)."""
    assert isinstance(implementation, protocol), protocol.__name__
    for name in methods(protocol):
        wanted = getattr(protocol, name)
        offered = getattr(type(implementation), name)
        assert inspect.iscoroutinefunction(offered), name
        assert [(p.name, p.kind, p.default)
                for p in inspect.signature(offered).parameters.values()] == [
            (p.name, p.kind, p.default)
            for p in inspect.signature(wanted).parameters.values()], name


@pytest.mark.parametrize("protocol", [*CONTEXT_SLICES, ContextStore, InboxWorkerStore,
                                      *BESIDE_SLICES],
                         ids=slice_name)
def test_each_store_offers_every_slice(store: ContextStore, protocol: type) -> None:
    assert_offers(store, protocol)


@pytest.mark.parametrize("protocol", [*AGENT_SLICES, AgentStore, AuthStore], ids=slice_name)
def test_the_agent_store_of_each_store_offers_every_slice(
    store: ContextStore, protocol: type
) -> None:
    assert_offers(store.agent_store(), protocol)  # type: ignore[attr-defined]


async def test_the_agent_store_of_each_store_works(store: ContextStore) -> None:
    agents: AgentStore = store.agent_store()  # type: ignore[attr-defined]
    account = test_agent_store.account("ann")
    await agents.put_agent(account)
    assert await agents.get_agent("ann") == account
    await agents.index_queued("c1", 100.0)
    assert [e.customer for e in await agents.queued()] == ["c1"]
    await agents.touch_web(["s1"], "w1", 30)
    assert await agents.web_workers("s1") == {"w1"}


async def test_the_bus_of_each_store_delivers_to_its_subscribers(store: ContextStore) -> None:
    bus = store.bus()  # type: ignore[attr-defined]
    assert isinstance(bus, Bus)
    got: asyncio.Queue[Event] = asyncio.Queue()

    async def handler(event: Event) -> None:
        await got.put(event)

    bus.subscribe("topic", handler)
    await bus.start()
    try:
        await bus.publish("topic", {"n": 1})
        assert await asyncio.wait_for(got.get(), 5) == {"n": 1}
    finally:
        await bus.stop()


async def test_the_parts_of_a_redis_store_share_its_prefix(redis_url: str) -> None:
    store = RedisContextStore.from_url(redis_url, keys=KeyBuilder(prefix="tenant"))
    try:
        await store.agent_store().put_agent(test_agent_store.account("ann"))
        assert await store.client.hexists("tenant:{agents}:accounts", "ann")
        assert store.bus().prefix == "tenant"
    finally:
        await store.close()


CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


async def test_logins_need_only_accounts_sessions_and_attempts() -> None:
    auth = AgentAuth(narrowed(MemoryAgentStore(), AuthStore), hasher=CHEAP)
    await auth.add("ann", "pw-1")
    login = await auth.login("ann", "pw-1", address="10.0.0.1")
    assert (await auth.authenticate(login.token)).username == "ann"
    await auth.logout(login.token)
    with pytest.raises(NotAuthenticated):
        await auth.authenticate(login.token)


async def test_rate_limits_need_only_counters(store: ContextStore) -> None:
    limiter = RateLimiter(narrowed(store, CounterStore))
    limit = Limit("test", 2, 60)
    assert [await limiter.allow(limit, "s1") for _ in range(3)] == [True, True, False]


async def test_the_inbox_worker_needs_only_the_inbox_and_parking(store: ContextStore) -> None:
    narrow = narrowed(store, InboxWorkerStore)
    worker = InboxWorker(store=narrow, options=InboxOptions(max_attempts=1, block_ms=100))
    handled: list[dict[str, object]] = []

    async def fails(data: dict[str, object]) -> None:
        handled.append(data)
        raise ValueError("cannot parse")

    worker.register("chan", fails)
    await store.inbox_add(encode_item("chan", {"n": 1}))
    (item,) = await narrow.inbox_take("w", count=1, block_ms=100)
    await worker.handle(item)
    assert handled == [{"n": 1}]
    (parked,) = [json.loads(p) for p in await store.parked(10)]
    assert parked["error"] == "ValueError: cannot parse"


def test_a_narrowed_store_offers_only_its_slices(store: ContextStore) -> None:
    narrow = narrowed(store, CounterStore)
    assert isinstance(narrow, CounterStore)
    assert not any(isinstance(narrow, s) for s in CONTEXT_SLICES if s is not CounterStore)
    with pytest.raises(AttributeError):
        narrow.park  # noqa: B018


class Recording:
    def __init__(self) -> None:
        self.sent: list[tuple[Address, Outbound]] = []

    async def send(self, address: Address, outbound: Outbound) -> None:
        self.sent.append((address, outbound))


async def test_the_engine_needs_only_turns_and_the_outbox(store: ContextStore) -> None:
    web = Recording()
    engine = Engine(store=narrowed(store, DeliveringStore), policy=EchoMenuPolicy(),
                    senders={"web": web})
    await engine.handle(Inbound(ChannelIdentity("web", "u1"), Address("web", "s1"), "1", "hi"))
    assert [o.text for _, o in web.sent] == ["Hi! What would you like to do?"]


async def test_the_sweeper_needs_only_the_outbox(store: ContextStore) -> None:
    web = Recording()
    sweeper = OutboxSweeper(Outbox(narrowed(store, OutboxStore), Senders({"web": web})))
    assert await sweeper.sweep() == 0
