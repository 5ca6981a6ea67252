"""What the widget looks like, in a real headless Chromium: a short
conversation with the demo bot and then a person from the team, on a desktop
and on a phone. The screenshots are kept in tests/artifacts/ for a person to
look at; the tests check what is on them."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import Browser, Page, expect

from bot.handoff.ports import AgentAccount
from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.handoff_rig import CHEAP_HASHER, agent

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
         "is_mobile": True, "has_touch": True}
AGENT_REPLY = ("Hi, I'm Alice. Your order A1002 leaves our warehouse today; "
               "you can follow it at https://example.com/track/A1002")


@pytest.fixture
async def app(desk_app: RunningApp) -> RunningApp:
    """The desk app with one more agent, Alice Smith."""
    assert desk_app.segue.handoff is not None
    await desk_app.segue.handoff.agents.put_agent(AgentAccount(
        username="alice", display_name="Alice Smith", role="agent",
        password_hash=CHEAP_HASHER.hash("alice-pass-1")))
    return desk_app


async def converse(page: Page, app: RunningApp, http: aiohttp.ClientSession) -> None:
    """On `page`: an order question for the bot, then a person who answers."""
    await page.goto(f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    await send(page, "where is my order")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("order number")
    await send(page, "A1002")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("Anything else")
    await send(page, "talk to a human")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("No agent is online")
    alice = await agent(http, app, "alice", "alice-pass-1")
    status, [waiting] = await alice.call("GET", "queue")
    assert status == 200
    await alice.act(waiting["customer"], "claim")
    await alice.act(waiting["customer"], "messages", {"text": AGENT_REPLY})
    reply = log.locator(".sg-agent").last
    await expect(reply.locator(".sg-text")).to_have_text(AGENT_REPLY)
    await expect(reply.locator(".sg-name")).to_have_text("Alice Smith")
    await expect(log.locator(".sg-row-agent .sg-avatar").last).to_have_text("AS")
    await expect(reply.get_by_role("link", name="https://example.com/track/A1002")).to_have_count(1)
    await expect(log.locator(".sg-customer.sg-pending")).to_have_count(0)


async def test_the_open_widget_on_a_desktop(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    await converse(page, app, http)
    panel = await page.locator(".sg-panel").bounding_box()
    assert panel is not None
    # A panel in the bottom right corner, not the whole screen.
    assert panel["width"] < 500 and panel["x"] > 640
    assert panel["x"] + panel["width"] <= 1280 and panel["y"] + panel["height"] <= 800
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
