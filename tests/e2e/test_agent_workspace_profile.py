"""Who the customer is and how long they wait, in the agent console in a real
headless Chromium: the queue and the held list name the customer when a
channel says it (a host site's signed-in visitor, Telegram's sender through
the local Bot API fake); the conversation's header shows that profile and
the linked channels; the queue shows every wait and flags the long ones;
a conversation the automatic assignment gives the agent is announced."""

from __future__ import annotations

import re
from dataclasses import replace

import aiohttp
from playwright.async_api import Browser, expect

from bot.core.model import ChannelIdentity
from tests.fakes.telegram_api import CUSTOMER
from tests.support.app_server import RunningApp
from tests.support.channels_rig import ChannelsRig
from tests.support.handoff_rig import hand_off, web_customer
from tests.support.webchat_client import WebChatClient
from tests.support.workspace_rig import (
    console,
    desk_of,
    list_item,
    open_from,
    set_clock,
    signed_identity,
)

TELEGRAM_ID = ChannelIdentity("telegram", str(CUSTOMER["id"]))
MARA = '<b>Mara</b> Quinn'  # a name is text, whatever it holds


async def test_the_lists_and_the_header_name_the_customer_from_their_channels(
    channels: ChannelsRig, browser: Browser
) -> None:
    app = channels.app
    token = signed_identity("user-42", name=MARA, email="mara@example.com")
    visitor = await WebChatClient.connect(channels.http, app.ws_url, identity=token)
    await hand_off(visitor)
    mara = visitor.customer or ""
    await channels.telegram_says("talk to a human")
    await channels.telegram_sent(2)
    dana = await channels.customer_of(TELEGRAM_ID)
    anonymous = await web_customer(channels.http, app)
    await hand_off(anonymous)

    page = await console(browser, app, "ann")
    # Named where a channel says the name; the id beside it, or alone.
    await expect(page.locator("#queue li .who")).to_have_text(
        [MARA, "Dana Reyes", anonymous.customer or ""])
    await expect(list_item(page, "queue", mara).locator(".id")).to_have_text(mara)
    await expect(list_item(page, "queue", anonymous.customer or "").locator(".id")).to_have_count(0)

    await open_from(page, "queue", dana)
    await expect(page.locator("#conv-title")).to_have_text("Dana Reyes")
    await expect(page.locator("#conv-id")).to_have_text(dana)
    profile = page.locator("#conv-profile li")
    await expect(profile).to_have_text(["Username @dreyes", "Language setting en"])
    await expect(page.locator("#channels li")).to_have_text([f"Telegram {CUSTOMER['id']}"])

    await open_from(page, "queue", mara)
    await expect(page.locator("#conv-title")).to_have_text(MARA)
    await expect(profile).to_have_text(["E-mail mara@example.com"])
    await expect(page.locator("#channels li")).to_have_text(["web chat u:user-42"])
    assert await page.locator("#desk b").count() == 0

    # Claimed, the customer is named in the held list too.
    await page.locator("#claim").click()
    await expect(page.locator("#conv-status")).to_contain_text("held by ann")
    await expect(page.locator("#mine li .who")).to_have_text([MARA])
    await expect(page.locator("#mine li .meta")).to_have_text(["yours"])

    await open_from(page, "queue", anonymous.customer or "")
    await expect(page.locator("#conv-title")).to_have_text(f"Customer {anonymous.customer}")
    await expect(profile).to_have_count(0)
    await page.close()


async def test_the_queue_shows_each_wait_and_flags_the_long_ones(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    clock = set_clock(desk_app, 1_800_000_000.0)
    first, second = await web_customer(http, desk_app), await web_customer(http, desk_app)
    await hand_off(first)
    clock.now += 100
    await hand_off(second)
    clock.now += 201  # the first waited 301 s, past the 300 s alert; the second 201 s

    page = await console(browser, desk_app, "ann")
    late, early = (list_item(page, "queue", c.customer or "") for c in (first, second))
    await expect(late.locator(".waited")).to_have_text("Waiting 5 min")
    await expect(late).to_have_class(re.compile(r"\bwaiting-too-long\b"))
    await expect(late.locator(".waited")).to_have_class(re.compile(r"\balert\b"))
    await expect(early.locator(".waited")).to_have_text("Waiting 3 min")
    await expect(early).not_to_have_class(re.compile(r"waiting-too-long"))
    await expect(early.locator(".waited")).not_to_have_class(re.compile(r"alert"))

    # A lower alert: the next change of the queue shows the second flagged too.
    desk = desk_of(desk_app)
    desk.options = replace(desk.options, queue_alert_seconds=60)
    third = await web_customer(http, desk_app)
    await hand_off(third)
    newest = list_item(page, "queue", third.customer or "")
    await expect(newest.locator(".waited")).to_have_text("Waiting 0 s")
    await expect(early).to_have_class(re.compile(r"\bwaiting-too-long\b"))
    await expect(newest).not_to_have_class(re.compile(r"waiting-too-long"))
    await page.close()


async def test_a_conversation_assigned_automatically_is_announced_and_held(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    agents = desk_of(desk_app).agents
    for name, capacity in (("ann", 1), ("bob", 2)):
        account = await agents.get_agent(name)
        assert account is not None
        await agents.put_agent(replace(account, capacity=capacity))
    page = await console(browser, desk_app, "ann")  # online: assignment may pick ann

    token = signed_identity("user-7", name="Mara Quinn")
    visitor = await WebChatClient.connect(http, desk_app.ws_url, identity=token)
    await hand_off(visitor)
    notice = page.locator("#notice")
    await expect(notice.locator("#notice-text")).to_have_text("Assigned to you: Mara Quinn")
    await expect(page.locator("#mine li .who")).to_have_text(["Mara Quinn"])
    await expect(page.locator("#queue li")).to_have_count(0)
    await notice.get_by_role("button", name="Open").click()
    await expect(notice).to_be_hidden()
    await expect(page.locator("#conv-title")).to_have_text("Mara Quinn")
    await expect(page.locator("#conv-status")).to_contain_text("held by ann")
    await expect(page.locator("#history .msg.internal[data-event='assigned'] .text")).to_have_text(
        ["Assigned to ann automatically"])
    # The transfer list says how many each holds, of how many they may be given.
    await expect(page.locator("#transfer-to option[value='bob']")).to_have_text(
        "bob (offline, 0 of 2 open)")
    await page.close()
