"""Which sites' pages may open the web chat socket (SEGUE_WEBCHAT_ALLOWED_ORIGINS)."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.app_server import RunningApp, serve_echo
from tests.support.webchat_client import WebChatClient


async def test_a_page_of_a_site_not_listed_cannot_open_the_socket(
    redis_url: str, http: aiohttp.ClientSession
) -> None:
    allowed = "https://shop.example, https://help.example/"
    async with serve_echo(redis_url, webchat_allowed_origins=allowed) as app:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(app.ws_url, headers={"Origin": "https://evil.example"})
        assert refused.value.status == 403
        for origin in ("https://shop.example", "https://help.example", app.base_url):
            client = await WebChatClient.connect(http, app.ws_url, headers={"Origin": origin})
            assert (await client.turn("hello"))[0]["sender"] == "bot"
            await client.close()


async def test_without_a_list_any_page_may_open_the_socket(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await WebChatClient.connect(http, app.ws_url,
                                         headers={"Origin": "https://anywhere.example"})
    assert client.session
    await client.close()


async def test_no_other_site_may_frame_the_chat_page(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{app.base_url}/webchat/?resume=x") as page:
        assert page.status == 200
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        assert page.headers["X-Frame-Options"] == "DENY"
