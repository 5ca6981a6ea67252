"""The contract of `HandoffRecordStore` and `AssignmentStore` (slices of
`AgentStore`) on every agent store: in memory, on one Redis, and on a Redis
Cluster of three masters."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest

from bot.handoff.ports import AgentStore, AssignmentStore, HandoffRecord, HandoffRecordStore
from context_store.agents_memory import MemoryAgentStore
from context_store.agents_redis import RedisAgentStore
from context_store.redis_client import connect

DAY = 86400.0
T0 = 1_800_000_000.123456


def record(name: str, closed_at: float, *, agent: str = "ann",
           first: float | None = 30.5, csat: int | None = None) -> HandoffRecord:
    queued = closed_at - 600.25
    return HandoffRecord(id=name, agent=agent, agent_name=agent.title(), queued_at=queued,
                         claimed_at=queued + 10.0,
                         first_response_at=queued + first if first is not None else None,
                         closed_at=closed_at, csat=csat)


@pytest.fixture
def records(agents: AgentStore) -> HandoffRecordStore:
    """The agent store (`agents`, tests/contract/conftest.py), as its records slice."""
    return agents


@pytest.fixture
def lease(agents: AgentStore) -> AssignmentStore:
    return agents


class TestHandoffRecordStore:
    """`HandoffRecordStore`: closed handoffs by when they were closed."""

    covers: ClassVar[type] = HandoffRecordStore

    async def test_records_come_back_whole_oldest_first_within_the_period(
        self, records: HandoffRecordStore
    ) -> None:
        late, early = record("b", T0 + 50), record("a", T0, first=None, agent="bob")
        middle = record("c", T0 + 20, csat=4)
        for kept in (late, early, middle):
            await records.put_record(kept, 400 * DAY)
        assert await records.records_between(T0, T0 + 51, 10) == [early, middle, late]
        # The start counts, the end does not.
        assert await records.records_between(T0, T0 + 50, 10) == [early, middle]
        assert await records.records_between(T0 + 0.5, T0 + 100, 10) == [middle, late]
        assert await records.records_between(T0, T0 + 100, 2) == [early, middle]
        assert await records.records_between(T0 - DAY, T0, 10) == []

    async def test_a_record_is_rated_once_and_an_unknown_one_never(
        self, records: HandoffRecordStore
    ) -> None:
        await records.put_record(record("a", T0), 400 * DAY)
        assert await records.rate_record("a", 5)
        assert not await records.rate_record("a", 1)
        assert not await records.rate_record("nope", 3)
        [rated] = await records.records_between(T0, T0 + 1, 10)
        assert rated == record("a", T0, csat=5)
        assert await records.records_between(T0 - DAY, T0 + DAY, 10) == [rated]

    async def test_records_older_than_kept_go_when_a_new_one_comes(
        self, records: HandoffRecordStore
    ) -> None:
        await records.put_record(record("old", T0), 30 * DAY)
        await records.put_record(record("recent", T0 + 20 * DAY), 30 * DAY)
        assert len(await records.records_between(0, T0 + 100 * DAY, 10)) == 2
        await records.put_record(record("new", T0 + 31 * DAY), 30 * DAY)
        assert [r.id for r in await records.records_between(0, T0 + 100 * DAY, 10)] == [
            "recent", "new"]
        assert not await records.rate_record("old", 4)


class TestAssignmentStore:
    """`AssignmentStore`: one assigner at a time, and whose turn is next."""

    covers: ClassVar[type] = AssignmentStore

    async def test_the_lease_is_one_holders_until_dropped(self, lease: AssignmentStore) -> None:
        assert await lease.take_assignment_lease("w1", 30)
        assert await lease.take_assignment_lease("w1", 30)  # kept
        assert not await lease.take_assignment_lease("w2", 30)
        await lease.drop_assignment_lease("w2")  # not theirs: nothing changes
        assert not await lease.take_assignment_lease("w2", 30)
        await lease.drop_assignment_lease("w1")
        assert await lease.take_assignment_lease("w2", 30)
        assert not await lease.take_assignment_lease("w1", 30)

    async def test_only_one_of_many_takes_it_at_once(self, lease: AssignmentStore) -> None:
        taken = await asyncio.gather(*(lease.take_assignment_lease(f"w{i}", 30)
                                       for i in range(20)))
        assert taken.count(True) == 1

    async def test_the_last_assigned_agent_is_remembered(self, lease: AssignmentStore) -> None:
        assert await lease.last_assigned() is None
        await lease.set_last_assigned("bob")
        await lease.set_last_assigned("ann")
        assert await lease.last_assigned() == "ann"


# Not the slice: how long each store keeps the lease. A lease runs out by
# itself, so a worker that stops without dropping it holds up nobody for long.
class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_memory_lease_runs_out_unless_its_holder_keeps_it() -> None:
    clock = Clock()
    lease = MemoryAgentStore(clock=clock)
    assert await lease.take_assignment_lease("w1", 30)
    clock.now += 20
    assert await lease.take_assignment_lease("w1", 30)  # now until 1050
    clock.now += 29.9
    assert not await lease.take_assignment_lease("w2", 30)
    clock.now += 0.1
    assert await lease.take_assignment_lease("w2", 30)


async def test_the_redis_lease_expires_and_only_its_holder_extends_it(
    redis_or_cluster_url: str
) -> None:
    client = connect(redis_or_cluster_url)
    try:
        lease = RedisAgentStore(client)
        assert await lease.take_assignment_lease("w1", 30)
        assert 0 < await client.pttl("segue:assign-lease") <= 30_000
        assert await lease.take_assignment_lease("w1", 90)
        assert 30_000 < await client.pttl("segue:assign-lease") <= 90_000
        assert not await lease.take_assignment_lease("w2", 10)
        assert 30_000 < await client.pttl("segue:assign-lease") <= 90_000
        assert await client.get("segue:assign-lease") == "w1"
    finally:
        await client.aclose()
