"""Automatic assignment's choices (`bot.handoff.assignment`) on the memory
stores: who is next, who has room, and what is skipped."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from bot.core.bus import LocalBus
from bot.core.errors import LockTimeout, StoreUnavailable
from bot.handoff.assignment import Assigner, next_agent
from bot.handoff.desk import AGENTS_TOPIC, DeskError, HandoffDesk
from bot.handoff.ports import AgentAccount, QueueEntry
from context_store.agents_memory import MemoryAgentStore


def test_round_robin_starts_after_the_last_one_and_wraps() -> None:
    free = ["ann", "bob", "cid"]
    assert next_agent(free, None) == "ann"
    assert next_agent(free, "ann") == "bob"
    assert next_agent(free, "bob") == "cid"
    assert next_agent(free, "cid") == "ann"
    # The last one has no room any more (or went offline): the next name after it.
    assert next_agent(["ann", "cid"], "bob") == "cid"
    assert next_agent(["ann"], "zed") == "ann"


class ClaimingDesk:
    """The desk's claim and capacity, recorded: the assigner's choices alone."""

    def __init__(self, store: MemoryAgentStore, refuse: set[str] | None = None,
                 errors: dict[str, Exception] | None = None) -> None:
        self.store = store
        self.errors = errors or {}
        for customer in refuse or ():
            self.errors[customer] = DeskError("already_claimed", "taken by hand meanwhile")
        self.claims: list[tuple[str, str]] = []
        self.claimed = asyncio.Event()

    def capacity_of(self, agent: AgentAccount) -> int:
        return agent.capacity if agent.capacity is not None else 0

    async def claim(self, agent: AgentAccount, customer: str, *, assigned: bool) -> None:
        assert assigned
        if customer in self.errors:
            raise self.errors[customer]
        self.claims.append((customer, agent.username))
        await self.store.index_claimed(customer, agent.username)
        self.claimed.set()


async def store_with(**capacities: int | None) -> MemoryAgentStore:
    store = MemoryAgentStore()
    for name, capacity in capacities.items():
        await store.put_agent(AgentAccount(name, name.title(), "agent", "hash", capacity))
        await store.touch_agent(name, "w", 60)
    return store


def assigner(desk: ClaimingDesk, store: MemoryAgentStore) -> Assigner:
    return Assigner(desk, store, LocalBus(), "w1")  # type: ignore[arg-type]


async def test_each_gets_the_oldest_in_turn_up_to_their_capacity() -> None:
    store = await store_with(ann=2, bob=1, cid=0)
    for i, customer in enumerate(["c1", "c2", "c3", "c4", "c5"]):
        await store.index_queued(customer, float(i))
    desk = ClaimingDesk(store)
    assert await assigner(desk, store).assign_waiting() == [
        ("c1", "ann"), ("c2", "bob"), ("c3", "ann")]
    assert await store.last_assigned() == "ann"
    assert [e.customer for e in await store.queued()] == ["c4", "c5"]
    # Nothing is free until someone's conversation closes.
    assert await assigner(desk, store).assign_waiting() == []
    await store.index_closed("c2")
    assert await assigner(desk, store).assign_waiting() == [("c4", "bob")]


async def test_what_was_claimed_meanwhile_is_skipped_without_using_a_place() -> None:
    store = await store_with(ann=1)
    await store.index_queued("taken", 1.0)
    await store.index_queued("free", 2.0)
    desk = ClaimingDesk(store, refuse={"taken"})
    assert await assigner(desk, store).assign_waiting() == [("free", "ann")]


@pytest.mark.parametrize("refusal", [
    DeskError("already_claimed", "taken by hand meanwhile"),
    DeskError("not_in_queue", "back with the bot meanwhile"),
    LockTimeout("in a long turn"),
], ids=str)
async def test_a_conversation_refused_or_busy_stays_for_the_next_pass(
    refusal: Exception
) -> None:
    store = await store_with(ann=1)
    await store.index_queued("refused", 1.0)
    await store.index_queued("free", 2.0)
    desk = ClaimingDesk(store, errors={"refused": refusal})
    assert await assigner(desk, store).assign_waiting() == [("free", "ann")]
    assert [e.customer for e in await store.queued()] == ["refused"]


async def test_a_conversation_gone_meanwhile_leaves_the_queue() -> None:
    store = await store_with(ann=1)
    await store.index_queued("merged", 1.0)
    await store.index_queued("free", 2.0)
    desk = ClaimingDesk(store, errors={
        "merged": DeskError("unknown_customer", "joined into another")})
    assert await assigner(desk, store).assign_waiting() == [("free", "ann")]
    assert await store.queued() == []


class CountingStore(MemoryAgentStore):
    """The memory store, with the names of the reads a pass makes."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def agents_online(self) -> set[str]:
        self.calls.append("agents_online")
        return await super().agents_online()

    async def agents(self) -> list[AgentAccount]:
        self.calls.append("agents")
        return await super().agents()

    async def take_assignment_lease(self, holder: str, ttl_seconds: float) -> bool:
        self.calls.append("take_assignment_lease")
        return await super().take_assignment_lease(holder, ttl_seconds)

    async def queued(self, limit: int | None = None) -> list[QueueEntry]:
        self.calls.append("queued")
        return await super().queued(limit)


