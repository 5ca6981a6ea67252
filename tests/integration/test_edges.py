"""Edges of Segue's front doors, driven from outside on loopback: the agent
console's socket refuses pages of other sites, both sockets close on frames
over their size limit while the longest allowed text still passes however it
is escaped, and `/readyz` follows the store."""

from __future__ import annotations

import json
from contextlib import ExitStack

import aiohttp
import pytest

from connectors.agent_api import COOKIE
from tests.support.app_server import RunningApp, serve_echo
from tests.support.handoff_rig import agent
from tests.support.redis_server import free_port, redis_server
from tests.support.webchat_client import WebChatClient

EVIL = "https://evil.example"
MIB = 1 << 20
# Twelve bytes once JSON-escaped, as the surrogate pair \ud83d\ude00.
EMOJI = "\U0001F600"


async def closed_with(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """The close code of a socket that the server closes right away (an
    answer instead fails at once, with what was said)."""
    msg = await ws.receive(timeout=10)
    assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), (msg.type, msg.data)
    return ws.close_code


# The agent console's socket and the Origin header.


async def test_the_agent_socket_refuses_a_page_of_another_site_even_with_a_valid_cookie(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    ann = await agent(http, desk_app, "ann")
    url = f"{desk_app.base_url}/agent/ws"
    cookie = {"Cookie": f"{COOKIE}={ann.token}"}
    # A browser on another site's page sends the cookie along, and names the page.
    for origin in (EVIL, "null", "http://127.0.0.1:1"):
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(url, headers={**cookie, "Origin": origin})
        assert refused.value.status == 403, origin
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await http.ws_connect(url, headers={"Authorization": f"Bearer {ann.token}",
                                            "Origin": EVIL})
    assert refused.value.status == 403
    # The console's own page, with the same cookie, is let in.
    ws = await http.ws_connect(url, headers={**cookie, "Origin": desk_app.base_url})
    hello = json.loads((await ws.receive(timeout=10)).data)
    assert hello["type"] == "hello" and hello["agent"]["username"] == "ann"
    await ws.close()


async def test_a_refused_agent_socket_is_answered_bad_origin_before_any_upgrade(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    ann = await agent(http, desk_app, "ann")
    headers = {"Cookie": f"{COOKIE}={ann.token}", "Origin": EVIL, "Connection": "Upgrade",
               "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    async with http.get(f"{desk_app.base_url}/agent/ws", headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"] == "bad_origin"


# Frame size limits.


async def test_a_web_chat_frame_over_a_mebibyte_closes_the_socket_with_1009(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    head = '{"type": "message", "id": "huge", "text": "'
    padding = MIB + 1 - len(head) - 2
    await client.ws.send_str(head + "x" * padding + '"}')
    assert await closed_with(client.ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    assert await app.segue.store.history(client.customer or "", 10) == []


async def test_the_longest_allowed_text_escaped_beyond_a_mebibyte_is_still_accepted(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    longest = 100_000  # escaped as surrogate pairs: 1.2 MB, more than the 1 MiB floor
    async with serve_echo(redis_url, max_text_length=longest) as app:
        client = await WebChatClient.connect(http, app.ws_url)
        text = EMOJI * longest
        frame = json.dumps({"type": "message", "text": text, "id": "big"})
        assert "\\ud83d\\ude00" in frame[:200] and len(frame) > longest * 12 > MIB
        await client.ws.send_str(frame)
        assert await client.receive() == {"type": "ack", "id": "big"}
        reply = await client.receive()
        assert (reply["reply_to"], reply["text"]) == ("big", f"You said: {text}")
        # One character more is refused with a word, and the socket stays open.
        await client.ws.send_str(json.dumps({"type": "message", "text": text + "x", "id": "b2"}))
        assert (await client.receive())["code"] == "text_too_long"
        [echo] = await client.turn("still here")
        assert echo["text"] == "You said: still here"
        # Far beyond any allowed text, the frame closes the socket.
        await client.ws.send_str(json.dumps({"type": "message", "text": text * 2, "id": "b3"}))
        assert await closed_with(client.ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_the_agent_socket_closes_on_a_huge_frame_with_1009(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    assert ann.ws is not None
    # The console only listens: what it says is ignored, and it keeps listening.
    await ann.ws.send_str('{"type": "ping"}')
    web = await WebChatClient.connect(http, desk_app.ws_url)
    await web.turn("talk to a human", expect=2)
    assert (await ann.event("queued"))["customer"] == web.customer
    assert (await ann.event("message"))["entry"]["event"] == "queued"  # the team's line
    await ann.ws.send_str("x" * MIB)
    assert await closed_with(ann.ws) == aiohttp.WSCloseCode.MESSAGE_TOO_BIG
    await web.close()


# Readiness.


async def test_readyz_answers_503_while_redis_is_down_and_200_when_it_is_up(
    http: aiohttp.ClientSession,
) -> None:
    port = free_port()  # this test's own Redis, stopped and started again on this port
    with ExitStack() as stack:
        first = stack.enter_context(ExitStack())
        url = first.enter_context(redis_server(port))
        async with serve_echo(url) as app:
            ready = f"{app.base_url}/readyz"
            async with http.get(ready) as resp:
                assert (resp.status, await resp.json()) == (200, {"status": "ready"})
            first.close()  # Redis stops
            async with http.get(ready) as resp:
                assert resp.status == 503
                assert await resp.json() == {"status": "unavailable", "store": "unreachable"}
            # Only the readiness check follows the store: the process itself is alive.
            async with http.get(f"{app.base_url}/healthz") as resp:
                assert resp.status == 200
            stack.enter_context(redis_server(port))  # Redis is back (and outlives the app)
            async with http.get(ready) as resp:
                assert (resp.status, await resp.json()) == (200, {"status": "ready"})
