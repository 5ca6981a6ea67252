"""Who is talking in the web chat widget, in a real headless Chromium: a
person from the team joining and leaving is a line in the timeline, their
messages carry their name and initials and look unlike the bot's, live and
after a reload; their typing in the console shows in the status line; their
message counts as unread while the chat is closed.

Real app on loopback with the demo bot on a real Redis; the person is
Alice Smith, through the agent API or the agent console in a second page."""

from __future__ import annotations

import json

import aiohttp
import pytest
from playwright.async_api import Browser, Locator, expect

from tests.support.app_server import RunningApp
from tests.support.browser import host_site, sign_in
from tests.support.widget_rig import DESKTOP, add_alice, embed_page
from tests.support.widget_team_rig import (
    ALICE,
    ALICE_INITIALS,
    ALICE_JOINED,
    ALICE_PASSWORD,
    BACK_WITH_THE_BOT,
    alice_claims,
    ask_for_a_person,
    background,
    item,
)

REPLY = "Hi, Alice here. Let me look at your order."
TYPING = f"{ALICE} is typing\u2026"


@pytest.fixture
async def app(desk_app: RunningApp) -> RunningApp:
    await add_alice(desk_app)
    return desk_app


def agent_typing_on(payload: str | bytes) -> bool:
    frame = json.loads(payload)
    return bool(frame.get("type") == "typing" and frame.get("sender") == "agent" and frame["on"])


async def who_is_talking(log: Locator) -> None:
    """The log shows Alice joining, her reply with her name and initials in a
    bubble unlike the bot's, and her leaving, as timeline lines."""
    events = log.locator(".sg-event")
    await expect(events).to_have_count(2)
    await expect(events.first).to_contain_text(ALICE_JOINED)
    await expect(events.last).to_contain_text(BACK_WITH_THE_BOT)
    # Lines, not bubbles: no message bubble holds those words.
    for words in (ALICE_JOINED, BACK_WITH_THE_BOT):
        await expect(log.locator(".sg-msg", has_text=words)).to_have_count(0)

    said = item(log, ".sg-agent")
    await expect(said).to_have_count(1)
    await expect(said.locator(".sg-agent")).to_contain_text(REPLY)
    await expect(said.locator(".sg-name")).to_have_text(ALICE)
    await expect(said.locator(".sg-avatar")).to_have_text(ALICE_INITIALS)
    await expect(said.locator(".sg-avatar")).to_be_visible()
    # The bot's messages are told apart: their own label, another colour.
    bot = item(log, ".sg-bot").first
    await expect(bot.locator(".sg-name, .sg-avatar").first).to_be_visible()
    await expect(bot).not_to_contain_text(ALICE)
    assert await background(said.locator(".sg-agent")) != await background(
        bot.locator(".sg-bot"))


