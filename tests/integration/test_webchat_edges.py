"""Edges of the web chat (docs/protocol.md §1) against the real app on a real
Redis: the page's addresses, message ids at their limit, typing, images,
refusals and their reasons, a joined conversation's history, per-address
limits, and frames crossing workers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.core.errors import StoreUnavailable
from bot.core.model import Image, Outbound
from bot.core.policy import TurnContext
from context_store.agents_redis import RedisAgentStore
from context_store.redis import RedisContextStore
from context_store.redis_client import connect
from tests.support.app_server import RunningApp, serve_segue, web_settings
from tests.support.handoff_rig import AgentClient, agent, agent_frame, hand_off, running
from tests.support.policies import EchoMenuPolicy
from tests.support.webchat_client import WebChatClient, raw_hello

PARCEL = Image("https://example.com/parcel.png", "The parcel")


class GatedPolicy(EchoMenuPolicy):
    """The echo menu, plus "picture" (a reply with an image) and "slow" (a
    turn that lasts until the test opens the gate)."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        if turn.inbound.text == "picture":
            return [Outbound(text="Here it is", images=(PARCEL,))]
        if turn.inbound.text == "slow":
            await self.gate.wait()
            return [Outbound(text="Done at last")]
        return await super().decide(turn)


@pytest.fixture
def app_policy() -> GatedPolicy:
    return GatedPolicy()


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"public_url": "https://chat.example", "trusted_proxy_header": "X-Forwarded-For"}


