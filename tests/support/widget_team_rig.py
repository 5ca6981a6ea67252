"""Helpers for the browser tests of the web chat widget with people from the
team and other channels (no tests here): the demo bot's handoff from the
widget, Alice Smith claiming it through the agent API, and what the widget
shows of a timeline entry."""

from __future__ import annotations

from typing import Any

import aiohttp
from playwright.async_api import Locator, Page, expect

from tests.support.app_server import RunningApp
from tests.support.browser import send
from tests.support.handoff_rig import AgentClient, agent

# The account of widget_rig.add_alice: a display name of two words.
ALICE = "Alice Smith"
ALICE_INITIALS = "AS"
ALICE_PASSWORD = "alice-pass-1"
ALICE_JOINED = f"{ALICE} from our team has joined the conversation."
BACK_WITH_THE_BOT = "You're back with our assistant."
QUEUED = "No agent is online right now."


def item(log: Locator, bubble: str) -> Locator:
    """The entries of the timeline (children of the log) that are, or hold,
    an element matching `bubble`: a message with its name and avatar."""
    return log.locator(f":scope > :is({bubble}, :has({bubble}))")


async def ask_for_a_person(page: Page) -> None:
    """The visitor asks the demo bot for a person and is queued."""
    await send(page, "talk to a human")
    await expect(page.get_by_role("log").locator(".sg-bot").last).to_contain_text(QUEUED)


async def alice_claims(http: aiohttp.ClientSession, app: RunningApp) -> tuple[AgentClient, str]:
    """Alice claims the one waiting conversation: her client, the customer id."""
    alice = await agent(http, app, "alice", ALICE_PASSWORD)
    status, body = await alice.call("GET", "queue")
    waiting: Any = body  # the queue is a list
    assert status == 200 and len(waiting) == 1, waiting
    customer = str(waiting[0]["customer"])
    await alice.act(customer, "claim")
    return alice, customer


async def background(bubble: Locator) -> str:
    """The computed background colour of `bubble`."""
    colour: str = await bubble.evaluate("b => getComputedStyle(b).backgroundColor")
    return colour
