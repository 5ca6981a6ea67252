"""Automatic assignment (docs/agent-console.md "Assignment"): waiting
conversations go round-robin to agents with the console open, each up to
their capacity; against the real app on loopback and a real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest

from bot.handoff.assignment import Assigner
from tests.support.app_server import RunningApp
from tests.support.handoff_rig import (
    AgentClient,
    agent,
    agent_frame,
    hand_off,
    running,
    web_customer,
)
from tests.support.webchat_client import WebChatClient


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        yield session


async def with_capacity(app: RunningApp, **capacities: int) -> None:
    assert app.segue.handoff is not None
    store = app.segue.handoff.agents
    for name, capacity in capacities.items():
        account = await store.get_agent(name)
        assert account is not None
        await store.put_agent(replace(account, capacity=capacity))


def assigner_of(app: RunningApp) -> Assigner:
    assert app.segue.handoff is not None
    return app.segue.handoff.assigner


async def waiting_customer(http: aiohttp.ClientSession, app: RunningApp) -> WebChatClient:
    client = await web_customer(http, app)
    await hand_off(client)
    return client


async def held(app: RunningApp) -> dict[str, str]:
    assert app.segue.handoff is not None
    return await app.segue.handoff.agents.claimed()


async def test_two_agents_of_capacity_one_get_one_each_and_the_third_waits_for_a_free_place(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url) as app:
        await with_capacity(app, ann=1, bob=1)
        root = await (await agent(http, app, "root")).listen()  # an admin sees every event
        ann, bob = await agent(http, app, "ann"), await agent(http, app, "bob")
        await ann.listen()
        await bob.listen()

        first = await waiting_customer(http, app)
        one = await root.event("assigned")
        second = await waiting_customer(http, app)
        two = await root.event("assigned")
        assert [one["customer"], two["customer"]] == [first.customer, second.customer]
        assert {one["agent"], two["agent"]} == {"ann", "bob"}
        # The customer hears a person joined, as with a claim by hand.
        assert (await agent_frame(first))["text"].endswith("has joined the conversation.")
        view = await root.conversation(first.customer or "")
        assert view["handoff"]["agent"] == one["agent"]
        assert ("internal", "assigned", f"Assigned to {one['agent']} automatically") in [
            (e["sender"], e.get("event"), e["text"]) for e in view["history"]]

        third = await waiting_customer(http, app)
        assert await assigner_of(app).assign_waiting() == []  # nobody has a free place
        status, queue = await root.call("GET", "queue")
        assert [(item["customer"], item["waiting_too_long"]) for item in queue] == [
            (third.customer, False)]  # SEGUE_QUEUE_ALERT_SECONDS is 300 by default

        holder: AgentClient = ann if one["agent"] == "ann" else bob
        await holder.act(first.customer or "", "close")
        freed = await root.event("assigned")
        assert (freed["customer"], freed["agent"]) == (third.customer, one["agent"])
        assert Counter((await held(app)).values()) == {"ann": 1, "bob": 1}
        for console in (root, ann, bob):
            await console.close()  # so the server stops at once
        for client in (first, second, third):
            await client.close()


async def test_an_agent_without_the_console_open_gets_nothing(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url) as app:
        await with_capacity(app, ann=1, bob=5)
        root = await (await agent(http, app, "root")).listen()
        ann = await (await agent(http, app, "ann")).listen()
        await agent(http, app, "bob")  # logged in, no console open
        first = await waiting_customer(http, app)
        assert (await root.event("assigned"))["agent"] == "ann"
        second = await waiting_customer(http, app)
        assert await assigner_of(app).assign_waiting() == []
        assert await held(app) == {first.customer: "ann"}
        await ann.close()
        status, queue = await root.call("GET", "queue")
        assert [item["customer"] for item in queue] == [second.customer]
        await root.close()
        for client in (first, second):
            await client.close()


async def test_with_capacity_zero_nobody_is_assigned_and_claiming_by_hand_works(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url) as app:  # SEGUE_AGENT_CAPACITY is 0 by default
        ann = await (await agent(http, app, "ann")).listen()
        client = await waiting_customer(http, app)
        assert await assigner_of(app).assign_waiting() == []
        assert await held(app) == {}
        await ann.act(client.customer or "", "claim")
        assert await held(app) == {client.customer: "ann"}
        await ann.close()
        await client.close()


async def test_the_setting_gives_every_online_agent_the_same_capacity_but_no_admin(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_capacity=2) as app:
        await with_capacity(app, bob=0)  # an account's own capacity wins
        root = await (await agent(http, app, "root")).listen()
        ann = await (await agent(http, app, "ann")).listen()
        bob = await (await agent(http, app, "bob")).listen()
        clients = [await waiting_customer(http, app) for _ in range(3)]
        assigned = [await root.event("assigned") for _ in range(2)]
        assert {e["agent"] for e in assigned} == {"ann"}
        assert await assigner_of(app).assign_waiting() == []
        assert sorted((await held(app)).items()) == sorted(
            (c.customer, "ann") for c in clients[:2])
        status, agents = await root.call("GET", "agents")
        by_name = {a["username"]: (a["capacity"], a["open"], a["online"])
                   for a in agents["agents"]}
        assert by_name == {"ann": (2, 2, True), "bob": (0, 0, True), "root": (0, 0, True)}
        # An admin with a capacity of their own is given conversations too.
        await with_capacity(app, root=1)
        await assigner_of(app).assign_waiting()  # unless the pass every 2 s came first
        given = await root.event("assigned")
        assert (given["customer"], given["agent"]) == (clients[2].customer, "root")
        for console in (root, ann, bob):
            await console.close()
        for client in clients:
            await client.close()


async def test_the_queue_flags_a_wait_longer_than_the_setting(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    # A microsecond: any wait is longer, by the round trips the queue takes.
    async with running(redis_url, queue_alert_seconds=0.000001) as app:
        root = await agent(http, app, "root")
        client = await waiting_customer(http, app)
        status, queue = await root.call("GET", "queue")
        assert [(item["customer"], item["waiting_too_long"]) for item in queue] == [
            (client.customer, True)]
        await client.close()


async def test_two_assigners_at_once_never_pass_a_capacity(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url) as app:
        await with_capacity(app, ann=1, bob=1)
        handoff = app.segue.handoff
        assert handoff is not None
        # Stopped, so only the two below assign.
        await handoff.assigner.stop()
        for name in ("ann", "bob"):
            await handoff.agents.touch_agent(name, "elsewhere", 60)
        for _ in range(4):
            await waiting_customer(http, app)
        others = [Assigner(handoff.desk, handoff.agents, handoff.bus, f"worker-{i}")
                  for i in range(4)]
        for _ in range(3):
            await asyncio.gather(*(a.assign_waiting() for a in others))
        assert Counter((await held(app)).values()) == {"ann": 1, "bob": 1}
        assert await handoff.agents.queue_length() == 2
