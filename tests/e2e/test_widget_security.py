"""The widget's part in the web chat's defences, in a real headless Chromium:
it reads links only on Segue's own page, and re-sends what was refused for
coming too fast."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, WebSocket, expect

from tests.support.app_server import RunningApp
from tests.support.browser import host_site as serve_host_site
from tests.support.browser import send
from tests.support.webchat_client import WebChatClient

QUESTION = "You opened a link that comes from a web chat conversation"


@pytest.fixture
async def host_site(app: RunningApp) -> AsyncIterator[str]:
    """Another site, on another loopback port, that embeds the widget."""
    page = ("<!doctype html><html><head><title>A shop</title></head><body>"
            "<h1>A shop that embeds the chat</h1>"
            f'<script src="{app.base_url}/webchat/widget.js" data-open="true"></script>'
            "</body></html>")
    async with serve_host_site(page) as url:
        yield url


async def fresh_link(client: WebChatClient) -> str:
    """A "continue on the web" link's token, asked for on `client`."""
    return (await client.web_link()).split("resume=", 1)[1]


async def test_a_host_page_address_with_resume_is_not_sent_but_segues_own_page_asks(
    app: RunningApp, host_site: str, browser: Browser, http: aiohttp.ClientSession
) -> None:
    issuer = await WebChatClient.connect(http, app.ws_url)
    await issuer.turn("the issuer's question")
    token = await fresh_link(issuer)
    page = await browser.new_page()
    await page.goto(f"{host_site}/?resume={token}")
    log = page.get_by_role("log")
    # A message answered: the widget's hello, and anything it led to, is done.
    await send(page, "hello")
    await expect(log.locator(".sg-bot .sg-text")).to_have_text(["Hi! What would you like to do?"])
    await expect(log.get_by_role("button", name="Yes, link it")).to_have_count(0)
    await expect(log).not_to_contain_text(QUESTION)
    # The link is still unused.
    opener = await WebChatClient.connect(http, app.ws_url, resume=token)
    question = await opener.receive()
    assert question["type"] == "message" and QUESTION in question["text"]
    await opener.close()
    await page.close()
    # On Segue's own chat page the same kind of link asks the visitor.
    token = await fresh_link(issuer)
    context = await browser.new_context()
    own = await context.new_page()
    await own.goto(f"{app.base_url}/webchat/?resume={token}")
    own_log = own.get_by_role("log")
    await expect(own_log.get_by_role("button", name="Yes, link it")).to_have_count(1)
    await expect(own_log.locator(".sg-bot").last).to_contain_text(QUESTION)
    await context.close()
    await issuer.close()


async def test_messages_refused_for_coming_too_fast_are_sent_again_and_answered(
    app: RunningApp, browser: Browser
) -> None:
    received: list[dict[str, Any]] = []
    sent: list[dict[str, Any]] = []

    def watch(ws: WebSocket) -> None:
        ws.on("framereceived", lambda payload: received.append(json.loads(payload)))
        ws.on("framesent", lambda payload: sent.append(json.loads(payload)))

    page = await browser.new_page()
    page.on("websocket", watch)
    await page.goto(f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    await send(page, "hello")
    await expect(log.locator(".sg-bot")).to_have_count(1)
    texts = [f"quick {n}" for n in range(1, 26)]
    # Every notice the status line shows from here on.
    await page.evaluate("""() => {
        window.__notices = [];
        const status = document.querySelector('#segue-chat .sg-status');
        new MutationObserver(() => window.__notices.push(status.textContent))
            .observe(status, {childList: true, characterData: true, subtree: true});
    }""")
    # Typed and sent far faster than a person could: all in one go.
    await page.evaluate(
        """texts => {
            const input = document.querySelector('#segue-chat input');
            const form = document.querySelector('#segue-chat form');
            for (const text of texts) { input.value = text; form.requestSubmit(); }
        }""",
        texts,
    )
    await expect(log.locator(".sg-customer")).to_have_count(26)
    await expect(log.locator(".sg-customer.sg-pending")).to_have_count(0, timeout=90_000)
    await expect(log.locator(".sg-bot")).to_have_count(26, timeout=30_000)
    replies = await log.locator(".sg-bot .sg-text").all_text_contents()
    assert sorted(replies[1:]) == sorted(f"You said: {t}" for t in texts)
    refused = [f for f in received if f.get("type") == "error"]
    assert refused and all(f["code"] == "rate_limited" for f in refused), refused
    sends: dict[str, int] = {}
    for frame in sent:
        if frame.get("type") == "message":
            sends[frame["text"]] = sends.get(frame["text"], 0) + 1
    assert any(count > 1 for count in sends.values()), sends
    # Once all is acknowledged, the "too fast" notice goes away.
    await expect(page.locator("#segue-chat .sg-status")).to_have_text("")
    # It was the widget's own, which does not ask the visitor to send again:
    # the widget does that itself.
    notices = set(await page.evaluate("() => window.__notices")) - {"", "typing\u2026"}
    assert notices == {"Many messages at once \u2014 sending them in a moment\u2026"}, notices
    await page.close()
