"""The shipped demo bot, end to end over web chat on a real Redis (README "The demo bot")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import running
from tests.support.webchat_client import WebChatClient


@pytest.fixture
async def client(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> AsyncIterator[WebChatClient]:
    """A customer on the web chat of the demo bot."""
    client = await WebChatClient.connect(http, desk_app.ws_url)
    yield client
    await client.close()


def payloads(reply: dict[str, object]) -> list[str]:
    buttons = reply.get("buttons") or []
    assert isinstance(buttons, list)
    return [b["payload"] for b in buttons]


async def test_greets_and_says_what_it_can_do(client: WebChatClient) -> None:
    [greeting] = await client.turn("hello")
    assert "order" in greeting["text"] and "person" in greeting["text"]
    assert "link" in greeting["text"]
    assert payloads(greeting) == ["order_status", "human"]


async def test_order_status_with_an_unknown_number_then_a_known_one(client: WebChatClient) -> None:
    [ask] = await client.turn("wheres my order??")
    assert "order number" in ask["text"]
    not_found, ask_again = await client.turn("A9999", expect=2)
    assert "couldn't find" in not_found["text"] and "A9999" in not_found["text"]
    assert "order number" in ask_again["text"]
    [malformed] = await client.turn("maybe 12?")
    assert "doesn't look like an order number" in malformed["text"]
    status, _ = await client.turn("it's a1003", expect=2)
    assert status["text"].startswith("Order A1003 is delivered.")


async def test_restart_between_question_and_answer_keeps_the_flow(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with running(redis_url) as app:
        client = await WebChatClient.connect(http, app.ws_url)
        [ask] = await client.turn("where is my order")
        assert "order number" in ask["text"]
        session = client.session
        await client.close()
    # A new process: nothing survives but Redis.
    async with running(redis_url) as app:
        client = await WebChatClient.connect(http, app.ws_url, session=session)
        assert [m["text"] for m in client.history][-1] == ask["text"]
        status, more = await client.turn("A1001", expect=2)
        assert status["text"].startswith("Order A1001 is shipped.")
        assert payloads(more) == ["order_status", "human"]
        await client.close()


async def test_the_order_button_then_a_number(client: WebChatClient) -> None:
    [ask] = await client.turn("Order status", payload="order_status")
    assert "order number" in ask["text"]
    status, _ = await client.turn("A1002", expect=2)
    assert status["text"].startswith("Order A1002 is processing.")


async def test_talk_to_a_human_hands_off(desk_app: RunningApp, client: WebChatClient) -> None:
    reply, notice = await client.turn("I want to talk to a human", expect=2)
    assert "person" in reply["text"] and "take over" in reply["text"]
    assert "No agent is online" in notice["text"]
    state = await desk_app.segue.store.load_state(str(client.customer))
    assert state is not None and '"flow":null' in state
    # Waiting for a person: the bot says nothing more, whatever is written.
    await client.silent("hello?")
    await client.silent("where is my order")


async def test_anything_else_offers_the_options_then_hands_off(client: WebChatClient) -> None:
    [fallback] = await client.turn("what is the capital of france")
    assert "didn't get that" in fallback["text"]
    assert payloads(fallback)[:2] == ["order_status", "human"]
    handoff, _ = await client.turn("play some music", expect=2)
    assert "person" in handoff["text"]
    await client.silent("what is the capital of france")


async def test_forget_me_erases_after_confirmation(
    desk_app: RunningApp, client: WebChatClient, redis_client: aioredis.Redis
) -> None:
    await client.turn("hi")
    [confirm] = await client.turn("forget me")
    assert payloads(confirm) == ["affirm", "deny"]
    [kept] = await client.turn("No, keep it", payload="deny")
    assert "keep" in kept["text"]
    assert await desk_app.segue.store.history(str(client.customer), 10)
    await client.turn("please delete my data")
    [done] = await client.turn("Yes, forget me", payload="affirm")
    assert "erased" in done["text"]
    pattern = f"segue:{{c:{client.customer}}}:*"
    left = [k async for k in redis_client.scan_iter(match=pattern)]
    # Only the engine's empty "moved" marker may stay, and only for a while.
    assert [k.rsplit(":", 1)[1] for k in left] in ([], ["moved"])
    for key in left:
        assert await redis_client.get(key) == "" and await redis_client.ttl(key) > 0
    assert await desk_app.segue.store.history(str(client.customer), 10) == []
