"""Which sites' pages may open the web chat socket (SEGUE_WEBCHAT_ALLOWED_ORIGINS)."""

from __future__ import annotations

import aiohttp
import pytest

from bot.core.settings import Settings
from context_store import RedisContextStore
from tests.support.app_server import serve_segue
from tests.support.policies import EchoMenuPolicy
from tests.support.webchat_client import WebChatClient


def settings(redis_url: str, **extra: object) -> Settings:
    return Settings(redis_url=redis_url, webchat_secret="origins-secret", **extra)


async def test_a_page_of_a_site_not_listed_cannot_open_the_socket(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    configured = settings(redis_url, webchat_allowed_origins="https://shop.example, "
                                                            "https://help.example/")
    async with serve_segue(configured, store=RedisContextStore.from_url(redis_url),
                           policy=EchoMenuPolicy()) as app:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(app.ws_url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        for origin in ("https://shop.example", "https://help.example", app.base_url):
            client = WebChatClient(await http.ws_connect(app.ws_url, headers={"Origin": origin}))
            await client.hello()
            assert (await client.turn("hello"))[0]["sender"] == "bot"
            await client.close()


async def test_without_a_list_any_page_may_open_the_socket(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with serve_segue(settings(redis_url), store=RedisContextStore.from_url(redis_url),
                           policy=EchoMenuPolicy()) as app:
        client = WebChatClient(await http.ws_connect(
            app.ws_url, headers={"Origin": "https://anywhere.example"}))
        await client.hello()
        assert client.session
        await client.close()


async def test_no_other_site_may_frame_the_chat_page(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    async with serve_segue(settings(redis_url), store=RedisContextStore.from_url(redis_url),
                           policy=EchoMenuPolicy()) as app:
        async with http.get(f"{app.base_url}/webchat/?resume=x") as page:
            assert page.status == 200
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
            assert page.headers["X-Frame-Options"] == "DENY"
