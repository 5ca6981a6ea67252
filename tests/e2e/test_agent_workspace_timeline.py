"""One timeline in the agent console, in a real headless Chromium: the team's
steps (queued, claimed, closed, rated) and the notices the customer saw as
centred lines with their time, live; the customer typing in the web chat;
the last handoff's response and resolution times, and the rating the
customer gives in the web chat after the close."""

from __future__ import annotations

import re

import aiohttp
from playwright.async_api import Browser, Route, expect

from tests.support.app_server import RunningApp
from tests.support.handoff_rig import agent, claimed_chat, hand_off, web_customer
from tests.support.workspace_rig import console, frames_until, open_from, set_clock

TIME = re.compile(r"^\d{1,2}:\d{2}")
TYPING = "Customer is typing…"


async def test_the_team_steps_are_centred_lines_with_their_time_added_live(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    page = await console(browser, desk_app, "root")  # an admin sees every conversation live
    history = await open_from(page, "queue", customer)
    steps = history.locator(".msg.event.internal")
    await expect(steps.locator(".text")).to_have_text(
        ["Waiting for a person: customer asked for a person"])
    await expect(steps.locator(".time")).to_have_text([TIME])
    await expect(steps).to_have_attribute("data-event", "queued")
    await expect(steps.locator(".badge")).to_have_count(0)  # the team's own: no channel

    # Loading the conversation again fails from now on: what comes, comes live.
    async def refuse(route: Route) -> None:
        await route.abort()

    await page.route("**/agent/api/conversations/*", refuse)
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "claim")
    await expect(steps.locator(".text")).to_have_text(
        ["Waiting for a person: customer asked for a person", "ann took the conversation"])
    await expect(steps.nth(1)).to_have_attribute("data-event", "claimed")
    await expect(page.locator("#action-error")).not_to_be_empty()  # the reload failed

    await page.unroute("**/agent/api/conversations/*", refuse)
    await ann.act(customer, "close")
    await expect(steps.locator(".text")).to_have_text(
        ["Waiting for a person: customer asked for a person", "ann took the conversation",
         "ann closed the conversation"])
    # The notices the customer got: centred lines too, with their channel (and who).
    notices = history.locator(".msg.event.public")
    await expect(notices.locator(".text")).to_have_text(
        ["ann from our team has joined the conversation.", re.compile("ann closed this")])
    await expect(notices.locator(".badge")).to_have_text(["web chat", "web chat"])
    await expect(notices.first.locator(".sender")).to_have_text("ann")
    await expect(steps.locator(".time")).to_have_text([TIME] * 3)
    await expect(page.locator("#conv-status")).to_contain_text("with the bot")
    await page.close()
    await client.close()


async def test_the_customer_typing_in_the_web_chat_is_shown_until_it_stops(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    client, customer, _ = await claimed_chat(http, desk_app)
    page = await console(browser, desk_app, "ann", fake_clock=True)
    history = await open_from(page, "mine", customer)
    typing = page.locator("#customer-typing")
    await expect(typing).to_be_hidden()

    await client.send({"type": "typing", "on": True})
    await expect(typing).to_have_text(TYPING)
    await expect(typing).to_be_visible()
    await client.send({"type": "typing", "on": False})
    await expect(typing).to_be_hidden()

    # Typing again (another window of the same visitor), then the message.
    second = await web_customer(http, desk_app, session=client.session)
    await second.send({"type": "typing", "on": True})
    await expect(typing).to_be_visible()
    await second.say("Here is my order number: A1002")
    await expect(history.locator(".msg.customer .text").last).to_have_text(
        "Here is my order number: A1002")
    await expect(typing).to_be_hidden()

    # An "on" whose "off" never comes runs out 8 s after it.
    third = await web_customer(http, desk_app, session=client.session)
    await third.send({"type": "typing", "on": True})
    await expect(typing).to_be_visible()
    await page.clock.fast_forward(7000)
    assert await typing.is_visible()
    await page.clock.fast_forward(1500)
    await expect(typing).to_be_hidden()
    await page.close()
    for socket in (client, second, third):
        await socket.close()


async def test_the_times_and_the_rating_of_the_last_handoff_are_shown(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    clock = set_clock(desk_app, 1_800_000_000.0)
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    page = await console(browser, desk_app, "ann")
    await open_from(page, "queue", customer)
    await expect(page.locator("#times-block")).to_be_hidden()
    clock.now += 30
    await page.locator("#claim").click()
    await expect(page.locator("#conv-status")).to_contain_text("held by ann")
    clock.now += 65
    await page.locator("#reply-text").fill("Hello, I'm Ann. Let me check.")
    await page.locator("#reply-send").click()
    await expect(page.locator("#reply-text")).to_have_value("")
    clock.now += 505
    await page.locator("#close").click()

    times = page.locator("#handoff-times dd")
    await expect(times).to_have_text(["ann", "1 min 35 s", "10 min"])
    await expect(page.locator("#handoff-times dt")).to_have_text(
        ["Handled by", "First response", "Resolution"])
    await expect(page.locator("#csat-block")).to_be_hidden()

    # The customer rates it in the web chat; the console, on the conversation, shows it.
    await frames_until(client, lambda f: bool(f.get("buttons")))
    await client.turn("4", payload="csat:4")
    await expect(page.locator("#csat")).to_have_text("Rated 4/5")
    await expect(page.locator("#csat-comment")).to_be_hidden()
    await client.turn("Quick and kind <i>thanks</i>")
    await expect(page.locator("#csat-comment")).to_have_text("“Quick and kind <i>thanks</i>”")
    await expect(page.locator("#csat-comment")).to_be_visible()
    await expect(page.locator("#history .msg.internal[data-event='rated'] .text")).to_have_text(
        ["Rated 4/5", "Comment added"])
    await expect(times).to_have_text(["ann", "1 min 35 s", "10 min"])
    assert await page.locator("#desk i").count() == 0
    await page.close()
    await client.close()
