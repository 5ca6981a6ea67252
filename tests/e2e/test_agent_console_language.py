"""The agent console in a real headless Chromium shows the customer's
language, so the agent answers a German customer in German; the language is
drawn as text, whatever the stored value holds."""

from __future__ import annotations

import aiohttp
from playwright.async_api import Browser, expect

from bot.core.conversation import ConversationState
from bot.core.model import HistoryEntry
from tests.support.app_server import RunningApp
from tests.support.browser import sign_in
from tests.support.handoff_rig import PASSWORDS, hand_off
from tests.support.webchat_client import WebChatClient

ATTACK = '<img src=x onerror="alert(1)"><b>bold</b>'


async def test_the_console_shows_the_customers_language_as_text(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    german = await WebChatClient.connect(http, desk_app.ws_url, locale="de")
    [greeting] = await german.turn("hallo")
    assert greeting["text"].startswith("Hallo!"), greeting
    await german.turn("ich möchte mit einem Menschen sprechen", expect=2)
    unknown = await WebChatClient.connect(http, desk_app.ws_url)
    await hand_off(unknown)

    async def odd_language(state: ConversationState) -> list[HistoryEntry]:
        state.locale, state.locale_from = ATTACK, "hint"
        return []

    await desk_app.segue.engine.locks.change(unknown.customer or "", odd_language)

    alerts: list[str] = []
    console = await browser.new_page()
    console.on("dialog", lambda d: alerts.append(d.message))
    await console.goto(f"{desk_app.base_url}/agent/")
    await sign_in(console, "ann", PASSWORDS["ann"])
    waiting = console.locator("#queue li")
    await expect(waiting).to_have_count(2)

    await waiting.filter(has_text=german.customer or "").click()
    await expect(console.locator("#conv-title")).to_have_text(f"Customer {german.customer}")
    await expect(console.locator("#language")).to_have_text("German (de)")
    await expect(console.locator("#reply-text")).to_have_attribute(
        "placeholder", "Write a reply in German…")

    await waiting.filter(has_text=unknown.customer or "").click()
    await expect(console.locator("#conv-title")).to_have_text(f"Customer {unknown.customer}")
    await expect(console.locator("#language")).to_have_text(ATTACK)
    await expect(console.locator("#reply-text")).to_have_attribute(
        "placeholder", "Write a reply…")
    assert await console.locator(".facts img, .facts b").count() == 0
    assert alerts == []
    await console.close()
    await german.close()
    await unknown.close()
