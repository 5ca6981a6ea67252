"""The web chat protocol of docs/protocol.md against the real app on a real Redis."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from tests.support.app_server import WEB_SECRET, RunningApp, serve_echo
from tests.support.redis_server import redis_keys
from tests.support.webchat_client import PROBE, WebChatClient, raw_hello


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"max_text_length": 100}


async def test_hello_gives_a_session_and_a_reply_carries_reply_to(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    assert client.session and client.customer and client.history == []
    msg_id = await client.say("hello")
    assert await client.receive() == {"type": "ack", "id": msg_id}
    replies = [await client.receive()]
    assert replies[0]["sender"] == "bot"
    assert replies[0]["reply_to"] == msg_id
    assert [b["payload"] for b in replies[0]["buttons"]] == ["order_status", "human"]
    pressed = await client.turn("Order status", payload="order_status")
    assert "order_status" in pressed[0]["text"]
    await client.close()


async def test_ack_comes_before_the_replies(app: RunningApp, http: aiohttp.ClientSession) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    await client.say("one", msg_id="x1")
    frames = [await client.receive(), await client.receive()]
    assert frames[0] == {"type": "ack", "id": "x1"}
    assert frames[1]["type"] == "message" and frames[1]["reply_to"] == "x1"
    await client.close()


async def test_reconnect_with_the_session_replays_history(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first = await WebChatClient.connect(http, app.ws_url)
    await first.turn("hello")
    await first.turn("second message")
    await first.close()
    again = await WebChatClient.connect(http, app.ws_url, session=first.session)
    assert again.customer == first.customer
    assert [(m["sender"], m["channel"], m["text"]) for m in again.history] == [
        ("customer", "web", "hello"),
        ("bot", "web", "Hi! What would you like to do?"),
        ("customer", "web", "second message"),
        ("bot", "web", "You said: second message"),
    ]
    assert all(isinstance(m["ts"], float) for m in again.history)
    await again.close()


async def test_a_resent_id_is_acked_again_and_processed_once(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    await client.say("once", msg_id="first")
    assert (await client.receive())["type"] == "ack"
    assert (await client.receive())["reply_to"] == "first"
    await client.say("once", msg_id="first")
    assert await client.receive() == {"type": "ack", "id": "first"}
    # Nothing was sent for the duplicate.
    await client.nothing_more(about="the duplicate")
    replies = await client.turn("next")
    assert replies[0]["text"] == "You said: next"
    history = await app.segue.store.history(client.customer or "", 50)
    assert [e.text for e in history if e.sender == "customer"] == ["once", PROBE, "next"]
    await client.close()


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "bad_json"),
        ("[1, 2]", "bad_frame"),
        ('{"type": "shout", "text": "hi"}', "unknown_type"),
        ('{"type": "message", "text": "hi"}', "bad_frame"),
        ('{"type": "message", "payload": "order_status", "id": "p1"}', "bad_frame"),
        ('{"type": "message", "text": 5, "id": "a"}', "bad_frame"),
        ('{"type": "message", "text": "   ", "id": "a"}', "empty_text"),
        (json.dumps({"type": "message", "text": "x" * 101, "id": "a"}), "text_too_long"),
        ('{"type": "hello"}', "already_hello"),
    ],
)
async def test_bad_frames_get_an_error_store_nothing_and_the_socket_keeps_serving(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis,
    raw: str, code: str,
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    before = await redis_keys(redis_client)
    await client.ws.send_str(raw)
    error = await client.receive()
    assert error["type"] == "error" and error["code"] == code and error["message"]
    assert await redis_keys(redis_client) == before
    assert (await client.turn("still here"))[0]["text"] == "You said: still here"
    await client.close()


async def test_binary_frames_are_refused(app: RunningApp, http: aiohttp.ClientSession) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    await client.ws.send_bytes(b"\x00\x01")
    assert (await client.receive())["code"] == "bad_frame"
    await client.close()


async def test_a_message_before_hello_is_refused(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    ws = await http.ws_connect(app.ws_url)
    await ws.send_str('{"type": "message", "text": "hi", "id": "1"}')
    error = json.loads((await ws.receive()).data)
    assert error["code"] == "hello_required"
    assert await redis_keys(redis_client) == []
    await ws.close()


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (URLSafeTimedSerializer("another secret", salt="segue.session").dumps({"s": "x"}),
         "session_invalid"),
        ("garbage", "session_invalid"),
    ],
    # Named, not shown: a token made at collection differs from one second
    # to the next, and the test processes must collect the same tests.
    ids=["another-secret", "garbage"],
)
async def test_forged_session_tokens_are_refused(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis,
    token: str, code: str,
) -> None:
    ws, error = await raw_hello(http, app.ws_url, session=token)
    assert error == {"type": "error", "code": code, "message": "the session token is not valid"}
    assert await redis_keys(redis_client) == []
    # The socket stays usable: a plain hello starts a new session.
    client = WebChatClient(ws)
    await client.hello()
    assert client.session
    await ws.close()


class _TwoDaysAgoSigner(TimestampSigner):
    def get_timestamp(self) -> int:
        return int(time.time()) - 2 * 86400


async def test_an_expired_session_token_is_refused(
    redis_url: str, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    serializer = URLSafeTimedSerializer(WEB_SECRET, salt="segue.session", signer=_TwoDaysAgoSigner)
    old = serializer.dumps({"s": "old-session"})
    async with serve_echo(redis_url, session_max_age_days=1) as app:
        ws, error = await raw_hello(http, app.ws_url, session=old)
        assert error["code"] == "session_expired"
        assert await redis_keys(redis_client) == []
        await ws.close()


async def test_fifty_clients_twenty_messages_each_answered_once_in_order(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    # Far faster than people type: this is about order under load, so the
    # per-client limits are off as for a trusted gateway.
    async with serve_echo(redis_url, rate_limits="off") as app:
        await _fifty_clients_twenty_messages(app, http)


async def _fifty_clients_twenty_messages(app: RunningApp, http: aiohttp.ClientSession) -> None:
    async def chat(n: int) -> tuple[str, list[str]]:
        client = await WebChatClient.connect(http, app.ws_url)
        texts = []
        for i in range(20):
            replies = await client.turn(f"c{n} m{i}")
            texts.extend(r["text"] for r in replies)
        await client.close()
        return client.customer or "", texts

    results = await asyncio.gather(*(chat(n) for n in range(50)))
    assert len({customer for customer, _ in results}) == 50
    for n, (customer, texts) in enumerate(results):
        expected = [f"c{n} m{i}" for i in range(20)]
        assert texts == [f"You said: {t}" for t in expected]
        history = await app.segue.store.history(customer, 100)
        assert [e.text for e in history if e.sender == "customer"] == expected
        assert len(history) == 40


async def test_two_sockets_of_one_customer_are_served_one_turn_at_a_time(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first = await WebChatClient.connect(http, app.ws_url)
    second = await WebChatClient.connect(http, app.ws_url, session=first.session)
    await asyncio.gather(
        *(first.say(f"a{i}", msg_id=f"a{i}") for i in range(10)),
        *(second.say(f"b{i}", msg_id=f"b{i}") for i in range(10)),
    )
    acks: set[str] = set()
    for client in (first, second):
        while len([a for a in acks if a[0] == ("a" if client is first else "b")]) < 10:
            frame = await client.receive()
            if frame["type"] == "ack":
                acks.add(frame["id"])
    history = await app.segue.store.history(first.customer or "", 100)
    texts = [e.text for e in history]
    # Every reply directly follows its message: turns never interleave.
    for i in range(0, len(texts), 2):
        assert texts[i + 1] == f"You said: {texts[i]}"
    sent = [f"a{i}" for i in range(10)] + [f"b{i}" for i in range(10)]
    assert sorted(texts[0::2]) == sorted(sent)
    await first.close()
    await second.close()


async def test_store_down_refuses_the_message_and_a_resend_is_processed(
    http: aiohttp.ClientSession,
) -> None:
    from contextlib import ExitStack

    from tests.support.redis_server import free_port, redis_server

    port = free_port()
    with ExitStack() as first_redis:
        url = first_redis.enter_context(redis_server(port))
        async with serve_echo(url) as app:
            client = await WebChatClient.connect(http, app.ws_url)
            first_redis.close()  # Redis goes away under a connected customer
            await client.say("are you there?", msg_id="q1")
            error = await client.receive()
            assert error["type"] == "error" and error["code"] == "store_unavailable"
            with redis_server(port):
                # Redis is back: the widget re-sends the unacknowledged message.
                await client.say("are you there?", msg_id="q1")
                frames = [await client.receive(), await client.receive()]
                assert frames[0] == {"type": "ack", "id": "q1"}
                assert frames[1]["text"] == "You said: are you there?"
                await client.close()


async def test_the_longest_allowed_text_passes_however_it_is_escaped(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with serve_echo(redis_url) as app:
        client = await WebChatClient.connect(http, app.ws_url)
        text = "\U0001F600" * 4096  # 12 bytes each once JSON-escaped as a surrogate pair
        await client.ws.send_str(json.dumps({"type": "message", "text": text, "id": "big"}))
        assert await client.receive() == {"type": "ack", "id": "big"}
        assert (await client.receive())["reply_to"] == "big"
        await client.ws.send_str(json.dumps({"type": "message", "text": text + "x", "id": "b2"}))
        assert (await client.receive())["code"] == "text_too_long"
        await client.close()


async def test_a_socket_that_never_says_hello_is_closed(
    app: RunningApp, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.webchat.HELLO_WITHIN_SECONDS", 0.2)
    ws = await http.ws_connect(app.ws_url)
    closed = await ws.receive(timeout=5)
    assert closed.type == aiohttp.WSMsgType.CLOSE and closed.data == 1008
    await ws.close()


async def test_refused_frames_do_not_keep_a_socket_without_hello_open(
    app: RunningApp, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("connectors.webchat.HELLO_WITHIN_SECONDS", 0.3)
    ws = await http.ws_connect(app.ws_url)
    started = time.monotonic()
    while True:  # each refusal answered at once, the next frame sent on it
        await ws.send_str("not json")
        frame = await ws.receive(timeout=5)
        if frame.type != aiohttp.WSMsgType.TEXT:
            break
        assert json.loads(frame.data)["code"] == "bad_json"
        assert time.monotonic() - started < 5, "the socket was never closed"
    assert frame.type == aiohttp.WSMsgType.CLOSE and frame.data == 1008
    await ws.close()


async def test_one_session_cannot_open_sockets_without_end(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first = await WebChatClient.connect(http, app.ws_url)
    tabs = [await WebChatClient.connect(http, app.ws_url, session=first.session)
            for _ in range(9)]
    ws, refused = await raw_hello(http, app.ws_url, session=first.session)
    assert refused["code"] == "too_many_sockets"
    await tabs[0].close()
    another = await WebChatClient.connect(http, app.ws_url, session=first.session)
    assert another.customer == first.customer
    for client in (first, *tabs[1:], another):
        await client.close()
    await ws.close()


async def test_a_visitor_who_never_writes_leaves_only_a_short_lived_key(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    client = await WebChatClient.connect(http, app.ws_url)
    keys = await redis_keys(redis_client)
    [key] = [k for k in keys if k.startswith("segue:{i:web:")]
    for other in keys:
        assert 0 < await redis_client.ttl(other) <= 86400, other
    await client.turn("now I write")
    assert await redis_client.ttl(key) > 86400  # kept for the retention time
    again = await WebChatClient.connect(http, app.ws_url, session=client.session)
    assert again.customer == client.customer
    assert await redis_client.ttl(key) > 86400  # a reconnect does not shorten it
    for c in (client, again):
        await c.close()
