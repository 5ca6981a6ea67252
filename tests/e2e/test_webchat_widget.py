"""The web chat widget in a real headless Chromium."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.support.app_server import RunningApp
from tests.support.browser import send


async def test_chat_buttons_and_history_after_a_reload(app: RunningApp, browser: Browser) -> None:
    page = await browser.new_page()
    await page.goto(f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    await send(page, "hello")
    await expect(log.locator(".sg-bot .sg-text")).to_have_text(["Hi! What would you like to do?"])
    await expect(log.locator(".sg-bot .sg-buttons button")).to_have_text(
        ["Order status", "Talk to a person"])
    # The customer's bubble is acknowledged (no longer pending).
    await expect(log.locator(".sg-customer.sg-pending")).to_have_count(0)
    await log.get_by_role("button", name="Order status").click()
    await expect(log.locator(".sg-bot").last).to_contain_text("You chose: order_status")
    await page.reload()
    await expect(log.locator(".sg-customer")).to_have_text(["hello", "Order status"])
    await page.close()


async def test_customer_text_is_shown_as_text_never_as_html(
    app: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    await page.goto(f"{app.base_url}/webchat/")
    attack = '<img src=x onerror="alert(1)"><b>bold</b>'
    await send(page, attack)
    log = page.get_by_role("log")
    await expect(log.locator(".sg-bot .sg-text").last).to_have_text(f"You said: {attack}")
    await expect(log.locator(".sg-customer")).to_have_text([attack])
    assert await log.locator("img, b").count() == 0
    assert dialogs == []
    await page.close()


async def test_a_resume_link_continues_the_conversation_and_leaves_the_url(
    app: RunningApp, browser: Browser
) -> None:
    first = await browser.new_page()
    await first.goto(f"{app.base_url}/webchat/")
    await send(first, "question from the first browser")
    await send(first, "link")
    link = first.get_by_role("link", name="Continue on the web")
    await expect(link).to_have_count(1)
    href = await link.get_attribute("href")
    assert href is not None and "resume=" in href
    # Another browser (its own storage) opens the link.
    context = await browser.new_context()
    second = await context.new_page()
    await second.goto(href)
    # The person who opened it is asked first; a yes shows the joined history.
    await second.get_by_role("button", name="Yes, link it").click()
    await expect(second.get_by_role("log").locator(".sg-customer").first).to_have_text(
        "question from the first browser")
    await expect(second).to_have_url(f"{app.base_url}/webchat/")
    # Reloading does not try the used link again: the conversation simply goes on.
    await second.reload()
    await expect(second.get_by_role("log").locator(".sg-customer").first).to_have_text(
        "question from the first browser")
    await context.close()
    await first.close()
