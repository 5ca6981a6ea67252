"""Per-client limits seen from outside: web chat sockets and the agent API
against Segue's real app on loopback and a real Redis."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from context_store import RedisContextStore
from tests.support.app_server import RunningApp, serve_echo, serve_segue, web_settings
from tests.support.redis_server import redis_keys
from tests.support.webchat_client import WebChatClient, raw_hello

TOO_MANY_HANDOFFS = "asked for a person several times"


async def sessions_from(http: aiohttp.ClientSession, app: RunningApp, count: int,
                        forwarded_for: list[str | None]) -> list[aiohttp.ClientWebSocketResponse]:
    """`count` new sessions, the n-th with X-Forwarded-For `forwarded_for[n]`,
    all left open (a closed socket removes its presence key later)."""
    gate = asyncio.Semaphore(20)

    async def one(n: int) -> aiohttp.ClientWebSocketResponse:
        async with gate:
            ws, first = await raw_hello(http, app.ws_url, forwarded_for=forwarded_for[n],
                                        timeout=20)
            assert first["type"] == "session", (n, first)
            assert json.loads((await ws.receive(timeout=20)).data)["type"] == "history"
            return ws

    return list(await asyncio.gather(*(one(n) for n in range(count))))


def assert_rate_limited(frame: dict[str, Any]) -> None:
    assert frame["type"] == "error" and frame["code"] == "rate_limited", frame
    assert isinstance(frame["retry_after"], int) and frame["retry_after"] >= 1, frame


async def flood(client: WebChatClient, texts: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Send each of `texts` under its id without waiting; what each got."""
    for msg_id, text in texts.items():
        await client.say(text, msg_id=msg_id)
    return await client.outcomes(list(texts))


async def customer_texts(http: aiohttp.ClientSession, app: RunningApp,
                         session: str | None) -> list[str]:
    """What the customer of `session` wrote, as a new socket's history shows it."""
    again = await WebChatClient.connect(http, app.ws_url, session=session)
    await again.close()
    return [m["text"] for m in again.history if m["sender"] == "customer"]


async def until_accepted(client: WebChatClient, text: str, msg_id: str) -> list[dict[str, Any]]:
    """Send one message again and again, each time after the pause the server
    asks for, until it is acknowledged; the frames up to that ack."""
    for _ in range(10):
        await client.say(text, msg_id=msg_id)
        frame = await client.receive(20)
        while frame["type"] in ("typing", "message"):  # answers to earlier messages
            frame = await client.receive(20)
        if frame["type"] == "ack":
            assert frame["id"] == msg_id
            return [frame]
        assert_rate_limited(frame)
        await asyncio.sleep(frame["retry_after"])  # as the server asks
    raise AssertionError(f"{msg_id} was never accepted")


