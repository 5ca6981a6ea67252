"""What a message may hold, shown in a real headless Chromium: http(s)
addresses in text become links that open safely in a new tab, other schemes
stay text, line breaks are kept, HTML is text, right-to-left text reads right
to left; link buttons and images only for http(s) addresses (relative ones
resolved against Segue's server)."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Browser, Locator, Page, Route, expect

from bot.core.model import Image, Link, Outbound
from bot.core.policy import Policy, TurnContext
from tests.support.app_server import RunningApp
from tests.support.browser import send

# A 1 × 1 transparent PNG, served for every image the tests show.
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082")
LINES = "Line one\nLine two\n\nLine four, after an empty line"


class RichPolicy:
    """"rich": a reply with link buttons and images, good and bad ones;
    "lines": a reply of several lines; anything else is echoed."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        text = turn.inbound.text
        if text == "rich":
            return [Outbound(
                text="Here you go.",
                links=(Link("https://t.me/segue_bot?start=tok3n", "Continue on Telegram"),
                       Link("/webchat/?resume=r3sume", "Continue on the web"),
                       Link("javascript:alert(1)", "Script link"),
                       Link("data:text/html,<b>x</b>", "Data link")),
                images=(Image("https://shop.example/parcel.png", "Your parcel"),
                        Image("/media/map.png"),
                        Image("javascript:alert(2)", "Script image"),
                        Image("data:image/png;base64,AAAA", "Data image")))]
        if text == "lines":
            return [Outbound(text=LINES)]
        return [Outbound(text=f"You said: {text}")]


@pytest.fixture
def app_policy() -> Policy:
    return RichPolicy()


async def open_chat(app: RunningApp, page: Page) -> Locator:
    """Segue's demo page; every image is answered with one pixel. The log."""

    async def pixel(route: Route) -> None:
        await route.fulfill(status=200, content_type="image/png", body=PIXEL)

    await page.route(re.compile(r".*\.png$"), pixel)
    await page.goto(f"{app.base_url}/webchat/")
    return page.get_by_role("log")


async def assert_safe_link(link: Locator, href: str) -> None:
    await expect(link).to_have_attribute("href", href)
    await expect(link).to_have_attribute("target", "_blank")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")


async def test_addresses_in_text_become_safe_links_and_other_schemes_stay_text(
    app: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    log = await open_chat(app, page)
    said = ("Track it at https://shop.example/track?id=A1&x=1, or (see "
            "https://en.wikipedia.org/wiki/Parcel_(post)). Not links: javascript:alert(1) "
            "data:text/html,hi ftp://files.example/a and http:// alone; "
            'nor <a href="javascript:alert(2)">this</a>.')
    await send(page, said)
    reply = log.locator(".sg-bot .sg-text").last
    # Nothing of the text is lost or changed, links included.
    await expect(reply).to_have_text(f"You said: {said}")
    links = reply.locator("a")
    await expect(links).to_have_text(
        ["https://shop.example/track?id=A1&x=1", "https://en.wikipedia.org/wiki/Parcel_(post)"])
    await assert_safe_link(links.nth(0), "https://shop.example/track?id=A1&x=1")
    await assert_safe_link(links.nth(1), "https://en.wikipedia.org/wiki/Parcel_(post)")
    # The customer's own bubble shows the same links.
    await expect(log.locator(".sg-customer a")).to_have_count(2)
    assert await log.locator("a[href^='javascript'], a[href^='data'], a[href^='ftp']").count() == 0
    await page.close()


async def test_line_breaks_are_kept(app: RunningApp, browser: Browser) -> None:
    page = await browser.new_page()
    log = await open_chat(app, page)
    await send(page, "lines")
    reply = log.locator(".sg-bot .sg-text").last
    await expect(reply).to_have_text(LINES)
    # As a person sees it: one line each, the empty one too.
    assert await reply.inner_text() == LINES
    await page.close()


async def test_each_message_takes_the_direction_of_its_own_text(
    app: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    log = await open_chat(app, page)
    hebrew = "\u05e9\u05dc\u05d5\u05dd, \u05de\u05d4 \u05e9\u05dc\u05d5\u05de\u05da?"
    await send(page, hebrew)
    await expect(log.locator(".sg-bot .sg-text")).to_have_text([f"You said: {hebrew}"])
    directions = await log.locator(".sg-text").evaluate_all(
        "texts => texts.map(t => [t.dir, getComputedStyle(t).direction])")
    # The Hebrew message right to left; the reply, which starts in English, left to right.
    assert directions == [["auto", "rtl"], ["auto", "ltr"]], directions
    # The widget itself stays left to right, as its words are.
    assert await page.evaluate(
        "() => getComputedStyle(document.querySelector('#segue-chat .sg-log')).direction"
    ) == "ltr"
    await page.close()


async def test_html_in_a_message_is_shown_as_text(app: RunningApp, browser: Browser) -> None:
    page = await browser.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: dialogs.append(d.message))
    log = await open_chat(app, page)
    attack = ('<img src=x onerror="alert(1)"><script>alert(2)</script>'
              '<a href="https://evil.example/">click</a><iframe src="javascript:alert(3)">')
    await send(page, attack)
    await expect(log.locator(".sg-bot .sg-text").last).to_have_text(f"You said: {attack}")
    await expect(log.locator(".sg-customer .sg-text")).to_have_text([attack])
    assert await log.locator("img, script, iframe").count() == 0
    # The address in the attack is a link of its own, to itself; the words stay text.
    for link in await log.locator("a").all():
        await expect(link).to_have_text("https://evil.example/")
    assert dialogs == []
    await page.close()


async def test_link_buttons_and_images_only_for_http_addresses(
    app: RunningApp, browser: Browser
) -> None:
    page = await browser.new_page()
    log = await open_chat(app, page)
    await send(page, "rich")
    reply = log.locator(".sg-bot").last
    buttons = reply.locator("a.sg-link-button")
    await expect(buttons).to_have_text(["Continue on Telegram", "Continue on the web"])
    await assert_safe_link(buttons.nth(0), "https://t.me/segue_bot?start=tok3n")
    await assert_safe_link(buttons.nth(1), f"{app.base_url}/webchat/?resume=r3sume")
    # A link that is not http(s) is not shown as a link at all.
    await expect(reply).not_to_contain_text("Script link")
    await expect(reply).not_to_contain_text("Data link")
    images = reply.locator("img")
    await expect(images).to_have_count(2)
    await expect(images.nth(0)).to_have_attribute("src", "https://shop.example/parcel.png")
    await expect(images.nth(0)).to_have_attribute("alt", "Your parcel")
    await expect(images.nth(1)).to_have_attribute("src", f"{app.base_url}/media/map.png")
    await expect(images.nth(1)).to_have_attribute("alt", "")
    await expect(images.nth(0)).to_have_css("max-width", "100%")
    # The link opens a new tab; this page stays on the chat.
    async with page.context.expect_page() as opened:
        await buttons.nth(1).click()
    new_tab = await opened.value
    await expect(new_tab).to_have_url(f"{app.base_url}/webchat/?resume=r3sume")
    assert await new_tab.evaluate("() => window.opener") is None
    await new_tab.close()
    await expect(page).to_have_url(f"{app.base_url}/webchat/")
    await page.close()
