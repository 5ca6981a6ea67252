"""Text is text, in a real headless Chromium: what an agent replies (from the
console or the API), what a customer writes, and an agent's display name are
shown literally in the agent console and in the customer's web chat widget,
live and after a reload; no element is made of them and no script runs."""

from __future__ import annotations

import re

import aiohttp
import pytest
from playwright.async_api import Browser, Dialog, Locator, Page, expect

from bot.handoff.ports import AgentAccount
from tests.support.app_server import RunningApp
from tests.support.browser import send, sign_in
from tests.support.handoff_rig import CHEAP_HASHER, agent

AGENT_HTML = '<img src=x onerror="window.__pwned=1"><b>bold</b>'
AGENT_SCRIPT = '<script>window.__pwned=2; alert("agent")</script><b>also bold</b>'
CUSTOMER_HTML = '<img src=x onerror="window.__pwned=3;alert(3)"><b>mine</b>'
CUSTOMER_SCRIPT = '<script>window.__pwned=4; alert("customer")</script>'
EVE_NAME = '<img src=x onerror="window.__pwned=5"><b>Eve</b>'
EVE_PASSWORD = "eve-pass-1"
MADE_OF_TEXT = "img, b, script"


@pytest.fixture
async def app(desk_app: RunningApp) -> RunningApp:
    """The desk app with one more agent, eve."""
    handoff = desk_app.segue.handoff
    assert handoff is not None
    # Display names are free text (`segue agents add --name`): this one is HTML.
    await handoff.agents.put_agent(AgentAccount(
        username="eve", display_name=EVE_NAME, role="agent",
        password_hash=CHEAP_HASHER.hash(EVE_PASSWORD)))
    return desk_app


class Watched:
    """A page, with every dialog it opens recorded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        page.on("dialog", self._on_dialog)

    async def _on_dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(dialog.message)
        await dialog.dismiss()

    async def assert_untouched(self, area: Locator) -> None:
        """Nothing in `area` was made of text, no script ran, no dialog opened."""
        assert await area.locator(MADE_OF_TEXT).count() == 0
        assert await self.page.evaluate("typeof window.__pwned") == "undefined"
        assert self.dialogs == []


async def customer_says(page: Page, text: str) -> None:
    await send(page, text)
    await expect(page.get_by_role("log").locator(".sg-customer").last).to_have_text(text)


async def test_agent_and_customer_html_is_shown_as_text_in_console_and_widget(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    console = Watched(await browser.new_page())
    await console.page.goto(f"{app.base_url}/agent/")
    await sign_in(console.page, "eve", EVE_PASSWORD)
    desk = console.page.locator("#desk")
    await expect(console.page.locator("#me")).to_have_text(f"{EVE_NAME} (agent)")
    await expect(console.page.locator("#live")).to_have_text("live")

    customer = Watched(await browser.new_page())
    await customer.page.goto(f"{app.base_url}/webchat/")
    chat = customer.page.get_by_role("log")
    await customer_says(customer.page, CUSTOMER_HTML)
    await expect(chat.locator(".sg-bot")).to_have_count(1)
    # Not understood twice: the demo bot hands the conversation to a person.
    await customer_says(customer.page, CUSTOMER_SCRIPT)
    await expect(chat.locator(".sg-bot").last).to_contain_text("next in line")

    await expect(console.page.locator("#queue li")).to_have_count(1)
    await console.page.locator("#queue li").first.click()
    history = console.page.locator("#history")
    await expect(history.locator(".msg.customer .text")).to_have_text(
        [CUSTOMER_HTML, CUSTOMER_SCRIPT])
    await console.page.locator("#claim").click()
    await expect(console.page.locator("#conv-status")).to_contain_text(f"held by {EVE_NAME}")
    joined = f"{EVE_NAME} from our team has joined the conversation."
    # The agent joining is a line in the timeline, with the agent's initials.
    await expect(chat.locator(".sg-event .sg-text").last).to_have_text(joined)
    await expect(chat.locator(".sg-event .sg-avatar").last).to_have_text("<S")

    # The agent replies with HTML from the console...
    await console.page.locator("#reply-text").fill(AGENT_HTML)
    await console.page.locator("#reply-send").click()
    await expect(chat.locator(".sg-agent").last).to_have_text(f"{EVE_NAME}{AGENT_HTML}")
    await expect(history.locator(".msg.agent .text").last).to_have_text(AGENT_HTML)
    await expect(history.locator(".msg.agent .sender").last).to_have_text(EVE_NAME)
    # ... and with a script through the API; the console shows it live.
    eve = await agent(http, app, "eve", EVE_PASSWORD)
    [held] = (await eve.call("GET", "claimed"))[1]
    await eve.act(held["customer"], "messages", {"text": AGENT_SCRIPT})
    await expect(chat.locator(".sg-agent").last).to_have_text(f"{EVE_NAME}{AGENT_SCRIPT}")
    await expect(history.locator(".msg.agent .text").last).to_have_text(AGENT_SCRIPT)
    # The customer writes HTML while the agent holds the chat: live in the console.
    await customer_says(customer.page, CUSTOMER_HTML)
    await expect(history.locator(".msg.customer .text").last).to_have_text(CUSTOMER_HTML)
    await expect(history.locator(".msg").last).to_have_class(re.compile(r"\bcustomer\b"))

    await customer.assert_untouched(chat)
    await console.assert_untouched(desk)

    # The same, from the history, after a reload of either page.
    await customer.page.reload()
    chat = customer.page.get_by_role("log")
    await expect(chat.locator(".sg-event .sg-text")).to_have_text([joined])
    await expect(chat.locator(".sg-agent")).to_have_text(
        [f"{EVE_NAME}{AGENT_HTML}", f"{EVE_NAME}{AGENT_SCRIPT}"])
    await expect(chat.locator(".sg-agent .sg-name")).to_have_text([EVE_NAME] * 2)
    await expect(chat.locator(".sg-customer")).to_have_text(
        [CUSTOMER_HTML, CUSTOMER_SCRIPT, CUSTOMER_HTML])
    await console.page.reload()
    await expect(console.page.locator("#mine li")).to_have_count(1)
    await console.page.locator("#mine li").first.click()
    await expect(history.locator(".msg.agent .text")).to_have_text(
        [joined, AGENT_HTML, AGENT_SCRIPT])
    await expect(history.locator(".msg.agent .sender")).to_have_text([EVE_NAME] * 3)
    await expect(console.page.locator("#conv-status")).to_contain_text(f"held by {EVE_NAME}")

    await customer.assert_untouched(chat)
    await console.assert_untouched(desk)
    await console.page.close()
    await customer.page.close()