async def first_error(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads((await ws.receive(timeout=10)).data)
    assert frame["type"] == "error", frame
    return frame


async def refused_hello(
    http: aiohttp.ClientSession, app: RunningApp, **hello: Any
) -> tuple[aiohttp.ClientWebSocketResponse, dict[str, Any]]:
    """A socket whose hello was refused, and the error it got."""
    ws, error = await raw_hello(http, app.ws_url, **hello)
    assert error["type"] == "error", error
    return ws, error


async def test_the_chat_address_without_a_slash_redirects_permanently_to_the_page(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{app.base_url}/webchat", allow_redirects=False) as resp:
        assert resp.status == 308
        assert resp.headers["Location"] == "/webchat/"


async def test_the_widget_script_is_served_as_utf8_javascript(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{app.base_url}/webchat/widget.js") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        body = await resp.text()
    assert "WebSocket" in body


async def test_message_ids_of_1_to_128_characters_are_taken_and_others_refused(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    longest = "i" * 128
    await client.say("hello", msg_id=longest)
    assert await client.next_frame() == {"type": "ack", "id": longest}
    assert (await client.next_frame())["reply_to"] == longest
    for bad_id in ("i" * 129, 5, ["x"]):
        await client.send({"type": "message", "text": "hello", "id": bad_id})
        error = await client.next_frame()
        assert (error["type"], error["code"]) == ("error", "bad_frame"), (bad_id, error)
    # The socket serves on.
    assert (await client.turn("still here"))[0]["text"] == "You said: still here"
    await client.close()


async def test_a_slow_turn_shows_typing_until_its_ack(
    app: RunningApp, http: aiohttp.ClientSession, app_policy: GatedPolicy
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    msg_id = await client.say("slow")
    try:
        assert await client.receive(timeout=5) == {"type": "typing", "on": True}
    finally:
        app_policy.gate.set()
    assert await client.receive() == {"type": "ack", "id": msg_id}
    assert await client.receive() == {"type": "typing", "on": False}
    reply = await client.receive()
    assert (reply["text"], reply["reply_to"]) == ("Done at last", msg_id)
    await client.close()


async def test_a_reply_with_an_image_carries_its_url_and_alt_text(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    [reply] = await client.turn("picture")
    assert reply["images"] == [{"url": PARCEL.url, "alt": PARCEL.alt}]
    assert "images" not in (await client.turn("no picture"))[0]
    await client.close()


async def test_without_an_identity_secret_the_refusal_says_sign_in_is_off(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    ws, error = await refused_hello(http, app, identity="anything")
    assert error["code"] == "identity_invalid"
    assert "signed-in visitors are not enabled" in error["message"]
    await ws.close()


async def test_a_used_or_unknown_link_is_refused_with_its_reason(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first = await WebChatClient.connect(http, app.ws_url)
    web_link = await first.web_link()
    token = web_link.split("resume=")[1]
    other = await WebChatClient.connect(http, app.ws_url, resume=token)
    await other.turn("No, don't link", payload="link_no")
    ws, error = await refused_hello(http, app, resume=token)
    assert error["code"] == "resume_used"
    assert "used already or has expired" in error["message"]
    await ws.close()
    for client in (first, other):
        await client.close()


async def test_a_web_chat_without_link_service_refuses_links_as_not_enabled(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    web_chat = app.segue.connectors["web"]
    web_chat.links = None  # type: ignore[attr-defined]
    ws, error = await refused_hello(http, app, resume="any-token")
    assert error["code"] == "resume_invalid"
    assert "not enabled" in error["message"]
    await ws.close()


async def test_a_joined_conversation_shows_its_whole_history_once(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first = await WebChatClient.connect(http, app.ws_url)
    await first.turn("my question")
    web_link = await first.web_link()
    token = web_link.split("resume=")[1]
    other = await WebChatClient.connect(http, app.ws_url, resume=token)
    question = await other.next_frame()
    assert question["type"] == "message"
    assert question["reply_to"] == f"resume:{token}"
    await other.turn("Yes, link it", payload="link_yes")
    joined = await other.next_frame()
    while joined["type"] == "message":  # the rest of the yes turn's replies
        joined = await other.next_frame()
    assert joined["type"] == "history"
    assert "my question" in [m["text"] for m in joined["messages"]]
    # Shown once: the next turns get their ack and reply, and no history again.
    for text in ("after joining", "once more"):
        msg_id = await other.say(text)
        assert await other.next_frame() == {"type": "ack", "id": msg_id}
        answer = await other.next_frame()
        assert (answer["type"], answer["reply_to"]) == ("message", msg_id), answer
    probe = await other.say("last")
    assert await other.next_frame() == {"type": "ack", "id": probe}
    for client in (first, other):
        await client.close()


async def from_address(http: aiohttp.ClientSession, app: RunningApp,
                       address: str) -> WebChatClient:
    return await WebChatClient.connect(http, app.ws_url, forwarded_for=address)


async def acks_and_errors(client: WebChatClient, ids: list[str]) -> list[dict[str, Any]]:
    """The ack or error each message sent on one socket got, in order."""
    return list((await client.outcomes(ids)).values())


async def test_one_address_flooding_from_many_sessions_is_held_back_alone(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    """Each session sends within its own allowance (20 at once); together
    they pass the address's (400 at once, 20 a second)."""
    clients = [await from_address(http, app, "203.0.113.7") for _ in range(30)]
    neighbour = await from_address(http, app, "198.51.100.9")

    async def flood(n: int, client: WebChatClient) -> list[dict[str, Any]]:
        ids = [await client.say(f"busy {n}-{i}") for i in range(20)]
        return await acks_and_errors(client, ids)

    results = await asyncio.gather(*(flood(n, c) for n, c in enumerate(clients)))
    refused = [[f for f in frames if f["type"] == "error"] for frames in results]
    assert sum(len(r) for r in refused) >= 50
    for frame in (f for r in refused for f in r):
        assert frame["code"] == "rate_limited", frame
        assert "too fast" in frame["message"]
    # Another address is not held back by this one.
    ids = [await neighbour.say(f"next door {i}") for i in range(10)]
    assert [f["type"] for f in await acks_and_errors(neighbour, ids)] == ["ack"] * 10
    # Messages the address refused were not charged to their session: once the
    # address has room again, the session sends as many as it had left.
    most = max(range(len(clients)), key=lambda n: len(refused[n]))
    assert len(refused[most]) >= 3
    await asyncio.sleep(refused[most][-1]["retry_after"])  # as the server asks
    client = clients[most]
    ids = [await client.say(f"again {i}") for i in range(3)]
    assert [f["type"] for f in await acks_and_errors(client, ids)] == ["ack"] * 3
    for c in (*clients, neighbour):
        await c.close()


@pytest.fixture
async def three_workers(redis_url: str) -> AsyncIterator[tuple[RunningApp, ...]]:
    async with running(redis_url) as a, running(redis_url) as b, running(redis_url) as c:
        yield a, b, c


async def test_frames_reach_tabs_on_other_workers_but_turn_replies_stay_on_theirs(
    three_workers: tuple[RunningApp, ...], http: aiohttp.ClientSession
) -> None:
    a, b, c = three_workers
    here = await WebChatClient.connect(http, a.ws_url)
    # The same visitor in a second tab, served by another worker.
    there = await WebChatClient.connect(http, b.ws_url, session=here.session)
    assert there.customer == here.customer
    await hand_off(here)  # a turn on worker A: its replies go to that socket only
    ann = await agent(http, b, "ann")
    await ann.act(here.customer or "", "claim")  # on worker B, which has a tab too
    for tab in (here, there):
        joined = await agent_frame(tab)  # a bot message before it fails
        assert joined["text"] == "ann from our team has joined the conversation."
    # Worker C has no tab of this visitor: its notice goes over to A and B.
    ann_on_c = AgentClient(http, c.base_url)
    ann_on_c.token = ann.token
    await ann_on_c.act(here.customer or "", "release")
    for tab in (here, there):
        notice = await tab.next_frame()
        assert (notice["type"], notice["sender"]) == ("message", "bot"), notice
        assert notice["text"].startswith("You're back with our assistant")
        assert "reply_to" not in notice
    for tab in (here, there):
        await tab.close()


async def test_every_refusal_carries_a_message_a_person_can_read(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    """Clients show an error's `message`: it is a sentence whatever the refusal."""
    refusals = []
    ws = await http.ws_connect(app.ws_url, headers={"X-Forwarded-For": "198.51.100.9"})
    await ws.send_bytes(b"\x00binary")
    refusals.append(await first_error(ws))
    await ws.send_str(json.dumps({"type": "message", "text": "hi", "id": "early"}))
    refusals.append(await first_error(ws))
    await ws.close()
    # New sessions from one address until the limit refuses one.
    for _ in range(130):
        ws, frame = await raw_hello(http, app.ws_url, forwarded_for="198.51.100.10")
        await ws.close()
        if frame["type"] == "error":
            refusals.append(frame)
            break
    assert [r["code"] for r in refusals] == ["bad_frame", "hello_required", "rate_limited"]
    for refusal in refusals:
        assert isinstance(refusal["message"], str) and len(refusal["message"]) > 10, refusal


class RefusesOnePresence(RedisContextStore):
    """A Redis store whose first record of an open socket is refused, as
    Redis refuses when it is briefly out of reach."""

    def __init__(self, client: Any) -> None:
        super().__init__(client)
        self.refusals = 1

    def agent_store(self) -> RedisAgentStore:
        store = self

        class Refusing(RedisAgentStore):
            async def touch_web(self, sessions: Any, worker: str, ttl_seconds: float) -> None:
                if store.refusals:
                    store.refusals -= 1
                    raise StoreUnavailable("Redis is unreachable: refused for the test")
                await super().touch_web(sessions, worker, ttl_seconds)

        return Refusing(self.client, prefix=self.keys.prefix)


async def test_a_hello_refused_for_a_passing_reason_can_be_sent_again(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    store = RefusesOnePresence(connect(redis_url))
    async with serve_segue(web_settings(redis_url), store=store,
                           policy=EchoMenuPolicy()) as app:
        ws = await http.ws_connect(app.ws_url)
        client = WebChatClient(ws)
        await client.send({"type": "hello"})
        refused = await client.receive()
        assert refused["type"] == "error" and refused["code"] == "store_unavailable", refused
        # The same hello again, on the same socket: a session this time.
        await client.hello()
        assert client.session and client.customer
        (reply,) = await client.turn("where is it")
        assert reply["text"] == "You said: where is it"
        await client.close()
