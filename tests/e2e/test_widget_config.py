"""The script tag's settings, in a real headless Chromium on a shop's page
that embeds the widget: title, accent colour (with readable text on it),
corner, start opened, language of the widget's own words, and sound."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from playwright.async_api import Browser, Page, expect

from tests.support.app_server import RunningApp
from tests.support.browser import host_site, send
from tests.support.widget_rig import DESKTOP, HOST_TITLE, embed_page, set_hidden

DEFAULT_ACCENT = "rgb(41, 82, 204)"
# Counts the audio contexts made and the tones started, before any script runs.
AUDIO_SPY = """
window.__audio = {made: 0, tones: 0};
const RealContext = window.AudioContext;
window.AudioContext = class extends RealContext {
    constructor(...args) { super(...args); window.__audio.made += 1; }
    createOscillator() { window.__audio.tones += 1; return super.createOscillator(); }
};
"""


@asynccontextmanager
async def shop(browser: Browser, app: RunningApp, *, browser_locale: str = "en-US",
               **attributes: str) -> AsyncIterator[Page]:
    """A page of a shop whose script tag has the `data-` `attributes`, in a
    desktop browser whose language is `browser_locale`."""
    context = await browser.new_context(locale=browser_locale, **DESKTOP)
    await context.add_init_script(AUDIO_SPY)
    page = await context.new_page()
    async with host_site(embed_page(app, **attributes)) as url:
        await page.goto(url)
        yield page
    await context.close()


def luminance(css: str) -> float:
    channels = [int(c) / 255 for c in re.findall(r"\d+", css)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


async def colours(page: Page, selector: str) -> tuple[str, str]:
    """The text colour and background colour of `selector` in the widget."""
    found = await page.locator(f"#segue-chat {selector}").first.evaluate(
        "node => [getComputedStyle(node).color, getComputedStyle(node).backgroundColor]")
    return found[0], found[1]


async def test_the_title_names_header_dialog_and_launcher_and_the_widget_starts_closed(
    app: RunningApp, browser: Browser
) -> None:
    async with shop(browser, app, title="Acme help") as page:
        launcher = page.get_by_role("button", name="Acme help")
        await expect(launcher).to_have_attribute("aria-expanded", "false")
        await expect(page.get_by_role("dialog")).to_have_count(0)
        await launcher.click()
        await expect(page.get_by_role("dialog", name="Acme help")).to_be_visible()
        await expect(page.locator("#segue-chat .sg-title")).to_have_text("Acme help")
        # While the panel is open the launcher is out of the way, saying so.
        await expect(launcher).to_have_count(0)
        hidden = page.locator("#segue-chat .sg-launcher")
        await expect(hidden).to_have_attribute("aria-expanded", "true")
        await expect(hidden).to_have_attribute("aria-controls", "segue-chat-panel")


async def test_data_open_starts_opened_without_taking_the_pages_focus(
    app: RunningApp, browser: Browser
) -> None:
    async with shop(browser, app, open="true") as page:
        await expect(page.get_by_role("dialog", name="Support")).to_be_visible()
        await expect(page.locator("#segue-chat .sg-title")).to_have_text("Support")
        await expect(page.get_by_role("button", name="Chat with us")).to_be_hidden()
        assert await page.evaluate("() => document.activeElement === document.body")


@pytest.mark.parametrize(("colour", "expected"), [
    ("#ffd400", "rgb(255, 212, 0)"), ("#123", "rgb(17, 34, 51)"),
    ("#0B7A5C", "rgb(11, 122, 92)"), ("#7fb3ff", "rgb(127, 179, 255)"),
    ("red", DEFAULT_ACCENT), ("#12345", DEFAULT_ACCENT), ("#123456;color:red", DEFAULT_ACCENT),
])
async def test_the_accent_colour_keeps_every_text_readable(
    app: RunningApp, browser: Browser, colour: str, expected: str
) -> None:
    async with shop(browser, app, color=colour, open="true") as page:
        await send(page, "hello")
        await expect(page.locator(".sg-bot .sg-buttons button")).to_have_count(2)
        await expect(page.locator(".sg-customer.sg-pending")).to_have_count(0)
        head_text, head_background = await colours(page, ".sg-head")
        assert head_background == expected
        # Text on the accent, and accent-coloured text on white: WCAG AA.
        for selector in (".sg-head", ".sg-customer", ".sg-send"):
            text, background = await colours(page, selector)
            assert background == expected and contrast(text, background) >= 4.5, (selector, text)
        text, background = await colours(page, ".sg-buttons button")
        assert contrast(text, background) >= 4.5, (text, background)
        # White on dark accents, near-black on light ones.
        assert head_text in ("rgb(255, 255, 255)", "rgb(17, 17, 17)", "rgb(0, 0, 0)")
        assert (head_text == "rgb(255, 255, 255)") == (luminance(expected) < 0.18), head_text


async def test_the_launcher_and_panel_sit_in_the_chosen_corner(
    app: RunningApp, browser: Browser
) -> None:
    for position, on_left in (("left", True), ("LEFT", True), ("Left", True), ("right", False),
                              ("middle", False)):
        async with shop(browser, app, position=position) as page:
            launcher = await page.locator(".sg-launcher").bounding_box()
            assert launcher is not None and (launcher["x"] < 100) == on_left, position
            await page.locator(".sg-launcher").click()
            panel = await page.locator(".sg-panel").bounding_box()
            assert panel is not None and (panel["x"] < 100) == on_left, position
            assert panel["x"] + panel["width"] <= 1280


GERMAN = {"lang": "de", "launcher": "Schreiben Sie uns", "title": "Kundenservice",
          "field": "Nachricht", "placeholder": "Nachricht schreiben…", "send": "Senden",
          "close": "Chat schließen"}
SPANISH = {"lang": "es", "launcher": "Escríbenos", "title": "Atención al cliente",
           "field": "Mensaje", "placeholder": "Escribe un mensaje…", "send": "Enviar",
           "close": "Cerrar chat"}
ENGLISH = {"lang": "en", "launcher": "Chat with us", "title": "Support", "field": "Message",
           "placeholder": "Type a message…", "send": "Send", "close": "Close chat"}


@pytest.mark.parametrize(("attributes", "browser_locale", "words"), [
    ({"locale": "de-AT"}, "en-US", GERMAN),
    ({}, "es-MX", SPANISH),
    ({"locale": "es"}, "de-DE", SPANISH),
    ({"locale": "fr-FR"}, "de-DE", ENGLISH),
    ({"locale": "de_DE"}, "es-ES", GERMAN),
    ({"locale": "ES_mx"}, "en-US", SPANISH),
])
async def test_the_widgets_words_are_in_the_visitors_language(
    app: RunningApp, browser: Browser, attributes: dict[str, str], browser_locale: str,
    words: dict[str, str],
) -> None:
    async with shop(browser, app, browser_locale=browser_locale, **attributes) as page:
        # The widget says which language it speaks, whatever the page's is.
        await expect(page.locator("#segue-chat")).to_have_attribute("lang", words["lang"])
        await page.get_by_role("button", name=words["launcher"]).click()
        await expect(page.get_by_role("dialog", name=words["title"])).to_be_visible()
        field = page.get_by_label(words["field"])
        await expect(field).to_have_attribute("placeholder", words["placeholder"])
        await expect(field).to_be_focused()
        await send(page, "hello", field=words["field"], button=words["send"])
        await expect(page.locator(".sg-bot .sg-name")).to_have_text(["Bot"])
        await page.get_by_role("button", name=words["close"]).click()
        await expect(page.get_by_role("dialog")).to_have_count(0)


async def test_no_sound_unless_the_script_tag_asks(app: RunningApp, browser: Browser) -> None:
    async with shop(browser, app) as page:
        await page.get_by_role("button", name="Chat with us").click()
        await set_hidden(page, True)
        await send(page, "hello")
        # The reply came while the tab was hidden: the title says so, silently.
        await expect(page).to_have_title("(1) New message")
        assert await page.evaluate("() => window.__audio") == {"made": 0, "tones": 0}


async def test_with_data_sound_on_a_message_to_a_hidden_tab_beeps(
    app: RunningApp, browser: Browser
) -> None:
    async with shop(browser, app, sound="on") as page:
        await page.get_by_role("button", name="Chat with us").click()
        # Browsers let a page play sound only after a gesture: the click made it possible.
        assert await page.evaluate("() => window.__audio") == {"made": 1, "tones": 0}
        await send(page, "hello")
        await expect(page.locator(".sg-bot")).to_have_count(1)
        assert await page.evaluate("() => window.__audio.tones") == 0
        await set_hidden(page, True)
        await send(page, "again")
        await page.wait_for_function("() => window.__audio.tones === 1")
        await expect(page).to_have_title("(1) New message")
        await set_hidden(page, False)
        await expect(page).to_have_title(HOST_TITLE)
