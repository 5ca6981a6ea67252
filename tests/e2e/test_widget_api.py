"""The widget's JavaScript API, `window.Segue`, in a real headless Chromium:
what a host page can do with the chat (open and close it, hear of new
messages, sign the visitor in and out) and what it is told."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, Page, WebSocket, expect

from bot.core.model import Outbound
from bot.core.policy import Policy, TurnContext
from bot.core.tokens import sign_host_identity
from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.policies import EchoMenuPolicy
from tests.support.webchat_client import WebChatClient

SECRET = "widget-api-identity-secret"
# Registered as soon as the API exists: a broken listener first, then one
# that records every message it is told of.
LISTENERS = """
document.addEventListener('segue:ready', () => {
    window.__ready = typeof window.Segue.on;
    window.__messages = [];
    window.Segue.on('message', () => { throw new Error('a broken host listener'); });
    window.Segue.on('message', message => window.__messages.push(message));
});
"""


class AgentOrMenu(EchoMenuPolicy):
    """"agent" is answered as a person would; anything else as the echo menu."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        if turn.inbound.text == "agent":
            return [Outbound(text="Alice here.", sender="agent", agent_name="Alice Smith")]
        return await super().decide(turn)


@pytest.fixture
def app_policy() -> Policy:
    return AgentOrMenu()


@pytest.fixture
def app_settings() -> dict[str, Any]:
    return {"webchat_identity_secret": SECRET}


def identity(user: str) -> str:
    return sign_host_identity(user, SECRET, expires_at=int(time.time()) + 3600)


async def stored_session(page: Page) -> str | None:
    session: str | None = await page.evaluate(
        "() => Object.keys(localStorage).filter(k => k.startsWith('segue.session.'))"
        ".map(k => localStorage.getItem(k))[0] || null")
    return session


async def test_open_and_close_tell_their_listeners_once_per_change(
    app: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.add_init_script(LISTENERS)
    # The shop's own page, where the chat starts closed.
    await page.goto(f"{app.base_url}/webchat/")
    await page.evaluate("() => window.Segue.close()")
    assert await page.evaluate("() => window.__ready") == "function"
    await page.evaluate("""() => {
        window.__events = [];
        window.__stopOpen = Segue.on('open', () => __events.push('open'));
        Segue.on('close', () => __events.push('close'));
    }""")
    await page.evaluate("() => { Segue.open(); Segue.open(); }")
    await expect(page.get_by_role("dialog", name="Support")).to_be_visible()
    await expect(page.get_by_label("Message")).to_be_focused()
    await page.evaluate("() => { Segue.close(); Segue.close(); }")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    # The visitor's own opening and closing are told too.
    await page.get_by_role("button", name="Chat with us").click()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("dialog")).to_have_count(0)
    # A listener taken back is not told again.
    await page.evaluate("() => { __stopOpen(); Segue.open(); }")
    await expect(page.get_by_role("dialog")).to_be_visible()
    assert await page.evaluate("() => __events") == ["open", "close", "open", "close"]
    refused = await page.evaluate("""() => ['opened', 'toString', 'constructor'].map(name => {
        try { Segue.on(name, () => {}); return 'taken'; }
        catch (e) {
            return e instanceof TypeError && e.message.includes(name) ? 'TypeError' : String(e);
        }
    })""")
    assert refused == ["TypeError"] * 3
    await page.close()


async def test_message_listeners_hear_live_messages_not_the_history(
    app: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.add_init_script(LISTENERS)
    await page.goto(f"{app.base_url}/webchat/")
    await send(page, "hello")
    await send(page, "agent")
    log = page.get_by_role("log")
    await expect(log.locator(".sg-agent .sg-text")).to_have_text(["Alice here."])
    # The broken listener did not stop the widget or the next listener.
    assert await page.evaluate("() => __messages") == [
        {"sender": "bot", "text": "Hi! What would you like to do?",
         "buttons": [{"title": "Order status", "payload": "order_status"},
                     {"title": "Talk to a person", "payload": "human"}]},
        {"sender": "agent", "text": "Alice here.", "agent_name": "Alice Smith", "buttons": []},
    ]
    await log.get_by_role("button", name="Order status").click()
    await expect(log.locator(".sg-bot .sg-text").last).to_have_text("You chose: order_status")
    assert len(await page.evaluate("() => __messages")) == 3
    # After a reload the history is shown, and no listener hears it as new.
    await page.reload()
    await expect(log.locator(".sg-customer")).to_have_count(3)
    await expect(log.locator(".sg-agent")).to_have_count(1)
    assert await page.evaluate("() => __messages") == []
    await page.close()


async def test_identify_joins_the_chat_into_the_users_and_reset_starts_afresh(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    account = await WebChatClient.connect(http, app.ws_url, identity=identity("user-7"))
    await account.turn("earlier, signed in")
    await account.close()
    hellos: list[dict[str, Any]] = []

    def watch(ws: WebSocket) -> None:
        def sent(payload: str | bytes) -> None:
            frame = json.loads(payload)
            if frame["type"] == "hello":
                hellos.append(frame)
        ws.on("framesent", sent)

    page = await browser.new_page()
    page.on("websocket", watch)
    await page.goto(f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    await send(page, "before signing in")
    await expect(log.locator(".sg-bot")).to_have_count(1)
    anonymous = await stored_session(page)
    assert anonymous is not None
    # The shop signs the visitor in: the same chat goes on as the user's.
    token = identity("user-7")
    await page.evaluate("token => Segue.identify(token)", token)
    await expect(log.locator(".sg-customer")).to_have_text(
        ["earlier, signed in", "before signing in"])
    assert hellos[-1]["session"] == anonymous and hellos[-1]["identity"] == token
    # Signed out: a new anonymous chat, nothing of the user's shown or kept.
    # What was shown goes at once, before the new chat's (empty) history comes.
    assert await page.evaluate(
        "() => { Segue.reset(); return document.querySelectorAll('#segue-chat .sg-row').length }"
    ) == 0
    await expect(log.locator(".sg-row")).to_have_count(0)
    await page.wait_for_function(
        """old => Object.keys(localStorage).some(k => k.startsWith('segue.session.')
            && localStorage.getItem(k) && localStorage.getItem(k) !== old)""", arg=anonymous)
    assert "session" not in hellos[-1] and "identity" not in hellos[-1], hellos[-1]
    await send(page, "after signing out")
    await expect(log.locator(".sg-bot")).to_have_count(1)
    await page.reload()
    await expect(log.locator(".sg-customer")).to_have_text(["after signing out"])
    again = await WebChatClient.connect(http, app.ws_url, identity=identity("user-7"))
    assert [m["text"] for m in again.history if m["sender"] == "customer"] == [
        "earlier, signed in", "before signing in"]
    await again.close()
    await page.close()
