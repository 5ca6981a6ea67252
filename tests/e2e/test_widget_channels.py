"""Other channels in the web chat widget, in a real headless Chromium: a
web chat linked with Telegram names Telegram in its header and shows the
messages and timeline lines written there with a "Telegram" tag; Telegram
joining and leaving are lines in the timeline; "link" offers a button that continues on Telegram.

Real app on loopback with the demo bot on a real Redis; Telegram through
the real connector in webhook mode against the local Bot API fake, linked by
the code flow as a person would."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.channels_rig import ChannelsRig, link_code
from tests.support.handoff_rig import running

TELEGRAM_JOINED = "Telegram chat"
LINKED = "This chat now continues your web chat conversation"
UNLINKED = "Telegram is no longer linked to this conversation"
FROM_TELEGRAM = "where is my order"
BOT_USERNAME = "segue_test_bot"
GREETING = "Hi! I'm Segue's demo assistant."
CODE_GIVEN = "Your link code is"
ORDER_QUESTION = "What is your order number?"


@pytest.fixture
async def telegram_named(redis_url: str) -> AsyncIterator[RunningApp]:
    """The demo bot, which knows its Telegram bot's username."""
    async with running(redis_url, telegram_bot_username=BOT_USERNAME) as app:
        yield app


async def tagged(log: Locator, sender: str, tag: str | None) -> list[str]:
    """The texts of the `sender` bubbles with the channel tag `tag` (None:
    with none), in order."""
    texts: list[str] = await log.locator(f".sg-msg.sg-{sender}").evaluate_all(
        """(bubbles, tag) => bubbles.filter(b => {
               const tags = Array.from(b.querySelectorAll('.sg-channel'), t => t.textContent);
               return tag === null ? tags.length === 0 : tags.length === 1 && tags[0] === tag;
           }).map(b => b.querySelector('.sg-text').textContent)""", tag)
    return texts


async def link_telegram(page: Page, channels: ChannelsRig) -> str:
    """The visitor asks for a link code on the web and enters it on Telegram
    (and says yes there); the code."""
    log = page.get_by_role("log")
    await send(page, "link")
    await expect(log.locator(".sg-bot").last).to_contain_text(CODE_GIVEN)
    code = link_code(await log.locator(".sg-bot .sg-text").last.inner_text())
    await channels.telegram_says(f"link {code}")
    await channels.telegram_sent(1)
    await channels.telegram_says("yes")
    await channels.telegram_sent(2)
    return code


async def test_telegram_messages_are_tagged_and_the_header_names_telegram(
    channels: ChannelsRig, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.goto(f"{channels.app.base_url}/webchat/")
    log = page.get_by_role("log")
    header = page.locator("#segue-chat .sg-channels")
    await send(page, "hello")
    await expect(log.locator(".sg-bot")).to_have_count(1)
    await expect(header).not_to_contain_text("Telegram")

    # Telegram joins while the widget is open: a line, and the header says so.
    code = await link_telegram(page, channels)
    await expect(log.locator(".sg-event")).to_have_count(1)
    await expect(log.locator(".sg-event")).to_contain_text(TELEGRAM_JOINED)
    await expect(header).to_be_visible()
    await expect(header).to_contain_text("Telegram")
    await expect(header).not_to_contain_text(re.compile("web", re.IGNORECASE))

    await channels.telegram_says(FROM_TELEGRAM)
    await channels.telegram_sent(3)
    await page.reload()
    # What was written on Telegram, by the visitor and the bot, says so; the
    # web's own messages carry no tag.
    await expect(log.locator(".sg-channel").first).to_be_visible()
    assert await tagged(log, "customer", "Telegram") == [f"link {code}", "yes", FROM_TELEGRAM]
    assert await tagged(log, "customer", None) == ["hello", "link"]
    from_bot = await tagged(log, "bot", "Telegram")
    assert from_bot[-1].startswith(ORDER_QUESTION), from_bot
    on_web = await tagged(log, "bot", None)
    assert len(on_web) == 2, on_web
    assert on_web[0].startswith(GREETING) and on_web[1].startswith(CODE_GIVEN), on_web
    # A line said on Telegram carries the tag too; the web's own line none.
    await expect(log.locator(".sg-event", has_text=LINKED).locator(".sg-channel")).to_have_text(
        "Telegram")
    await expect(log.locator(".sg-event", has_text=TELEGRAM_JOINED)).to_have_count(1)
    await expect(log.locator(".sg-event", has_text=TELEGRAM_JOINED).locator(".sg-channel")
                 ).to_have_count(0)
    await expect(header).to_contain_text("Telegram")

    await send(page, "unlink telegram")
    await expect(log.locator(".sg-event").last).to_contain_text(UNLINKED)
    await expect(header).not_to_contain_text("Telegram")
    await page.reload()
    await expect(log.locator(".sg-event").last).to_contain_text(UNLINKED)
    await expect(header).not_to_contain_text("Telegram")
    await page.close()


async def test_link_offers_to_continue_on_telegram(
    telegram_named: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    await page.goto(f"{telegram_named.base_url}/webchat/")
    await send(page, "link")
    log = page.get_by_role("log")
    button = log.locator("a.sg-link-button", has_text="Continue on Telegram")
    await expect(button).to_have_count(1)
    await expect(button).to_have_attribute(
        "href", re.compile(rf"^https://t\.me/{BOT_USERNAME}\?start=[A-Za-z0-9_-]+$"))
    await expect(button).to_have_attribute("target", "_blank")
    rel = (await button.get_attribute("rel") or "").split()
    assert {"noopener", "noreferrer"} <= set(rel), rel
    await page.close()
