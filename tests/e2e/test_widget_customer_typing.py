"""The visitor's typing in the web chat widget reaches the agent's console,
in a real headless Chromium: an `on` while they type (at most every 3 s),
an `off` when they empty the field, stop for 5 s, or send. A server that
does not know typing frames yet shows the visitor nothing of it.

Real app on loopback with the demo bot on a real Redis; the agent is ann,
who claims the chat through the agent API and listens on `/agent/ws`. The
page's timers run only when the test says, and the server's typing
throttle reads a clock the test moves along with the page's."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, Page, expect

from bot.core.errors import BadInput
from connectors.webchat import WebChatConnector
from connectors.webchat_frames import WebClient
from connectors.webchat_typing import CustomerTyping
from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.handoff_rig import AgentClient, agent
from tests.support.widget_rig import DESKTOP, SOCKET_SPY, Received
from tests.support.widget_team_rig import ask_for_a_person


class Clock:
    """The server's typing throttle clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TypingUnknown(CustomerTyping):
    """A server from before typing frames: it answers them as it answers
    any frame of an unknown type."""

    async def on_frame(self, client: WebClient, frame: dict[str, Any]) -> None:
        raise BadInput("unknown_type", "unknown frame type 'typing'")


def web_chat_of(app: RunningApp) -> WebChatConnector:
    web_chat = app.segue.connectors["web"]
    assert isinstance(web_chat, WebChatConnector)
    return web_chat


def typing_event(customer: str, on: bool) -> dict[str, Any]:
    return {"type": "typing", "customer": customer, "agent": "ann", "on": on}


async def typing_sent(page: Page, since: int = 0) -> list[bool]:
    """The `on` of every typing frame the page (with `SOCKET_SPY`) has sent,
    from the `since`-th on."""
    sent: list[bool] = await page.evaluate(
        "() => window.__sent.filter(f => f.type === 'typing').map(f => f.on)")
    return sent[since:]


async def later(page: Page, server: Clock, milliseconds: int) -> None:
    """Time passes for the page and for the server's throttle."""
    server.now += milliseconds / 1000
    await page.clock.run_for(milliseconds)


async def ann_claims(http: aiohttp.ClientSession, app: RunningApp) -> tuple[AgentClient, str]:
    ann = await agent(http, app, "ann")
    status, body = await ann.call("GET", "queue")
    waiting: Any = body  # the queue is a list
    assert status == 200 and len(waiting) == 1, waiting
    customer = str(waiting[0]["customer"])
    await ann.act(customer, "claim")
    return await ann.listen(), customer


async def test_typing_in_the_widget_shows_in_the_console_until_emptied_idle_or_sent(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    server = Clock()
    web_chat_of(desk_app).customer_typing.clock = server
    context = await browser.new_context(**DESKTOP)
    await context.add_init_script(SOCKET_SPY)
    page = await context.new_page()
    await page.clock.install()
    await page.goto(f"{desk_app.base_url}/webchat/")
    await ask_for_a_person(page)
    ann, customer = await ann_claims(http, desk_app)
    await page.clock.pause_at(await page.evaluate("() => Date.now() + 1000"))
    # Asking for a person was typed too (unless before the chat was ready):
    # frames the server dropped, the chat being the bot's then, maybe less
    # than 3 s ago.
    asked = len(await typing_sent(page))
    await later(page, server, 3000)
    field = page.get_by_label("Message")

    # Three keys, one `on`; emptying the field ends it.
    await field.press_sequentially("hel")
    assert await ann.event("typing") == typing_event(customer, True)
    await field.fill("")
    assert await ann.event("typing") == typing_event(customer, False)
    # Typing again within 3 s of the last `on` sends none; after 3 s, one.
    await field.press_sequentially("w")
    await later(page, server, 2999)
    await field.press_sequentially("h")
    assert await typing_sent(page, asked) == [True, False]
    await later(page, server, 1)
    await field.press_sequentially("ere")
    assert await ann.event("typing") == typing_event(customer, True)

    # 5 s after the last key, `off`.
    await later(page, server, 4999)
    assert await typing_sent(page, asked) == [True, False, True]
    await later(page, server, 1)
    assert await ann.event("typing") == typing_event(customer, False)

    # Sending ends it too, before the message.
    await later(page, server, 3000)
    await field.press_sequentially(" is my order?")
    assert await ann.event("typing") == typing_event(customer, True)
    await page.get_by_role("button", name="Send").click()
    assert await ann.event("typing") == typing_event(customer, False)
    message = await ann.event("message", text="where is my order?")
    assert message["entry"]["sender"] == "customer"
    assert await typing_sent(page, asked) == [True, False] * 3
    assert [e["on"] for e in ann.events if e["type"] == "typing"] == [
        True, False, True, False, True, False]
    await ann.close()
    await context.close()


async def test_a_server_older_than_typing_frames_shows_the_visitor_nothing(
    app: RunningApp, browser: Browser
) -> None:
    web_chat = web_chat_of(app)
    web_chat.customer_typing = TypingUnknown(store=web_chat.store, bus=None)
    page = await browser.new_page()
    received = Received(page)
    await page.goto(f"{app.base_url}/webchat/")
    await send(page, "hello")
    # The reply comes after the refusals of the `on` and the `off` before it.
    await expect(page.get_by_role("log").locator(".sg-bot")).to_have_count(1)
    assert await received.error_count(2) == ["unknown_type", "unknown_type"]
    await expect(page.locator("#segue-chat .sg-status")).to_have_text("")
    await page.close()
