"""What the widget looks like, in a real headless Chromium: a short
conversation with the demo bot and then a person from the team, on a desktop
and on a phone. The screenshots are kept in tests/artifacts/ for a person to
look at; the tests check what is on them."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.support.app_server import RunningApp
from tests.support.widget_rig import DESKTOP, PHONE, add_alice, converse

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


@pytest.fixture
async def app(desk_app: RunningApp) -> RunningApp:
    await add_alice(desk_app)
    return desk_app


async def test_the_open_widget_on_a_desktop(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    await converse(page, app, http)
    log = page.get_by_role("log")
    reply = log.locator(".sg-agent").last
    await expect(reply.locator(".sg-name")).to_have_text("Alice Smith")
    await expect(log.locator(".sg-row-agent .sg-avatar").last).to_have_text("AS")
    await expect(reply.get_by_role("link", name="https://example.com/track/A1002")).to_have_count(1)
    panel = await page.locator(".sg-panel").bounding_box()
    assert panel is not None
    # A panel in the bottom right corner, not the whole screen.
    assert panel["width"] < 500 and panel["x"] > 640, panel
    assert panel["x"] + panel["width"] <= 1280 and panel["y"] + panel["height"] <= 800, panel
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "widget-desktop.png", animations="disabled")
    await context.close()


async def test_the_open_widget_on_a_phone(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    context = await browser.new_context(**PHONE)
    page = await context.new_page()
    await converse(page, app, http)
    await expect(page.get_by_role("button", name="Close chat")).to_be_in_viewport(ratio=1)
    await expect(page.get_by_label("Message")).to_be_in_viewport(ratio=1)
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=ARTIFACTS / "widget-phone.png", animations="disabled")
    await context.close()
