"""Odd identity and resume tokens on the web chat socket: refused with an
error, and the socket keeps serving. Segue's real app on loopback, real Redis."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.core.tokens import sign_host_identity
from tests.support.app_server import WEB_SECRET, RunningApp, serve_echo
from tests.support.redis_server import redis_keys
from tests.support.webchat_client import WebChatClient, raw_hello

HOST_SECRET = "the-host-sites-identity-key"


def signed(user: str, secret: str = HOST_SECRET) -> str:
    return sign_host_identity(user, secret, expires_at=int(time.time()) + 3600)


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"webchat_identity_secret": HOST_SECRET}


@pytest.fixture
async def app_without_sign_in(redis_url: str) -> AsyncIterator[RunningApp]:
    async with serve_echo(redis_url) as running_app:
        yield running_app


async def refused_then_served(http: aiohttp.ClientSession, app: RunningApp,
                              redis_client: aioredis.Redis, hello: dict[str, Any]) -> str:
    """The error code a hello gets; then the same socket starts a chat."""
    before = await redis_keys(redis_client)
    ws, error = await raw_hello(http, app.ws_url, **hello)
    assert error["type"] == "error", error
    assert await redis_keys(redis_client) == before
    client = WebChatClient(ws)
    await client.hello()
    assert (await client.turn("still here"))[0]["text"] == "You said: still here"
    await client.close()
    return str(error["code"])


async def test_a_signed_identity_with_an_accented_user_id_gets_a_session_and_chats(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    token = signed("josé@example.com")
    first = await WebChatClient.connect(http, app.ws_url, identity=token)
    assert first.session and first.customer
    assert (await first.turn("bonjour"))[0]["text"] == "You said: bonjour"
    await first.close()
    # Another device of the same signed-in user: the same conversation.
    second = await WebChatClient.connect(http, app.ws_url, identity=token)
    assert second.customer == first.customer
    assert [m["text"] for m in second.history][0] == "bonjour"
    await second.close()


async def test_an_identity_with_a_4301_digit_expiry_is_refused_and_the_socket_serves_on(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    token = f"user-1.{'9' * 4301}.{'0' * 64}"
    code = await refused_then_served(http, app, redis_client, {"identity": token})
    assert code == "identity_invalid"


async def test_a_non_ascii_resume_token_is_refused_and_the_socket_serves_on(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    code = await refused_then_served(http, app, redis_client, {"resume": "é" * 38})
    assert code == "resume_invalid"


async def test_an_identity_signed_with_the_server_secret_is_refused(
    app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    hello = {"identity": signed("user-42", WEB_SECRET)}
    assert await refused_then_served(http, app, redis_client, hello) == "identity_invalid"


async def test_without_an_identity_secret_every_identity_is_refused(
    app_without_sign_in: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    # Signed with the server's own secret too: that one never signs identities.
    for secret in (WEB_SECRET, HOST_SECRET, "any key at all"):
        hello = {"identity": signed("user-42", secret)}
        code = await refused_then_served(http, app_without_sign_in, redis_client, hello)
        assert code == "identity_invalid", secret