async def test_a_person_joining_replying_and_leaving_live_and_after_a_reload(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    page = await browser.new_page()
    await page.goto(f"{app.base_url}/webchat/")
    log = page.get_by_role("log")
    await ask_for_a_person(page)
    await expect(log.locator(".sg-event")).to_have_count(0)

    alice, customer = await alice_claims(http, app)
    await expect(log.locator(".sg-event")).to_contain_text([ALICE_JOINED])
    await alice.act(customer, "messages", {"text": REPLY})
    await expect(log.locator(".sg-agent")).to_contain_text([REPLY])
    await alice.act(customer, "release")
    await who_is_talking(log)

    # The same lines, names and initials come back from the history.
    await page.reload()
    await expect(log.locator(".sg-customer")).to_have_count(1)
    await who_is_talking(log)
    await page.close()


async def test_an_agents_typing_through_the_api_shows_in_the_status_line(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    page = await browser.new_page()
    # The page's timers run only when the test says: the widget's own
    # clearing of a stale "typing" happens when the test moves the clock.
    await page.clock.install()
    async with page.expect_websocket() as opened:
        await page.goto(f"{app.base_url}/webchat/")
    socket = await opened.value
    await page.clock.pause_at(await page.evaluate("() => Date.now() + 1000"))
    status = page.locator("#segue-chat .sg-status")
    await ask_for_a_person(page)
    alice, customer = await alice_claims(http, app)
    await expect(page.locator(".sg-event")).to_have_count(1)
    await expect(status).to_have_text("")

    assert await alice.act(customer, "typing", {"on": True}) == {"shown": True,
                                                                 "channel": "web"}
    await expect(status).to_have_text(TYPING)
    await alice.act(customer, "typing", {"on": False})
    await expect(status).to_have_text("")

    # A lost "off": the line clears by itself 8 s after the last "on".
    await alice.act(customer, "typing", {"on": True})
    await expect(status).to_have_text(TYPING)
    await page.clock.run_for(7000)
    # Another "on" (the console repeats it while the agent types) starts the
    # 8 s again. The clock moves on once the page has the frame: Chromium
    # hands it to the widget in the task that reports it.
    async with socket.expect_event("framereceived", predicate=agent_typing_on):
        await alice.act(customer, "typing", {"on": True})
    await page.clock.run_for(7000)
    await expect(status).to_have_text(TYPING)
    await page.clock.run_for(1000)
    await expect(status).to_have_text("")
    await page.close()


async def test_typing_in_the_console_shows_in_the_widget_until_sent(
    app: RunningApp, browser: Browser
) -> None:
    customer = await browser.new_page()
    await customer.goto(f"{app.base_url}/webchat/")
    status = customer.locator("#segue-chat .sg-status")
    log = customer.get_by_role("log")
    await ask_for_a_person(customer)

    console = await browser.new_page()
    # The console's own pause ("stopped typing" after 5 s) waits for the
    # test's clock: only sending may clear the line here.
    await console.clock.install()
    await console.goto(f"{app.base_url}/agent/")
    await console.clock.pause_at(await console.evaluate("() => Date.now() + 1000"))
    await sign_in(console, "alice", ALICE_PASSWORD)
    await expect(console.locator("#live")).to_have_text("live")
    await console.locator("#queue li").first.click()
    await console.locator("#claim").click()
    await expect(log.locator(".sg-event")).to_contain_text([ALICE_JOINED])
    await expect(status).to_have_text("")

    await console.locator("#reply-text").press_sequentially("Hi, Alice")
    await expect(status).to_have_text(TYPING)
    await console.locator("#reply-send").click()
    await expect(log.locator(".sg-agent")).to_contain_text(["Hi, Alice"])
    await expect(status).to_have_text("")
    await console.close()
    await customer.close()


async def test_a_message_from_a_person_while_closed_is_counted_on_the_launcher(
    app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    context = await browser.new_context(**DESKTOP)
    page = await context.new_page()
    async with host_site(embed_page(app)) as shop:
        await page.goto(shop)
        launcher = page.locator("#segue-chat .sg-launcher")
        badge = page.locator("#segue-chat .sg-unread")
        log = page.get_by_role("log")
        await launcher.click()
        await ask_for_a_person(page)
        alice, customer = await alice_claims(http, app)
        await expect(log.locator(".sg-event")).to_contain_text([ALICE_JOINED])
        await page.get_by_role("button", name="Close chat").click()
        await expect(badge).to_be_hidden()

        await alice.act(customer, "messages", {"text": REPLY})
        await expect(badge).to_have_text("1")
        await expect(badge).to_be_visible()
        await expect(page.get_by_role("button", name="Chat with us, 1 unread")).to_be_visible()
        await alice.act(customer, "messages", {"text": "Are you still there?"})
        await expect(badge).to_have_text("2")

        await launcher.click()
        await expect(badge).to_be_hidden()
        await expect(log.locator(".sg-agent")).to_contain_text([REPLY, "Are you still there?"])
        await page.get_by_role("button", name="Close chat").click()
        await expect(page.get_by_role("button", name="Chat with us")).to_be_visible()
        await expect(badge).to_be_hidden()
    await context.close()
