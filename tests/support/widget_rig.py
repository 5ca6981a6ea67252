"""Helpers for the web chat widget's browser tests (no tests here): a host
page that embeds the widget with chosen script attributes, a phone's
browser context, a conversation with the demo bot and then a person, the
page shown as hidden or visible again, and what its sockets send and get."""

from __future__ import annotations

import asyncio
import html
import json
from typing import Any

import aiohttp
from playwright.async_api import Page, WebSocket, expect

from bot.handoff.ports import AgentAccount
from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.handoff_rig import CHEAP_HASHER, agent

# A phone as Playwright emulates one: 390 × 844 CSS pixels, touch, mobile viewport.
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                         "is_mobile": True, "has_touch": True}
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
HOST_TITLE = "A shop"
AGENT_REPLY = ("Hi, I'm Alice. Your order A1002 leaves our warehouse today; "
               "you can follow it at https://example.com/track/A1002")


def embed_page(app: RunningApp, **attributes: str) -> str:
    """A shop's page embedding the widget; each keyword is a `data-` attribute
    of the script tag (`open="true"` is `data-open="true"`)."""
    attrs = "".join(f' data-{name}="{html.escape(value)}"' for name, value in attributes.items())
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{HOST_TITLE}'
            '</title><meta name="viewport" content="width=device-width, initial-scale=1">'
            '</head><body><main><h1>A shop that embeds the chat</h1></main>'
            f'<script src="{app.base_url}/webchat/widget.js"{attrs}></script></body></html>')


async def add_alice(app: RunningApp) -> None:
    """A console agent, alice, shown to customers as Alice Smith."""
    assert app.segue.handoff is not None
    await app.segue.handoff.agents.put_agent(AgentAccount(
        username="alice", display_name="Alice Smith", role="agent",
        password_hash=CHEAP_HASHER.hash("alice-pass-1")))


async def converse(page: Page, app: RunningApp, http: aiohttp.ClientSession) -> None:
    """On `page`, Segue's demo page on the desk app with `add_alice` done: an
    order question for the bot, then Alice claims the chat and answers."""
    await page.goto(f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    await send(page, "where is my order")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("order number")
    await send(page, "A1002")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("Anything else")
    await send(page, "talk to a human")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("No agent is online")
    alice = await agent(http, app, "alice", "alice-pass-1")
    status, [waiting] = await alice.call("GET", "queue")
    assert status == 200
    await alice.act(waiting["customer"], "claim")
    await alice.act(waiting["customer"], "messages", {"text": AGENT_REPLY})
    await expect(log.locator(".sg-agent .sg-text").last).to_have_text(AGENT_REPLY)
    await expect(log.locator(".sg-customer.sg-pending")).to_have_count(0)


async def set_hidden(page: Page, hidden: bool) -> None:
    """Make `page` say it is hidden (another tab is in front) or visible
    again, as the browser does: `document.hidden` and a visibilitychange."""
    await page.evaluate("""hidden => {
        Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});
        Object.defineProperty(document, 'visibilityState', {configurable: true,
            get: () => hidden ? 'hidden' : 'visible'});
        document.dispatchEvent(new Event('visibilitychange'));
    }""", hidden)


# Before any script of the page runs: every frame the page's sockets send is
# kept in `window.__sent` (read at once, also while the page's clock is
# paused), and the sockets in `window.__sockets`.
SOCKET_SPY = """
window.__sent = [];
window.__sockets = [];
window.WebSocket = class extends window.WebSocket {
    constructor(...args) { super(...args); window.__sockets.push(this); }
    send(data) { window.__sent.push(JSON.parse(data)); return super.send(data); }
};
"""


async def sends_of(page: Page, text: str) -> int:
    """How many times the page (with `SOCKET_SPY`) has sent a message `text`."""
    count: int = await page.evaluate(
        "text => window.__sent.filter(f => f.type === 'message' && f.text === text).length", text)
    return count


class Received:
    """The frames the page's sockets receive, as they come; awaited from the
    test's side, so a page whose clock is paused can be waited on too."""

    def __init__(self, page: Page) -> None:
        self.frames: list[dict[str, Any]] = []
        self._arrived = asyncio.Event()
        page.on("websocket", self._watch)

    def _watch(self, ws: WebSocket) -> None:
        ws.on("framereceived", self._got)

    def _got(self, payload: str | bytes) -> None:
        self.frames.append(json.loads(payload))
        self._arrived.set()

    def errors(self) -> list[str]:
        return [str(f.get("code")) for f in self.frames if f.get("type") == "error"]

    async def error_count(self, count: int) -> list[str]:
        """The error codes received, once there are `count` of them."""
        async with asyncio.timeout(15):
            while len(self.errors()) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.errors()