async def test_a_flood_on_one_socket_is_refused_in_part_and_nothing_refused_is_stored(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    ids = [f"f{n}" for n in range(100)]
    got = await flood(client, {i: f"flood {i}" for i in ids})
    acked = [i for i in ids if got[i]["type"] == "ack"]
    refused = [i for i in ids if got[i]["type"] == "error"]
    for msg_id in refused:
        assert_rate_limited(got[msg_id])
    assert len(acked) >= 20 and refused, (len(acked), len(refused))
    # The socket stays open and keeps answering.
    await client.send({"type": "hello"})
    frame = await client.receive(20)
    while frame["type"] != "error":
        assert frame["type"] in ("message", "typing"), frame
        frame = await client.receive(20)
    assert frame["code"] == "already_hello" and not client.ws.closed
    stored = await customer_texts(http, app, client.session)
    assert stored == [f"flood {i}" for i in acked]
    await client.close()


async def test_a_refused_message_sent_again_after_the_pause_is_processed_once(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    ids = [f"q{n}" for n in range(30)]
    got = await flood(client, {i: f"quick {i}" for i in ids})
    refused = [i for i in ids if got[i]["type"] == "error"]
    assert refused
    retried = refused[0]
    await until_accepted(client, f"quick {retried}", retried)
    # Processed, not taken for a duplicate: it gets its answer now.
    reply = await client.next_message(20)
    assert reply["reply_to"] == retried and reply["text"] == f"You said: quick {retried}"
    # Sent once more: acknowledged again, never answered twice.
    await until_accepted(client, f"quick {retried}", retried)
    await until_accepted(client, "after", "after")
    reply = await client.next_message(20)
    assert reply["reply_to"] == "after"
    stored = await customer_texts(http, app, client.session)
    assert stored.count(f"quick {retried}") == 1 and stored[-1] == "after"
    await client.close()


async def test_the_121st_new_session_from_one_address_is_refused_and_stores_nothing(
    proxied_app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    app = proxied_app
    office = "203.0.113.7"
    sockets = await sessions_from(http, app, 120, [office] * 120)
    before = await redis_keys(redis_client)
    ws, refused = await raw_hello(http, app.ws_url, forwarded_for=office, timeout=20)
    assert_rate_limited(refused)
    assert await redis_keys(redis_client) == before
    # Another address is not held back, nor is a session already open there.
    elsewhere, first = await raw_hello(http, app.ws_url, forwarded_for="203.0.113.8", timeout=20)
    assert first["type"] == "session"
    existing = await WebChatClient.connect(http, app.ws_url, session=first["session"],
                                           forwarded_for=office)
    assert existing.customer == first["customer"]
    for socket in (*sockets, ws, elsewhere, existing.ws):
        await socket.close()


async def test_without_a_trusted_proxy_a_forged_forwarded_for_gains_no_new_sessions(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    forged: list[str | None] = [f"198.51.100.{n}" for n in range(120)]
    sockets = await sessions_from(http, app, 120, forged)
    before = await redis_keys(redis_client)
    ws, refused = await raw_hello(http, app.ws_url, forwarded_for="198.51.100.250", timeout=20)
    assert_rate_limited(refused)
    assert await redis_keys(redis_client) == before
    for socket in (*sockets, ws):
        await socket.close()


async def test_a_busy_office_behind_one_address_is_served_while_a_flood_is_not(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    gate = asyncio.Semaphore(25)

    async def colleague(n: int) -> tuple[WebChatClient, list[dict[str, Any]]]:
        async with gate:
            client = await WebChatClient.connect(http, app.ws_url)
        ids = [f"c{n}-{i}" for i in range(5)]
        await asyncio.gather(*(client.say(f"colleague {i}", msg_id=i) for i in ids))
        got = await client.outcomes(ids)
        return client, list(got.values())

    results = await asyncio.gather(*(colleague(n) for n in range(50)))
    answers = [frame for _, frames in results for frame in frames]
    assert len(answers) == 250
    assert [f for f in answers if f["type"] != "ack"] == []
    # The limits are on all the same: one of them flooding is held back.
    flooder = results[0][0]
    got = await flood(flooder, dict.fromkeys([f"flood{n}" for n in range(40)], "flood"))
    assert any(frame["type"] == "error" for frame in got.values())
    for client, _ in results:
        await client.close()


async def test_with_limits_off_nothing_is_held_back(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with serve_echo(redis_url, rate_limits="off") as app:
        sockets = await sessions_from(http, app, 130, [None] * 130)
        client = await WebChatClient.connect(http, app.ws_url)
        got = await flood(client, dict.fromkeys([f"f{n}" for n in range(60)], "flood"))
        assert [f for f in got.values() if f["type"] != "ack"] == []
        # Nor are wrong link codes slowed down.
        issuer = await WebChatClient.connect(http, app.ws_url)
        [issued] = await issuer.turn("link")
        code = issued["text"].split("link code is ", 1)[1].split(".", 1)[0]
        for _ in range(6):
            [wrong] = await client.turn("link 2222-2222")
            assert wrong["text"].startswith("That code is not valid")
        [question] = await client.turn(f"link {code}")
        assert "Yes, link it" in [b["title"] for b in question["buttons"]]
        for socket in (*sockets, client.ws, issuer.ws):
            await socket.close()


async def test_the_61st_request_for_a_person_from_one_address_is_not_queued(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    # The demo bot, with a console account to look at the queue.
    async with serve_segue(web_settings(redis_url, agents="ann:a-long-password:admin"),
                           store=RedisContextStore.from_url(redis_url)) as app:
        gate = asyncio.Semaphore(10)

        async def ask_for_a_person() -> WebChatClient:
            async with gate:
                client = await WebChatClient.connect(http, app.ws_url)
                await client.turn("/agent", expect=2)
                await client.close()
                return client

        queued = await asyncio.gather(*(ask_for_a_person() for _ in range(60)))
        last = await WebChatClient.connect(http, app.ws_url)
        msg_id = await last.say("/agent")
        frame = await last.next_message(20)
        assert frame.get("reply_to") == msg_id, frame
        assert TOO_MANY_HANDOFFS in frame["text"]
        login = {"username": "ann", "password": "a-long-password"}
        async with http.post(f"{app.base_url}/agent/api/login", json=login) as resp:
            assert resp.status == 200
            token = (await resp.json())["token"]
        auth = {"Authorization": f"Bearer {token}"}
        async with http.get(f"{app.base_url}/agent/api/queue", headers=auth) as resp:
            assert resp.status == 200
            waiting = [entry["customer"] for entry in await resp.json()]
            total = resp.headers["X-Total-Count"]
        assert total == "60" and len(waiting) == 60
        assert set(waiting) == {client.customer for client in queued}
        assert last.customer not in waiting
        await last.close()


@pytest.mark.parametrize("workers", [1, 4])
async def test_each_of_several_workers_holds_its_share_of_an_addresses_message_rate(
    redis_url: str, http: aiohttp.ClientSession, workers: int
) -> None:
    """With `--workers N` the kernel spreads one address's sockets over the N
    workers; each counts 1/N of the per-address rate, so together they hold
    the whole. Here one process is one of four: 200 messages from one
    address at once (10 on each of 20 sessions, within each session's own
    burst) pass with one worker; as one of four it passes about a quarter of
    the address's burst of 400."""
    async with serve_echo(redis_url, workers=workers) as app:
        clients = [await WebChatClient.connect(http, app.ws_url) for _ in range(20)]
        outcomes = await asyncio.gather(*(
            flood(client, {f"s{n}-{i}": f"message {i}" for i in range(10)})
            for n, client in enumerate(clients)))
        frames = [frame for got in outcomes for frame in got.values()]
        accepted = sum(frame["type"] == "ack" for frame in frames)
        for frame in frames:
            if frame["type"] != "ack":
                assert_rate_limited(frame)
        if workers == 1:
            assert accepted == 200
        else:
            assert 100 <= accepted <= 105, accepted
        for client in clients:
            await client.close()
