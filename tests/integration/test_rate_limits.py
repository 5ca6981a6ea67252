"""Per-client limits seen from outside: web chat sockets and the agent API
against Segue's real app on loopback and a real Redis."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.core.settings import Settings
from context_store import RedisContextStore
from tests.support.app_server import RunningApp, serve_segue
from tests.support.policies import EchoMenuPolicy
from tests.support.webchat_client import WebChatClient

SECRET = "rate-limit-tests-secret"
TOO_MANY_HANDOFFS = "asked for a person several times"


def settings(redis_url: str, **extra: Any) -> Settings:
    return Settings(redis_url=redis_url, webchat_secret=SECRET, **extra)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # Over a hundred sockets at once: no cap on the client's side.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


@pytest.fixture
async def app(redis_url: str) -> AsyncIterator[RunningApp]:
    async with serve_segue(settings(redis_url), store=RedisContextStore.from_url(redis_url),
                           policy=EchoMenuPolicy()) as running:
        yield running


@pytest.fixture
async def proxied_app(redis_url: str) -> AsyncIterator[RunningApp]:
    """Behind a proxy that names the client in X-Forwarded-For."""
    async with serve_segue(settings(redis_url, trusted_proxy_header="X-Forwarded-For"),
                           store=RedisContextStore.from_url(redis_url),
                           policy=EchoMenuPolicy()) as running:
        yield running


async def segue_keys(redis_client: aioredis.Redis) -> set[str]:
    return {k async for k in redis_client.scan_iter(match="segue:*")}


async def raw_hello(http: aiohttp.ClientSession, app: RunningApp, *,
                    forwarded_for: str | None = None,
                    **hello: Any) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A socket and the first frame its hello gets."""
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    ws = await http.ws_connect(app.ws_url, headers=headers)
    await ws.send_str(json.dumps({"type": "hello", **hello}))
    first: dict[str, Any] = json.loads((await ws.receive(timeout=20)).data)
    return ws, first


async def sessions_from(http: aiohttp.ClientSession, app: RunningApp, count: int,
                        forwarded_for: list[str | None]) -> list[aiohttp.ClientWebSocketResponse]:
    """`count` new sessions, the n-th with X-Forwarded-For `forwarded_for[n]`,
    all left open (a closed socket removes its presence key later)."""
    gate = asyncio.Semaphore(20)

    async def one(n: int) -> aiohttp.ClientWebSocketResponse:
        async with gate:
            ws, first = await raw_hello(http, app, forwarded_for=forwarded_for[n])
            assert first["type"] == "session", (n, first)
            assert json.loads((await ws.receive(timeout=20)).data)["type"] == "history"
            return ws

    return list(await asyncio.gather(*(one(n) for n in range(count))))


def assert_rate_limited(frame: dict[str, Any]) -> None:
    assert frame["type"] == "error" and frame["code"] == "rate_limited", frame
    assert isinstance(frame["retry_after"], int) and frame["retry_after"] >= 1, frame


async def outcomes(client: WebChatClient, ids: list[str]) -> dict[str, dict[str, Any]]:
    """What each message sent on one socket got, in the order sent: its `ack`
    or an `error` (a socket's frames are handled one after another, so the
    n-th ack-or-error answers the n-th message)."""
    got: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(120):
        for msg_id in ids:
            while True:
                frame = await client.receive(60)
                if frame["type"] == "ack":
                    assert frame["id"] == msg_id, (msg_id, frame)
                    break
                if frame["type"] == "error":
                    break
                assert frame["type"] in ("message", "typing"), frame
            got[msg_id] = frame
    return got


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
    for msg_id in ids:
        await client.say(f"flood {msg_id}", msg_id=msg_id)
    got = await outcomes(client, ids)
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
    again = await WebChatClient.connect(http, app.ws_url, session=client.session)
    stored = [m["text"] for m in again.history if m["sender"] == "customer"]
    assert stored == [f"flood {i}" for i in acked]
    await again.close()
    await client.close()


