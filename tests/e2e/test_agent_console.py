"""The agent console in a real headless Chromium, next to the customer's web
chat widget in a second page; the customer also writes from Telegram (the
local Bot API fake), so the conversation holds messages from two channels.
A live message that arrives while the console loads its conversation stays
on screen when the older answer is drawn."""

from __future__ import annotations

import asyncio
import re

import aiohttp
from playwright.async_api import Browser, Route, expect

from tests.support.app_server import RunningApp
from tests.support.browser import send, sign_in
from tests.support.channels_rig import ChannelsRig, link_code
from tests.support.handoff_rig import PASSWORDS, claimed_chat
from tests.support.webchat_client import PROBE, PROBE_ANSWER

ATTACK = '<img src=x onerror="alert(1)"><b>bold</b>'


async def test_login_claim_reply_reaches_the_web_chat(
    channels: ChannelsRig, browser: Browser
) -> None:
    alerts: list[str] = []
    customer = await browser.new_page()
    customer.on("dialog", lambda d: alerts.append(d.message))
    await customer.goto(f"{channels.app.base_url}/webchat/")
    chat = customer.get_by_role("log")

    # The customer links Telegram, writes from there, then asks for a person on the web.
    await send(customer, "link")
    await expect(chat.locator(".sg-bot").last).to_contain_text("Your link code is")
    code = link_code(await chat.locator(".sg-bot").last.inner_text())
    await channels.telegram_says(f"link {code}")
    await channels.telegram_sent(1)
    await channels.telegram_says("yes")
    await channels.telegram_sent(2)
    await channels.telegram_says(ATTACK)
    await channels.telegram_sent(3)
    await send(customer, "talk to a human")
    await expect(chat.locator(".sg-bot").last).to_contain_text("No agent is online")

    console = await browser.new_page()
    console.on("dialog", lambda d: alerts.append(d.message))
    await console.goto(f"{channels.app.base_url}/agent/")
    await sign_in(console, "ann", "wrong")
    await expect(console.locator("#login-error")).to_have_text("wrong username or password")
    await sign_in(console, "ann", PASSWORDS["ann"])
    await expect(console.locator("#me")).to_have_text("ann (agent)")
    await expect(console.locator("#live")).to_have_text("live")

    waiting = console.locator("#queue li")
    await expect(waiting).to_have_count(1)
    await waiting.first.click()
    history = console.locator("#history")
    await expect(history.locator(".msg.customer .text")).to_contain_text(
        ["link", "yes", ATTACK, "talk to a human"])
    badges = await history.locator(".msg.customer .badge").all_inner_texts()
    assert {"web chat", "Telegram"} <= set(badges)
    await expect(console.locator("#channels li")).to_have_count(2)
    # Customer text is text: no element was made of it, no script ran.
    assert await history.locator("img, b").count() == 0

    await console.locator("#claim").click()
    await expect(console.locator("#conv-status")).to_contain_text("held by ann")
    await expect(chat.locator(".sg-event").last).to_contain_text(
        "ann from our team has joined the conversation.")

    await console.locator("#reply-text").fill("Hello, I'm looking at your order now.")
    await console.locator("#reply-send").click()
    await expect(chat.locator(".sg-agent").last).to_contain_text(
        "Hello, I'm looking at your order now.")
    await expect(chat.locator(".sg-agent").last).to_contain_text("ann")

    # The customer answers; it shows up live in the console, and the bot keeps quiet:
    # its next word in the widget answers a probe sent after.
    bot_said = await chat.locator(".sg-bot").count()
    await send(customer, "thank you!")
    await expect(history.locator(".msg.customer .text").last).to_have_text("thank you!")
    await expect(history.locator(".msg").last).to_have_class(re.compile(r"\bcustomer\b"))
    await send(customer, PROBE)
    await expect(chat.locator(".sg-bot").nth(bot_said)).to_contain_text(PROBE_ANSWER)
    await expect(chat.locator(".sg-bot")).to_have_count(bot_said + 1)

    await console.locator("#release").click()
    await expect(chat.locator(".sg-event").last).to_contain_text("back with our assistant")
    assert alerts == []
    await console.close()
    await customer.close()


async def test_a_live_message_that_arrives_while_the_conversation_reloads_stays_shown(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    joined = "ann from our team has joined the conversation."
    reply = "Your parcel left the warehouse this morning."

    console = await browser.new_page()
    await console.goto(f"{desk_app.base_url}/agent/")
    await sign_in(console, "ann", PASSWORDS["ann"])
    await expect(console.locator("#live")).to_have_text("live")
    mine = console.locator("#mine li")
    await expect(mine).to_have_count(1)
    await mine.first.click()
    history = console.locator("#history")
    await expect(history.locator(".msg.agent .text")).to_have_text([joined])

    # The next load of the conversation is read now, before the reply exists,
    # and answered only when the test lets it.
    read, release = asyncio.Event(), asyncio.Event()

    async def hold_first_load(route: Route) -> None:
        if route.request.method != "GET" or read.is_set():
            await route.continue_()
            return
        answer = await route.fetch()
        assert answer.status == 200, await answer.text()
        read.set()
        await release.wait()
        await route.fulfill(response=answer)

    await console.route("**/agent/api/conversations/*", hold_first_load)
    await mine.first.click()
    await asyncio.wait_for(read.wait(), timeout=10)

    # While that load is under way, ann replies through the API: the console
    # shows the reply live.
    await ann.act(customer, "messages", {"text": reply})
    await expect(history.locator(".msg.agent .text")).to_have_text([joined, reply])
    # What is on screen now is marked, so that the re-render is seen to happen.
    await history.evaluate(
        "h => h.querySelectorAll('.msg').forEach(m => m.dataset.beforeLoad = '1')")

    # The older answer arrives: the conversation is drawn again, reply kept, once.
    release.set()
    await expect(history.locator(".msg[data-before-load]")).to_have_count(0)
    await expect(history.locator(".msg.agent .text")).to_have_text([joined, reply])
    await expect(console.locator("#conv-status")).to_contain_text("held by ann")

    await console.close()
    await client.close()
