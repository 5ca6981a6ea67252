"""Web chat identities: host-signed users and resume links, end to end."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.core.model import ChannelIdentity
from bot.core.tokens import sign_host_identity
from tests.support.app_server import RunningApp
from tests.support.redis_server import redis_keys
from tests.support.webchat_client import WebChatClient, raw_hello

SECRET = "identity-test-secret"


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"webchat_identity_secret": SECRET, "public_url": "https://chat.example"}


def identity(user: str, *, secret: str = SECRET, expires_in: int = 3600) -> str:
    return sign_host_identity(user, secret, expires_at=int(time.time()) + expires_in)


async def test_the_same_signed_user_on_two_devices_is_one_customer(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    laptop = await WebChatClient.connect(http, app.ws_url, identity=identity("user-42"))
    await laptop.turn("hello from the laptop")
    phone = await WebChatClient.connect(http, app.ws_url, identity=identity("user-42"))
    assert phone.customer == laptop.customer
    assert phone.session != laptop.session
    assert phone.history[0]["text"] == "hello from the laptop"
    stranger = await WebChatClient.connect(http, app.ws_url, identity=identity("user-43"))
    assert stranger.customer != laptop.customer
    for client in (laptop, phone, stranger):
        await client.close()


@pytest.mark.parametrize(
    ("token", "code"),
    [
        (identity("user-42", secret="not the secret"), "identity_invalid"),
        ("user-42.99999999999.deadbeef", "identity_invalid"),
        ("no-dots-at-all", "identity_invalid"),
        (identity("user-42", expires_in=-10), "identity_expired"),
    ],
    # Named, not shown: a token made at collection differs from one second
    # to the next, and the test processes must collect the same tests.
    ids=["another-secret", "expiry-too-long", "no-dots", "expired"],
)
async def test_bad_identity_tokens_are_refused_and_store_nothing(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis,
    token: str, code: str,
) -> None:
    ws, error = await raw_hello(http, app.ws_url, identity=token)
    assert error["type"] == "error" and error["code"] == code
    assert await redis_keys(redis_client) == []
    await ws.close()


async def test_signing_in_joins_the_anonymous_conversation_to_the_account(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    account = await WebChatClient.connect(http, app.ws_url, identity=identity("user-7"))
    await account.turn("earlier, signed in")
    await account.close()
    anonymous = await WebChatClient.connect(http, app.ws_url)
    await anonymous.turn("before signing in")
    await anonymous.close()
    signed_in = await WebChatClient.connect(http, app.ws_url, session=anonymous.session,
                                            identity=identity("user-7"))
    assert signed_in.customer == account.customer
    texts = [m["text"] for m in signed_in.history if m["sender"] == "customer"]
    assert texts == ["earlier, signed in", "before signing in"]
    await signed_in.close()


async def test_a_resume_link_is_redeemed_by_the_page_once_not_by_a_bare_get(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first = await WebChatClient.connect(http, app.ws_url)
    await first.turn("my question")
    web_link = await first.web_link()
    assert web_link.startswith("https://chat.example/webchat/?resume=")
    token = web_link.split("resume=")[1]
    # A link preview or crawler fetching the URL redeems nothing.
    async with http.get(f"{app.base_url}/webchat/?resume={token}") as page:
        assert page.status == 200
    other = await WebChatClient.connect(http, app.ws_url, resume=token)
    question = await other.receive()
    assert question["type"] == "message"
    assert "You opened a link that comes from a web chat conversation" in question["text"]
    # Nothing of either side is joined or shown before a yes.
    assert other.customer != first.customer
    assert "my question" not in [m["text"] for m in other.history]
    await other.turn("Yes, link it", payload="link_yes")
    again = await WebChatClient.connect(http, app.ws_url, session=other.session)
    assert again.customer == first.customer
    assert "my question" in [m["text"] for m in again.history]
    await again.close()
    ws, error = await raw_hello(http, app.ws_url, resume=token)
    assert error["code"] == "resume_used"
    for client in (first, other):
        await client.close()
    await ws.close()


async def test_a_signed_in_session_without_its_identity_starts_afresh(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    alice = await WebChatClient.connect(http, app.ws_url, identity=identity("alice"))
    await alice.turn("my address is 1 Private Lane")
    await alice.close()
    # Alice signed out of the site; the browser still holds her session token.
    after = await WebChatClient.connect(http, app.ws_url, session=alice.session)
    assert after.customer != alice.customer
    assert after.history == []
    await after.turn("hello")
    await after.close()
    # Bob signs in on the same browser: his own conversation, Alice's untouched.
    bob = await WebChatClient.connect(http, app.ws_url, session=alice.session,
                                      identity=identity("bob"))
    assert bob.customer not in (alice.customer, after.customer)
    assert bob.history == []
    again = await WebChatClient.connect(http, app.ws_url, identity=identity("alice"))
    assert again.customer == alice.customer
    assert [m["text"] for m in again.history][0] == "my address is 1 Private Lane"
    assert await app.segue.store.identities(alice.customer or "") == [
        ChannelIdentity("web", "u:alice")]
    for client in (bob, again):
        await client.close()
