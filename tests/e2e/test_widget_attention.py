"""How the widget gets a visitor's attention, in a real headless Chromium on
a shop's page: an unread count on the closed launcher for the replies that
arrive while it is closed, and a flashing page title while the tab is hidden."""

from __future__ import annotations

import asyncio

import pytest
from playwright.async_api import Browser, expect

from bot.core.policy import Policy
from tests.support.app_server import RunningApp
from tests.support.browser import host_site, send
from tests.support.policies import RecordingEchoPolicy
from tests.support.widget_rig import DESKTOP, HOST_TITLE, embed_page, set_hidden


@pytest.fixture
def app_policy() -> RecordingEchoPolicy:
    return RecordingEchoPolicy()


async def test_replies_that_arrive_while_closed_are_counted_on_the_launcher(
    app: RunningApp, app_policy: Policy, browser: Browser
) -> None:
    assert isinstance(app_policy, RecordingEchoPolicy)
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    async with host_site(embed_page(app)) as shop:
        await page.goto(shop)
        launcher = page.locator("#segue-chat .sg-launcher")
        badge = page.locator("#segue-chat .sg-unread")
        await expect(badge).to_be_hidden()
        # The bot answers only when the test lets it: after the visitor closed the chat.
        app_policy.release = asyncio.Event()
        await launcher.click()
        await send(page, "first question")
        await send(page, "second question")
        await page.get_by_role("button", name="Close chat").click()
        app_policy.release.set()
        await expect(badge).to_have_text("2")
        await expect(badge).to_be_visible()
        await expect(page.get_by_role("button", name="Chat with us, 2 unread")).to_be_visible()
        await launcher.click()
        await expect(badge).to_be_hidden()
        await expect(page.get_by_role("log").locator(".sg-bot .sg-text")).to_have_text(
            ["Echo: first question", "Echo: second question"])
        # A reply while open is read as it comes: nothing to count after closing.
        await send(page, "third question")
        await expect(page.locator(".sg-bot")).to_have_count(3)
        await page.get_by_role("button", name="Close chat").click()
        await expect(page.get_by_role("button", name="Chat with us")).to_be_visible()
        await expect(badge).to_be_hidden()
        # The history shown after a reload is not new either.
        await page.reload()
        await expect(page.locator("#segue-chat .sg-bot")).to_have_count(3)
        await expect(badge).to_be_hidden()
        await expect(page.get_by_role("button", name="Chat with us")).to_be_visible()
    await context.close()


async def test_the_title_flashes_while_the_tab_is_hidden_and_is_restored(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    # The page's timers run only when the test says: the flashing is seen tick by tick.
    await page.clock.install()
    async with host_site(embed_page(app, open="true")) as shop:
        await page.goto(shop)
        await page.clock.pause_at(await page.evaluate("() => Date.now() + 1000"))
        # A reply while the visitor looks: the title stays.
        await send(page, "seen")
        await expect(page.locator(".sg-bot")).to_have_count(1)
        assert await page.title() == HOST_TITLE
        await set_hidden(page, True)
        await send(page, "unseen")
        await expect(page).to_have_title("(1) New message")
        # It alternates with the page's own title, once a second.
        await page.clock.run_for(1000)
        assert await page.title() == HOST_TITLE
        await page.clock.run_for(1000)
        assert await page.title() == "(1) New message"
        await send(page, "unseen too")
        await expect(page.locator(".sg-bot")).to_have_count(3)
        await page.clock.run_for(2000)
        assert await page.title() == "(2) New messages"
        # Back on the tab: the page's title, and no more flashing.
        await set_hidden(page, False)
        assert await page.title() == HOST_TITLE
        for _ in range(2):
            await page.clock.run_for(1000)
            assert await page.title() == HOST_TITLE
    await context.close()


async def test_a_title_the_page_sets_while_flashing_is_the_one_given_back(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(locale="de-DE", **DESKTOP)
    page = await context.new_page()
    await page.clock.install()
    async with host_site(embed_page(app, open="true")) as shop:
        await page.goto(shop)
        await page.clock.pause_at(await page.evaluate("() => Date.now() + 1000"))
        await set_hidden(page, True)
        await send(page, "eins", field="Nachricht", button="Senden")
        # In the visitor's language, one and then more than one.
        await expect(page).to_have_title("(1) Neue Nachricht")
        await send(page, "zwei", field="Nachricht", button="Senden")
        await expect(page.locator(".sg-bot")).to_have_count(2)
        await page.clock.run_for(2000)
        assert await page.title() == "(2) Neue Nachrichten"
        # The shop changes its own title meanwhile (its cart, say).
        await page.evaluate("() => { document.title = 'Warenkorb (1) - A shop'; }")
        await page.clock.run_for(1000)
        assert await page.title() == "Warenkorb (1) - A shop"
        await page.clock.run_for(1000)
        assert await page.title() == "(2) Neue Nachrichten"
        # Changed once more, just before the visitor comes back: that one stays.
        await page.clock.run_for(1000)
        await page.evaluate("() => { document.title = 'Warenkorb (2) - A shop'; }")
        await set_hidden(page, False)
        assert await page.title() == "Warenkorb (2) - A shop"
        await page.clock.run_for(2000)
        assert await page.title() == "Warenkorb (2) - A shop"
    await context.close()
