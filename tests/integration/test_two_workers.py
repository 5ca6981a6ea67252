"""Two workers on one Redis, and on a Redis Cluster (two apps in this
process, each with its own Redis client): the queue, claims, live events and
web chat sockets are one system whichever worker an agent or a customer is
connected to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import (
    AgentClient,
    agent,
    agent_frame,
    hand_off,
    running,
    web_customer,
)


@pytest.fixture
async def workers(redis_or_cluster_url: str) -> AsyncIterator[tuple[RunningApp, RunningApp]]:
    url = redis_or_cluster_url
    async with running(url) as a, running(url) as b:
        assert a.segue.handoff is not None and b.segue.handoff is not None
        assert a.segue.handoff.worker != b.segue.handoff.worker
        yield a, b


async def test_an_agent_on_one_worker_reaches_a_web_chat_on_the_other(
    workers: tuple[RunningApp, RunningApp], http: aiohttp.ClientSession
) -> None:
    a, b = workers
    ann = await (await agent(http, a, "ann")).listen()
    customer = await web_customer(http, b)
    _, notice = await hand_off(customer)
    assert notice["text"] == "You're next in line."  # ann's console on A counts as online
    queued = await ann.event("queued")  # published on B, seen on A
    assert queued["customer"] == customer.customer
    await ann.act(queued["customer"], "claim")
    assert (await agent_frame(customer))["agent_name"] == "ann"

    await customer.silent("hello from worker B")
    live = await ann.event("message", text="hello from worker B")
    assert live["customer"] == customer.customer

    answer = await ann.act(queued["customer"], "messages", {"text": "Hello from worker A"})
    assert (answer["delivered"], answer["channel"]) == (True, "web")
    frame = await agent_frame(customer)
    assert (frame["text"], frame["agent_name"]) == ("Hello from worker A", "ann")
    await customer.close()
    await ann.close()


async def test_two_agents_claiming_at_once_on_two_workers_one_wins(
    workers: tuple[RunningApp, RunningApp], http: aiohttp.ClientSession
) -> None:
    a, b = workers
    for round_ in range(5):
        customer = await web_customer(http, a)
        await hand_off(customer)
        await customer.close()
        ann = await agent(http, a, "ann")
        bob = await agent(http, b, "bob")
        path = f"conversations/{customer.customer}/claim"
        results = await asyncio.gather(ann.call("POST", path), bob.call("POST", path))
        statuses = sorted(status for status, _ in results)
        assert statuses == [200, 409], (round_, results)
        winner = "ann" if results[0][0] == 200 else "bob"
        loser_body = results[1][1] if winner == "ann" else results[0][1]
        assert loser_body["error"] == "already_claimed"
        view = await (ann if winner == "ann" else bob).conversation(customer.customer or "")
        assert view["handoff"]["agent"] == winner
        joined = [e for e in view["history"] if e["sender"] == "agent"]
        assert len(joined) == 1  # one "joined" notice: the loser changed nothing
        queue = (await ann.call("GET", "queue"))[1]
        assert customer.customer not in [q["customer"] for q in queue]


async def test_a_logout_on_one_worker_ends_the_session_on_the_other(
    workers: tuple[RunningApp, RunningApp], http: aiohttp.ClientSession
) -> None:
    a, b = workers
    ann = await agent(http, a, "ann")
    on_b = AgentClient(http, b.base_url)
    on_b.token = ann.token
    assert (await on_b.call("GET", "me"))[0] == 200
    assert (await ann.call("POST", "logout"))[0] == 200
    assert (await on_b.call("GET", "me"))[0] == 401
