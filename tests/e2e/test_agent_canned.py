"""Canned replies in the agent console, in a real headless Chromium: an admin
keeps them in the console's panel; an agent, in a browser context of their
own, types "/" and a shortcut's start in the reply box, picks one from the
list with the keyboard or the mouse, and sends it to a web chat customer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from playwright.async_api import Browser, BrowserContext, Locator, Page, Route, expect

from tests.support.app_server import RunningApp
from tests.support.browser import sign_in
from tests.support.handoff_rig import PASSWORDS, AgentClient, agent, hand_off, web_customer
from tests.support.webchat_client import WebChatClient
from tests.support.widget_rig import add_alice

GREETING = "Hi {customer_name}, I'm {agent_name}. What can I do for you today?"
GREETED = "Hi, I'm Alice Smith. What can I do for you today?"
NEWS = "Great news: {agent_name} found your parcel, {customer_name}."
SHIP = "Your order ships within two working days."


@pytest.fixture
async def contexts(browser: Browser) -> AsyncIterator[tuple[BrowserContext, BrowserContext]]:
    """Two browser contexts, two sets of cookies: an admin's and an agent's."""
    admin, alice = await browser.new_context(), await browser.new_context()
    yield admin, alice
    await alice.close()
    await admin.close()


async def console(context: BrowserContext, app: RunningApp, name: str, password: str) -> Page:
    page = await context.new_page()
    await page.goto(f"{app.base_url}/agent/")
    await sign_in(page, name, password)
    await expect(page.locator("#live")).to_have_text("live")
    return page


async def claimed_by_alice(http: aiohttp.ClientSession,
                           app: RunningApp) -> tuple[WebChatClient, AgentClient]:
    """A web chat customer who asked for a person; Alice Smith holds the chat."""
    await add_alice(app)
    client = await web_customer(http, app)
    await hand_off(client)
    alice = await agent(http, app, "alice", "alice-pass-1")
    await alice.act(client.customer or "", "claim")
    return client, alice


async def open_mine(page: Page) -> Locator:
    """The one conversation the agent holds, opened; its reply box."""
    mine = page.locator("#mine li")
    await expect(mine).to_have_count(1)
    await mine.first.click()
    await expect(page.locator("#conv-status")).to_contain_text("held by Alice Smith")
    return page.locator("#reply-text")


async def frames_until_agent_message(client: WebChatClient) -> list[dict[str, Any]]:
    """The web chat's frames up to an agent's message (not a notice), that included."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while True:
            frames.append(await client.receive())
            last = frames[-1]
            if last["type"] == "message" and last["sender"] == "agent" and not last.get("event"):
                return frames


