"""The console's login limits, its cookie and its queue listing, against the
real app on loopback and a real Redis. Client addresses are told apart the
way a reverse proxy tells them: by the header it is trusted to write."""

from __future__ import annotations

from typing import Any

import aiohttp
import redis.asyncio as aioredis

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import (
    PASSWORDS,
    AgentClient,
    agent,
    hand_off,
    running,
    web_customer,
    wrong_logins,
)

PROXY = {"trusted_proxy_header": "X-Forwarded-For"}
STRANGER, OFFICE, HOME = "203.0.113.7", "198.51.100.20", "192.0.2.55"


async def attempt(http: aiohttp.ClientSession, app: RunningApp, username: str,
                  password: str, *, headers: dict[str, str] | None = None,
                  ) -> tuple[int, str | None, aiohttp.ClientResponse]:
    """One login: its status, its Retry-After, and the response (for cookies)."""
    async with http.post(f"{app.base_url}/agent/api/login", headers=headers,
                         json={"username": username, "password": password}) as resp:
        await resp.read()
        return resp.status, resp.headers.get("Retry-After"), resp


def came_from(address: str, **extra: str) -> dict[str, str]:
    return {"X-Forwarded-For": f"10.9.9.9, {address}", **extra}


async def test_a_strangers_guesses_elsewhere_never_lock_the_agent_out(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_login_max_failures=3, **PROXY) as app:
        statuses = [(await attempt(http, app, "ann", f"guess-{n}",
                                   headers=came_from(STRANGER)))[0] for n in range(10)]
        assert statuses == [401] * 3 + [429] * 7
        status, _, _ = await attempt(http, app, "ann", PASSWORDS["ann"],
                                     headers=came_from(OFFICE))
        assert status == 200
        # The stranger's own address still waits, right password or not.
        status, _, _ = await attempt(http, app, "ann", PASSWORDS["ann"],
                                     headers=came_from(STRANGER))
        assert status == 429


async def test_repeated_failures_from_one_address_wait_longer_and_longer(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_login_max_failures=3, **PROXY) as app:
        client = AgentClient(http, app.base_url)
        await wrong_logins(client, ["ann"] * 3, headers=came_from(STRANGER))
        waits = []
        for _ in range(10):
            status, retry_after, _ = await attempt(http, app, "ann", PASSWORDS["ann"],
                                                   headers=came_from(STRANGER))
            assert status == 429 and retry_after is not None
            waits.append(int(retry_after))
        # Doubling with every attempt (the refused ones count too), capped at minutes.
        assert waits == [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
        status, body = await client.call("POST", "login", {"username": "ann", "password": "x"},
                                         headers=came_from(STRANGER))
        assert (status, body["error"]) == (429, "too_many_logins")
        # Another account from that address is not slowed down.
        status, _, _ = await attempt(http, app, "bob", PASSWORDS["bob"],
                                     headers=came_from(STRANGER))
        assert status == 200


async def test_one_address_may_fail_only_so_often_across_usernames(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_login_max_failures_per_address=4, **PROXY) as app:
        await wrong_logins(AgentClient(http, app.base_url), ["ann", "bob", "root", "zoe"],
                           headers=came_from(STRANGER))
        for name in ("ann", "carl"):
            status, retry_after, _ = await attempt(http, app, name, PASSWORDS["ann"],
                                                   headers=came_from(STRANGER))
            assert status == 429 and retry_after is not None and int(retry_after) > 0
        status, _, _ = await attempt(http, app, "ann", PASSWORDS["ann"], headers=came_from(HOME))
        assert status == 200


async def test_without_a_trusted_header_a_forged_forwarded_for_counts_nothing(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, agent_login_max_failures=2) as app:
        outcomes = [await attempt(http, app, "ann", "x", headers=came_from(f"192.0.2.{n}"))
                    for n in range(4)]
        # Every forged address is the same peer: one pair, slowed down as one.
        assert [(status, after) for status, after, _ in outcomes] == [
            (401, None), (401, None), (429, "2"), (429, "4")]
        status, retry_after, _ = await attempt(http, app, "ann", PASSWORDS["ann"],
                                               headers=came_from(HOME))
        assert (status, retry_after) == (429, "8")


def cookie_of(resp: aiohttp.ClientResponse) -> Any:
    cookie = resp.cookies["segue_agent"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    return cookie


async def test_the_cookie_is_secure_when_the_setting_says_so(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    async with running(redis_url, cookie_secure=True) as app:
        status, _, resp = await attempt(http, app, "ann", PASSWORDS["ann"])
        assert status == 200 and cookie_of(resp)["secure"]


async def test_only_a_trusted_proxy_saying_https_makes_the_cookie_secure(
    http: aiohttp.ClientSession, redis_url: str
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    async with running(redis_url, **PROXY) as app:
        status, _, resp = await attempt(http, app, "ann", PASSWORDS["ann"],
                                        headers=came_from(OFFICE, **https))
        assert status == 200 and cookie_of(resp)["secure"]
        status, _, resp = await attempt(http, app, "ann", PASSWORDS["ann"],
                                        headers=came_from(OFFICE))
        assert status == 200 and not cookie_of(resp)["secure"]
    async with running(redis_url) as app:
        # Without a proxy the operator trusts, anyone could send the header.
        status, _, resp = await attempt(http, app, "ann", PASSWORDS["ann"], headers=https)
        assert status == 200 and not cookie_of(resp)["secure"]


async def reads_processed(client: aioredis.Redis) -> int:
    """Requests Redis has read off its sockets: one per round trip, whatever
    a pipeline carries."""
    stats = await client.info("stats")
    return int(stats["total_reads_processed"])


async def test_the_queue_listing_is_a_few_round_trips_whatever_its_length(
    http: aiohttp.ClientSession, redis_url: str, redis_client: aioredis.Redis
) -> None:
    async with running(redis_url, rate_limits="off") as app:
        customers = []
        for _ in range(60):
            client = await web_customer(http, app)
            await hand_off(client)
            await client.close()
            customers.append(client.customer)
        ann = await agent(http, app, "ann")
        await ann.call("GET", "me")  # the session's connection is open and warm
        before = await reads_processed(redis_client)
        async with http.get(f"{app.base_url}/agent/api/queue",
                            headers={"Authorization": f"Bearer {ann.token}"}) as resp:
            assert resp.status == 200
            listing = await resp.json()
            total = resp.headers.get("X-Total-Count")
        round_trips = await reads_processed(redis_client) - before
    assert [entry["customer"] for entry in listing] == customers
    assert all(set(entry) == {"customer", "since", "reason", "channel", "waited_seconds",
                              "waiting_too_long"} for entry in listing)
    assert [entry["since"] for entry in listing] == sorted(entry["since"] for entry in listing)
    # The session, the index, the states, the count (and this INFO): far below 60.
    assert round_trips <= 12, round_trips
    assert total == "60"