async def test_a_refused_message_sent_again_after_the_pause_is_processed_once(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    ids = [f"q{n}" for n in range(30)]
    for msg_id in ids:
        await client.say(f"quick {msg_id}", msg_id=msg_id)
    got = await outcomes(client, ids)
    refused = [i for i in ids if got[i]["type"] == "error"]
    assert refused
    retried = refused[0]
    await until_accepted(client, f"quick {retried}", retried)
    # Processed, not taken for a duplicate: it gets its answer now.
    reply = await client.receive(20)
    while reply["type"] != "message":
        reply = await client.receive(20)
    assert reply["reply_to"] == retried and reply["text"] == f"You said: quick {retried}"
    # Sent once more: acknowledged again, never answered twice.
    await until_accepted(client, f"quick {retried}", retried)
    await until_accepted(client, "after", "after")
    reply = await client.receive(20)
    while reply["type"] != "message":
        reply = await client.receive(20)
    assert reply["reply_to"] == "after"
    again = await WebChatClient.connect(http, app.ws_url, session=client.session)
    stored = [m["text"] for m in again.history if m["sender"] == "customer"]
    assert stored.count(f"quick {retried}") == 1 and stored[-1] == "after"
    await again.close()
    await client.close()


async def test_the_121st_new_session_from_one_address_is_refused_and_stores_nothing(
    proxied_app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    app = proxied_app
    office = "203.0.113.7"
    sockets = await sessions_from(http, app, 120, [office] * 120)
    before = await segue_keys(redis_client)
    ws, refused = await raw_hello(http, app, forwarded_for=office)
    assert_rate_limited(refused)
    assert await segue_keys(redis_client) == before
    # Another address is not held back, nor is a session already open there.
    elsewhere, first = await raw_hello(http, app, forwarded_for="203.0.113.8")
    assert first["type"] == "session"
    existing = WebChatClient(await http.ws_connect(app.ws_url,
                                                   headers={"X-Forwarded-For": office}))
    await existing.hello(session=first["session"])
    assert existing.customer == first["customer"]
    for socket in (*sockets, ws, elsewhere, existing.ws):
        await socket.close()


async def test_without_a_trusted_proxy_a_forged_forwarded_for_gains_no_new_sessions(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    forged: list[str | None] = [f"198.51.100.{n}" for n in range(120)]
    sockets = await sessions_from(http, app, 120, forged)
    before = await segue_keys(redis_client)
    ws, refused = await raw_hello(http, app, forwarded_for="198.51.100.250")
    assert_rate_limited(refused)
    assert await segue_keys(redis_client) == before
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
        got = await outcomes(client, ids)
        return client, list(got.values())

    results = await asyncio.gather(*(colleague(n) for n in range(50)))
    answers = [frame for _, frames in results for frame in frames]
    assert len(answers) == 250
    assert [f for f in answers if f["type"] != "ack"] == []
    # The limits are on all the same: one of them flooding is held back.
    flooder = results[0][0]
    ids = [f"flood{n}" for n in range(40)]
    for msg_id in ids:
        await flooder.say("flood", msg_id=msg_id)
    got = await outcomes(flooder, ids)
    assert any(frame["type"] == "error" for frame in got.values())
    for client, _ in results:
        await client.close()


async def test_with_limits_off_nothing_is_held_back(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with serve_segue(settings(redis_url, rate_limits="off"),
                           store=RedisContextStore.from_url(redis_url),
                           policy=EchoMenuPolicy()) as app:
        sockets = await sessions_from(http, app, 130, [None] * 130)
        client = await WebChatClient.connect(http, app.ws_url)
        ids = [f"f{n}" for n in range(60)]
        for msg_id in ids:
            await client.say("flood", msg_id=msg_id)
        got = await outcomes(client, ids)
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
    async with serve_segue(settings(redis_url, agents="ann:a-long-password:admin"),
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
        frame = await last.receive(20)
        while not (frame["type"] == "message" and frame.get("reply_to") == msg_id):
            assert frame["type"] in ("ack", "typing"), frame
            frame = await last.receive(20)
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