async def test_an_admin_adds_a_canned_reply_and_an_agent_sends_it_with_their_name(
    desk_app: RunningApp, contexts: tuple[BrowserContext, BrowserContext],
    http: aiohttp.ClientSession,
) -> None:
    admin_context, alice_context = contexts
    admin = await console(admin_context, desk_app, "root", PASSWORDS["root"])
    panel = admin.get_by_role("region", name="Canned replies")
    await panel.get_by_label("Shortcut").fill("Greet")
    await panel.get_by_label("Text").fill(GREETING)
    await panel.get_by_role("button", name="Save").click()
    await expect(panel.locator(".canned-item .shortcut")).to_have_text(["/greet"])
    await expect(panel.locator(".canned-item .text")).to_have_text([GREETING])
    await expect(panel.get_by_label("Shortcut")).to_have_value("")  # ready for the next one

    client, _ = await claimed_by_alice(http, desk_app)
    page = await console(alice_context, desk_app, "alice", "alice-pass-1")
    await expect(page.locator("#canned-admin")).to_be_hidden()  # agents only use them
    box = await open_mine(page)
    await expect(box).to_have_attribute("aria-expanded", "false")
    await box.press_sequentially("/gr")
    listbox = page.get_by_role("listbox", name="canned replies")
    options = listbox.get_by_role("option")
    await expect(options).to_have_count(1)
    await expect(options.locator(".shortcut")).to_have_text(["/greet"])
    await expect(options.locator(".preview")).to_contain_text(["Hi {customer_name}, I'm"])
    await expect(options.first).to_have_attribute("aria-selected", "true")
    await expect(box).to_have_attribute("aria-expanded", "true")
    await expect(box).to_have_attribute("aria-activedescendant",
                                        await options.first.get_attribute("id") or "none")

    await box.press("Enter")
    await expect(box).to_have_value(GREETED)
    await expect(listbox).to_be_hidden()
    await expect(box).to_have_attribute("aria-expanded", "false")
    assert await box.get_attribute("aria-activedescendant") is None

    # The agent edits it, and Enter (the list closed) sends it as any reply.
    await box.press_sequentially(" Ask away!")
    await box.press("Enter")
    frames = await frames_until_agent_message(client)
    sent = frames[-1]
    assert (sent["text"], sent["agent_name"]) == (GREETED + " Ask away!", "Alice Smith")
    # The customer saw Alice typing while she picked the reply.
    assert {"type": "typing", "on": True, "sender": "agent", "agent_name": "Alice Smith"} in [
        {k: f.get(k) for k in ("type", "on", "sender", "agent_name")} for f in frames]
    await expect(box).to_have_value("")
    await expect(page.locator("#history .msg.agent .text").last).to_have_text(
        GREETED + " Ask away!")
    await client.close()


async def test_the_list_by_keyboard_and_mouse(
    desk_app: RunningApp, contexts: tuple[BrowserContext, BrowserContext],
    http: aiohttp.ClientSession,
) -> None:
    root = await agent(http, desk_app, "root")
    for shortcut, text in (("ship", SHIP), ("greet", GREETING), ("great-news", NEWS),
                           ("restart", "/restart")):
        assert (await root.call("POST", "canned", {"shortcut": shortcut, "text": text}))[0] == 200
    client, _ = await claimed_by_alice(http, desk_app)
    page = await console(contexts[1], desk_app, "alice", "alice-pass-1")
    box = await open_mine(page)
    listbox = page.get_by_role("listbox", name="canned replies")
    options = listbox.get_by_role("option")

    async def highlighted(shortcut: str) -> None:
        chosen = options.filter(has_text=f"/{shortcut}")
        await expect(chosen).to_have_attribute("aria-selected", "true")
        await expect(options.and_(page.locator("[aria-selected=true]"))).to_have_count(1)
        await expect(box).to_have_attribute("aria-activedescendant",
                                            await chosen.get_attribute("id") or "none")

    await box.press_sequentially("/GR")  # shortcuts are lowercase: any case finds them
    await expect(options.locator(".shortcut")).to_have_text(["/great-news", "/greet"])
    await highlighted("great-news")
    await box.press("ArrowDown")
    await highlighted("greet")
    await box.press("ArrowDown")
    await highlighted("great-news")  # round to the top
    await box.press("ArrowUp")
    await highlighted("greet")
    await box.press_sequentially("ee")  # "/GRee": greet alone
    await expect(options.locator(".shortcut")).to_have_text(["/greet"])
    await box.press("Backspace")
    await box.press("Backspace")
    await expect(options).to_have_count(2)
    await highlighted("greet")  # the highlight stays on the same reply
    await box.press("Tab")
    await expect(box).to_have_value(GREETED)
    await expect(box).to_be_focused()

    await box.fill("")
    await box.press_sequentially("/s")
    await expect(options.locator(".shortcut")).to_have_text(["/ship"])
    await box.press("Escape")
    await expect(listbox).to_be_hidden()
    await expect(box).to_have_value("/s")
    await page.locator("#transfer-to").focus()
    await box.focus()
    await expect(box).to_be_focused()
    await expect(listbox).to_be_hidden()  # closed on purpose: it stays so until typing
    await box.press_sequentially("h")
    await expect(options.locator(".shortcut")).to_have_text(["/ship"])
    await options.first.click()
    await expect(box).to_have_value(SHIP)
    await expect(listbox).to_be_hidden()

    for typed in ("/x", "/ ", "hi /gr", " /gr"):  # no shortcut starts so, or no "/" first
        await box.fill("")
        await box.press_sequentially(typed)
        await expect(box).to_have_value(typed)
        await expect(listbox).to_be_hidden()
    await box.fill("")
    await box.press_sequentially("/")
    await expect(options).to_have_count(4)  # "/" alone lists them all
    await page.locator("#transfer-to").focus()
    await expect(listbox).to_be_hidden()  # gone with the focus

    # A reply that itself reads like "/…" is text to send, not a search.
    await box.fill("")
    await box.press_sequentially("/re")
    await box.press("Enter")
    await expect(box).to_have_value("/restart")
    await page.locator("#transfer-to").focus()
    await box.focus()
    await expect(box).to_be_focused()
    await expect(listbox).to_be_hidden()
    await client.close()


