"""The widget for people who use a keyboard or a screen reader, in a real
headless Chromium: everything is reachable and usable with the keyboard
alone, focus is visible and goes where it should, and axe-core finds no
serious or critical problem in a real conversation, on a desktop and on a
phone."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Locator, Page, expect

from tests.support.app_server import RunningApp
from tests.support.browser import host_site, send
from tests.support.widget_rig import DESKTOP, PHONE, add_alice, converse, embed_page


async def outline(control: Locator) -> tuple[str, float]:
    """The focused `control`'s outline: style and width in pixels."""
    style, width = await control.evaluate(
        "node => [getComputedStyle(node).outlineStyle,"
        " parseFloat(getComputedStyle(node).outlineWidth)]")
    return style, width


async def test_the_chat_works_with_the_keyboard_alone(app: RunningApp, browser: Browser) -> None:
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    async with host_site(embed_page(app)) as shop:
        await page.goto(shop)
        launcher = page.get_by_role("button", name="Chat with us")
        # The shop's page has nothing to focus: the first Tab reaches the launcher.
        await page.keyboard.press("Tab")
        await expect(launcher).to_be_focused()
        assert await outline(launcher) == ("solid", 3)
        await expect(launcher).to_have_attribute("aria-expanded", "false")
        await page.keyboard.press("Enter")
        field = page.get_by_role("textbox", name="Message")
        await expect(page.get_by_role("dialog", name="Support")).to_be_visible()
        await expect(field).to_be_focused()
        await page.keyboard.type("hello")
        await page.keyboard.press("Enter")
        # The log has a name of its own, and says who said what.
        log = page.get_by_role("log", name="Conversation")
        await expect(log.locator(".sg-bot .sg-buttons button")).to_have_count(2)
        await expect(log.locator(".sg-pending")).to_have_count(0)
        await expect(log).to_match_aria_snapshot(
            '- log "Conversation":\n'
            "  - text: /^You:\\shello Bot Hi!/\n"
            '  - button "Order status"\n'
            '  - button "Talk to a person"')
        await expect(field).to_be_focused()
        await expect(field).to_have_value("")
        # Tab reaches the Send button, and back through the quick replies.
        await page.keyboard.press("Tab")
        await expect(page.get_by_role("button", name="Send")).to_be_focused()
        await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Shift+Tab")
        reply = log.get_by_role("button", name="Talk to a person")
        await expect(reply).to_be_focused()
        await page.keyboard.press("Shift+Tab")
        order = log.get_by_role("button", name="Order status")
        await expect(order).to_be_focused()
        assert await outline(order) == ("solid", 3)
        await page.keyboard.press("Enter")
        await expect(log.locator(".sg-customer .sg-text")).to_have_text(["hello", "Order status"])
        await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("order number")
        # The log itself can be focused, to scroll it; before it, the close button.
        await page.keyboard.press("Shift+Tab")
        await expect(log).to_be_focused()
        await page.keyboard.press("Shift+Tab")
        close = page.get_by_role("button", name="Close chat")
        await expect(close).to_be_focused()
        assert await outline(close) == ("solid", 3)
        # Escape anywhere in the panel closes it; focus goes back to the launcher.
        await page.keyboard.press("Tab")
        await expect(log).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.get_by_role("dialog")).to_have_count(0)
        await expect(launcher).to_be_focused()
        await expect(launcher).to_have_attribute("aria-expanded", "false")
        # The close button, pressed from the keyboard, does the same.
        await page.keyboard.press("Enter")
        await expect(field).to_be_focused()
        await close.focus()
        await page.keyboard.press("Enter")
        await expect(page.get_by_role("dialog")).to_have_count(0)
        await expect(launcher).to_be_focused()
    await context.close()


def serious(results: Any) -> list[str]:
    """axe's serious and critical violations, each with what it is about."""
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            + ", ".join(str(node["target"]) for node in v["nodes"])
            for v in results.response["violations"] if v["impact"] in ("serious", "critical")]


@pytest.fixture
async def app(desk_app: RunningApp) -> RunningApp:
    await add_alice(desk_app)
    return desk_app


async def axe_check(page: Page) -> None:
    results = await Axe().run(page)
    assert serious(results) == []
    scoped = await Axe().run(page, context="#segue-chat")
    assert serious(scoped) == []


@pytest.mark.parametrize("device", ["desktop", "phone"])
async def test_axe_finds_nothing_serious_in_a_conversation_with_bot_and_person(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession, device: str
) -> None:
    context = await browser.new_context(**(PHONE if device == "phone" else DESKTOP))
    page = await context.new_page()
    # Bot, person and customer messages, a timeline line, quick replies, a link.
    await converse(page, app, http)
    await send(page, "link")
    log = page.get_by_role("log")
    await expect(log.locator("a.sg-link-button")).to_have_count(1)
    await expect(log.locator(".sg-event")).to_have_count(1)
    await expect(log.locator(".sg-bot .sg-buttons button").first).to_be_visible()
    await expect(log.locator(".sg-customer.sg-pending")).to_have_count(0)
    await page.locator(".sg-panel").evaluate(
        "panel => Promise.all(panel.getAnimations().map(a => a.finished))")
    await axe_check(page)
    # Closed, with the launcher on the page.
    await page.get_by_role("button", name="Close chat").click()
    await expect(page.get_by_role("button", name="Chat with us")).to_be_visible()
    await axe_check(page)
    await context.close()