async def test_with_no_capacity_a_pass_reads_only_who_is_online_and_the_accounts() -> None:
    store = CountingStore()
    await store.index_queued("c1", 1.0)
    desk = ClaimingDesk(store)
    assert await assigner(desk, store).assign_waiting() == []
    assert store.calls == ["agents_online"]  # nobody online: not even the accounts
    for name, capacity in (("ann", None), ("bob", 0)):
        await store.put_agent(AgentAccount(name, name.title(), "agent", "hash", capacity))
        await store.touch_agent(name, "w", 60)
    store.calls.clear()
    assert await assigner(desk, store).assign_waiting() == []
    assert store.calls == ["agents_online", "agents"]
    assert desk.claims == []


@pytest.mark.parametrize("kind", ["queued", "released", "closed", "transferred", "online",
                                  "moved"])
async def test_an_event_that_brings_work_or_frees_a_place_wakes_the_loop(kind: str) -> None:
    store = await store_with(ann=1)
    await store.index_queued("c1", 1.0)
    desk, bus = ClaimingDesk(store), LocalBus()
    running = Assigner(desk, store, bus, "w1", every_seconds=3600)  # type: ignore[arg-type]
    await running.start()
    try:
        await bus.publish(AGENTS_TOPIC, {"type": kind, "customer": "c1"})
        await asyncio.wait_for(desk.claimed.wait(), 10)
    finally:
        await running.stop()
    assert desk.claims == [("c1", "ann")]


class FailingOnce(MemoryAgentStore):
    """The memory store whose first queue read fails, as Redis away would."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def queued(self, limit: int | None = None) -> list[QueueEntry]:
        if not self.failed:
            self.failed = True
            raise StoreUnavailable("redis away")
        return await super().queued(limit)


async def test_without_events_the_loop_still_runs_and_outlives_a_store_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FailingOnce()
    await store.put_agent(AgentAccount("ann", "Ann", "agent", "hash", 1))
    await store.touch_agent("ann", "w", 60)
    await store.index_queued("c1", 1.0)
    desk = ClaimingDesk(store)
    running = Assigner(desk, store, LocalBus(), "w1",  # type: ignore[arg-type]
                       every_seconds=0.01)
    caplog.set_level(logging.WARNING, "bot.handoff.assignment")
    await running.start()
    try:
        await asyncio.wait_for(desk.claimed.wait(), 10)
    finally:
        await running.stop()
    assert desk.claims == [("c1", "ann")]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "automatic assignment skipped a pass: redis away")]
    # The failed pass gave the lease back.
    assert await store.take_assignment_lease("another-worker", 30)


class SlowClaimingDesk(ClaimingDesk):
    """Its first claim outlasts the lease, and meanwhile another worker takes it."""

    def __init__(self, store: MemoryAgentStore, now: list[float]) -> None:
        super().__init__(store)
        self.now = now

    async def claim(self, agent: AgentAccount, customer: str, *, assigned: bool) -> None:
        await super().claim(agent, customer, assigned=assigned)
        if len(self.claims) == 1:
            self.now[0] += 60
            assert await self.store.take_assignment_lease("another-worker", 30)


async def test_a_pass_that_outlived_its_lease_ends_there() -> None:
    now = [1000.0]
    store = MemoryAgentStore(clock=lambda: now[0])
    await store.put_agent(AgentAccount("ann", "Ann", "agent", "hash", 5))
    await store.touch_agent("ann", "w", 3600)
    for i, customer in enumerate(["c1", "c2", "c3"]):
        await store.index_queued(customer, float(i))
    desk = SlowClaimingDesk(store, now)
    assert await assigner(desk, store).assign_waiting() == [("c1", "ann")]
    assert [e.customer for e in await store.queued()] == ["c2", "c3"]
    # The other worker's lease stays its own.
    assert not await store.take_assignment_lease("w1", 30)


async def test_offline_agents_and_a_held_lease_assign_nothing() -> None:
    store = await store_with(ann=3)
    await store.put_agent(AgentAccount("abe", "Abe", "agent", "hash", 3))  # not online
    await store.index_queued("c1", 1.0)
    desk = ClaimingDesk(store)
    assert await store.take_assignment_lease("another-worker", 30)
    assert await assigner(desk, store).assign_waiting() == []
    await store.drop_assignment_lease("another-worker")
    assert await assigner(desk, store).assign_waiting() == [("c1", "ann")]
    # The pass gave the lease back.
    assert await store.take_assignment_lease("another-worker", 30)


async def test_a_capacity_left_unset_follows_the_desk_default() -> None:
    store = await store_with(ann=None)
    await store.index_queued("c1", 1.0)
    desk = ClaimingDesk(store)
    assert await assigner(desk, store).assign_waiting() == []
    account = await store.get_agent("ann")
    assert account is not None
    await store.put_agent(replace(account, capacity=1))
    assert await assigner(desk, store).assign_waiting() == [("c1", "ann")]


def test_the_assigner_takes_the_real_desk() -> None:
    # The stand-in above has the two desk methods the assigner calls.
    assert {"claim", "capacity_of"} <= set(dir(HandoffDesk))
