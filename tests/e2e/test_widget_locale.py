"""The widget tells the server the visitor's language, in a real headless
Chromium: the browser's, or the one its script tag names (also written with
an underscore, as "de_DE")."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, expect

from bot.core.model import Outbound
from bot.core.policy import Policy, TurnContext
from tests.support.app_server import RunningApp
from tests.support.browser import host_site as serve_host_site
from tests.support.browser import send


class LocaleEcho:
    """Answers every message with the locale it came with."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return [Outbound(text=f"locale: {turn.inbound.locale}")]


@pytest.fixture
def app_policy() -> Policy:
    return LocaleEcho()


@pytest.fixture
def script_locale() -> str:
    return "es-MX"


@pytest.fixture
async def host_site(app: RunningApp, script_locale: str) -> AsyncIterator[str]:
    """Another site that embeds the widget with `data-locale` `script_locale`."""
    page = ("<!doctype html><html><head><title>A shop</title></head><body>"
            f'<script src="{app.base_url}/webchat/widget.js" data-open="true" '
            f'data-locale="{script_locale}"></script></body></html>')
    async with serve_host_site(page) as url:
        yield url


async def test_the_widget_sends_the_browsers_language(
    app: RunningApp, browser: Browser
) -> None:
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    await page.goto(f"{app.base_url}/webchat/")
    await send(page, "hallo", field="Nachricht", button="Senden")
    await expect(page.get_by_role("log").locator(".sg-bot .sg-text")).to_have_text(
        ["locale: de-DE"])
    await context.close()


async def test_the_script_tags_data_locale_overrides_the_browsers(
    host_site: str, browser: Browser
) -> None:
    context = await browser.new_context(locale="de-DE")
    page = await context.new_page()
    await page.goto(host_site)
    await send(page, "hola", field="Mensaje", button="Enviar")
    await expect(page.get_by_role("log").locator(".sg-bot .sg-text")).to_have_text(
        ["locale: es-MX"])
    await context.close()


@pytest.mark.parametrize("script_locale", ["de_DE"])
async def test_a_locale_written_with_an_underscore_is_read_as_a_language_tag(
    host_site: str, browser: Browser
) -> None:
    context = await browser.new_context(locale="es-ES")
    page = await context.new_page()
    await page.goto(host_site)
    await send(page, "hallo", field="Nachricht", button="Senden")
    await expect(page.get_by_role("log").locator(".sg-bot .sg-text")).to_have_text(
        ["locale: de-DE"])
    await context.close()
