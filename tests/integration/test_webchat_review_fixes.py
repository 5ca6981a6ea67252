"""The web chat as a host site and its visitors meet it: the widget script
served compressed and cacheable, a signed-in page left open past its token's
expiry, and a conversation opening its own "continue on the web" link."""

from __future__ import annotations

import gzip
import time
from typing import Any

import aiohttp
import pytest

from bot.core.tokens import sign_host_identity
from connectors.webchat import STATIC_DIR
from tests.support.app_server import RunningApp
from tests.support.channels_rig import link_code
from tests.support.webchat_client import WebChatClient, raw_hello

SECRET = "review-fixes-identity-secret"
PUBLIC_URL = "https://chat.example"


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"webchat_identity_secret": SECRET, "public_url": PUBLIC_URL}


def identity(user: str, *, expires_in: int) -> str:
    return sign_host_identity(user, SECRET, expires_at=int(time.time()) + expires_in)


async def test_the_widget_script_is_gzipped_when_accepted_cacheable_and_revalidated(
    app: RunningApp,
) -> None:
    script = (STATIC_DIR / "widget.js").read_bytes()
    url = f"{app.base_url}/webchat/widget.js"
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        async with raw.get(url, headers={"Accept-Encoding": "gzip, deflate"}) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Encoding"] == "gzip"
            assert resp.headers["Content-Type"].startswith("text/javascript")
            assert "max-age=" in resp.headers["Cache-Control"]
            assert resp.headers["Vary"] == "Accept-Encoding"
            body = await resp.read()
            etag = resp.headers["ETag"]
        assert gzip.decompress(body) == script
        assert len(body) < len(script) / 2
        async with raw.get(url, headers={"Accept-Encoding": "identity"}) as resp:
            assert "Content-Encoding" not in resp.headers
            assert await resp.read() == script
        async with raw.get(url, headers={"Accept-Encoding": "gzip;q=0"}) as resp:
            assert "Content-Encoding" not in resp.headers
        async with raw.get(url, headers={"If-None-Match": etag,
                                         "Accept-Encoding": "gzip"}) as resp:
            assert resp.status == 304
            assert await resp.read() == b""
        async with raw.get(url, headers={"If-None-Match": '"another"',
                                         "Accept-Encoding": "identity"}) as resp:
            assert resp.status == 200 and await resp.read() == script


async def test_a_signed_in_page_left_open_past_its_tokens_expiry_keeps_its_conversation(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    # The page was rendered with a token that has expired since; the tab
    # reconnects (a deploy, a network blip) with its session and that token.
    first = await WebChatClient.connect(http, app.ws_url,
                                        identity=identity("user-7", expires_in=3600))
    await first.turn("my question before the reconnect")
    await first.close()
    expired = identity("user-7", expires_in=-60)
    again = await WebChatClient.connect(http, app.ws_url, session=first.session,
                                        identity=expired)
    assert again.customer == first.customer
    assert [m["text"] for m in again.history][0] == "my question before the reconnect"
    await again.close()
    # The expired token opens nothing on its own, nor another user's session.
    ws, refused = await raw_hello(http, app.ws_url, identity=expired)
    assert refused["code"] == "identity_expired"
    await ws.close()
    other = await WebChatClient.connect(http, app.ws_url,
                                        identity=identity("user-8", expires_in=3600))
    ws, refused = await raw_hello(http, app.ws_url, session=other.session, identity=expired)
    assert refused["code"] == "identity_expired"
    await ws.close()
    await other.close()


async def test_opening_ones_own_continue_on_the_web_link_leaves_link_and_code_usable(
    app: RunningApp, http: aiohttp.ClientSession
) -> None:
    issuer = await WebChatClient.connect(http, app.ws_url)
    [reply] = await issuer.turn("link")
    code = link_code(reply["text"])
    [url] = [link["url"] for link in reply["links"] if "resume=" in link["url"]]
    token = url.split("resume=", 1)[1]
    # The same browser presses its own "Continue on the web" button.
    own_tab = await WebChatClient.connect(http, app.ws_url, session=issuer.session,
                                          resume=token)
    answer = await own_tab.next_message()
    assert answer["text"] == "This chat is already part of that conversation."
    await own_tab.close()
    # The code in the same message still works on another device...
    other = await WebChatClient.connect(http, app.ws_url)
    [question] = await other.turn(f"link {code}")
    assert "If you say yes" in question["text"], question["text"]
    await other.close()
    # ...and so does the link, opened by someone else.
    stranger = await WebChatClient.connect(http, app.ws_url, resume=token)
    asked = await stranger.next_message()
    assert "If you say yes" in asked["text"], asked["text"]
    await stranger.close()
    await issuer.close()