async def test_the_customers_name_fills_its_placeholder_when_the_conversation_has_one(
    desk_app: RunningApp, contexts: tuple[BrowserContext, BrowserContext],
    http: aiohttp.ClientSession,
) -> None:
    root = await agent(http, desk_app, "root")
    await root.call("POST", "canned", {"shortcut": "great-news", "text": NEWS})
    client, _ = await claimed_by_alice(http, desk_app)
    page = await console(contexts[1], desk_app, "alice", "alice-pass-1")
    name = "Dana $& <b>O'Neil</b>"  # kept as written: no "$&" pattern, no HTML

    async def with_profile(route: Route) -> None:
        answer = await route.fetch()
        view = await answer.json()
        await route.fulfill(response=answer, json={**view, "profile": {"name": name}})

    await page.route("**/agent/api/conversations/*", with_profile)
    box = await open_mine(page)
    await box.press_sequentially("/great")
    await box.press("Enter")
    await expect(box).to_have_value(f"Great news: Alice Smith found your parcel, {name}.")
    await client.close()


async def test_the_admins_panel_shows_text_as_text_refuses_typos_and_deletes(
    desk_app: RunningApp, browser: Browser,
) -> None:
    alerts: list[str] = []
    page = await browser.new_page()
    page.on("dialog", lambda d: alerts.append(d.message))
    await page.goto(f"{desk_app.base_url}/agent/")
    await sign_in(page, "root", PASSWORDS["root"])
    panel = page.get_by_role("region", name="Canned replies")
    items = panel.locator(".canned-item")

    async def save(shortcut: str, text: str) -> None:
        await panel.get_by_label("Shortcut").fill(shortcut)
        await panel.get_by_label("Text").fill(text)
        await panel.get_by_role("button", name="Save").click()

    async def saved(shortcut: str, text: str) -> None:
        await save(shortcut, text)
        # The form is emptied once it is saved; only then is the next one typed.
        await expect(panel.get_by_label("Shortcut")).to_have_value("")

    attack = '<img src=x onerror="alert(1)"><b>bold</b> {agent_name}'
    await saved("html", attack)
    await saved("ship", SHIP)
    await expect(items.locator(".text")).to_have_text([attack, SHIP])
    assert await panel.locator("img, b").count() == 0

    await save("greet", "Hi {custmer_name}!")
    await expect(page.locator("#canned-error")).to_contain_text(
        "unknown placeholder {custmer_name}")
    await expect(panel.get_by_label("Text")).to_have_value("Hi {custmer_name}!")  # to correct
    await expect(items).to_have_count(2)

    await saved("ship", "Shipped today.")  # replaces
    await expect(page.locator("#canned-error")).to_have_text("")
    await expect(items.locator(".text")).to_have_text([attack, "Shipped today."])
    await panel.get_by_role("button", name="Delete /html").click()
    await expect(items.locator(".shortcut")).to_have_text(["/ship"])
    await page.reload()  # what the server keeps
    await expect(items.locator(".text")).to_have_text(["Shipped today."])
    assert alerts == []
    await page.close()
