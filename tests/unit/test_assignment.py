"""Automatic assignment's choices (`bot.handoff.assignment`) on the memory
stores: who is next, who has room, and what is skipped."""

from __future__ import annotations

from dataclasses import replace

from bot.core.bus import LocalBus
from bot.handoff.assignment import Assigner, next_agent
from bot.handoff.desk import DeskError, HandoffDesk
from bot.handoff.ports import AgentAccount
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

    def __init__(self, store: MemoryAgentStore, refuse: set[str] | None = None) -> None:
        self.store = store
        self.refuse = refuse or set()
        self.claims: list[tuple[str, str]] = []

    def capacity_of(self, agent: AgentAccount) -> int:
        return agent.capacity if agent.capacity is not None else 0

    async def claim(self, agent: AgentAccount, customer: str, *, assigned: bool) -> None:
        assert assigned
        if customer in self.refuse:
            raise DeskError("already_claimed", "taken by hand meanwhile")
        self.claims.append((customer, agent.username))
        await self.store.index_claimed(customer, agent.username)


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


async def test_offline_agents_and_a_held_lease_assign_nothing() -> None:
    store = await store_with(ann=3)
    await store.put_agent(AgentAccount("bob", "Bob", "agent", "hash", 3))  # not online
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
