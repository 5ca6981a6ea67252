"""The rating of a closed conversation in a real headless Chromium: the web
chat widget asks how it went with buttons 1 to 5 once the agent closed it
from the console, the customer clicks 5 and then No, thanks, and the
console, signed in on its own page and still on the conversation, shows the
rating as it comes."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Browser, expect

from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.handoff_rig import agent
from tests.support.workspace_rig import console, open_from

QUESTION = "How did we do? Please rate this conversation from 1 (poor) to 5 (great)."
ASK_COMMENT = ("Thank you for your rating! Anything you'd like to add? Write it here, or press "
               "No, thanks.")


async def test_the_widget_asks_for_a_rating_and_the_console_shows_it(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession,
) -> None:
    page = await browser.new_page()
    await page.goto(f"{desk_app.base_url}/webchat/")
    log = page.get_by_role("log")
    await send(page, "talk to a human")
    await expect(log.locator(".sg-bot .sg-text").last).to_contain_text("No agent is online")
    ann = await agent(http, desk_app, "ann")
    status, queue = await ann.call("GET", "queue")
    waiting: Any = queue  # a list, on this path
    assert (status, len(waiting)) == (200, 1)
    customer = waiting[0]["customer"]
    await ann.act(customer, "claim")
    await ann.act(customer, "messages", {"text": "Your parcel left this morning."})
    await expect(log.locator(".sg-agent .sg-text").last).to_have_text(
        "Your parcel left this morning.")

    desk = await console(browser, desk_app, "ann")
    history = await open_from(desk, "mine", customer)
    await expect(desk.locator("#conv-status")).to_contain_text("held by ann")
    await desk.locator("#close").click()

    question = log.locator(".sg-bot").filter(has_text=QUESTION)
    await expect(question.locator(".sg-buttons button")).to_have_text(["1", "2", "3", "4", "5"])
    await expect(desk.locator("#csat-block")).to_be_hidden()
    await question.get_by_role("button", name="5", exact=True).click()
    comment_question = log.locator(".sg-bot").filter(has_text=ASK_COMMENT)
    await expect(comment_question.locator(".sg-buttons button")).to_have_text(["No, thanks"])
    # The console, still on the conversation, shows the rating as it comes.
    await expect(desk.locator("#csat")).to_have_text("Rated 5/5")
    await expect(history.locator(".msg.internal[data-event='rated'] .text")).to_have_text(
        ["Rated 5/5"])

    await comment_question.get_by_role("button", name="No, thanks").click()
    await expect(log.locator(".sg-bot .sg-text").last).to_have_text("Thank you!")
    await expect(log.locator(".sg-customer")).to_have_text(["talk to a human", "5",
                                                            "No, thanks"])
    await expect(desk.locator("#csat")).to_have_text("Rated 5/5")
    await expect(desk.locator("#csat-comment")).to_be_hidden()
    view = await ann.conversation(customer)
    assert (view["csat"]["score"], view["csat"]["comment"]) == (5, None)
    await desk.close()
    await page.close()
    await ann.close()
