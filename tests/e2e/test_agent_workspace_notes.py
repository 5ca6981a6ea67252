"""Private notes in the agent console, in a real headless Chromium: written
in the composer's "Private note" mode, shown in the timeline marked private,
live in a colleague's console, allowed on a conversation back with the bot;
and never sent to the customer: not on the web chat's socket, not in the
history a reload replays, not to Telegram (the local Bot API fake)."""

from __future__ import annotations

import re

import aiohttp
from playwright.async_api import Browser, Page, expect

from bot.core.model import ChannelIdentity
from tests.fakes.telegram_api import CUSTOMER
from tests.support.app_server import RunningApp
from tests.support.channels_rig import ChannelsRig
from tests.support.handoff_rig import agent, claimed_chat, hand_off, web_customer
from tests.support.webchat_client import PROBE, PROBE_ANSWER
from tests.support.workspace_rig import carries, console, frames_until, open_from

NOTE = "Sounds upset: VIP customer, refund approved by Carla <b>today</b>"
LATER_NOTE = "Closed: refund sent, follow up on Monday"
REPLY = "Your refund is on its way."


async def write_note(page: Page, text: str) -> None:
    """`text` added as a private note from the composer, which goes back to replying."""
    await page.get_by_role("tab", name="Private note").click()
    await expect(page.locator("#reply-form")).to_be_hidden()
    await page.locator("#note-text").fill(text)
    await page.locator("#note-text").press("Enter")
    await expect(page.locator("#note-text")).to_have_value("")
    await page.get_by_role("tab", name="Reply").click()
    await expect(page.locator("#note-form")).to_be_hidden()


async def test_a_note_is_shown_as_private_and_never_reaches_the_web_chat(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    joined = await frames_until(client, lambda f: f.get("event") == "agent_joined")
    page = await console(browser, desk_app, "ann")
    history = await open_from(page, "mine", customer)

    await write_note(page, NOTE)
    note = history.locator(".msg.note")
    await expect(note.locator(".text")).to_have_text([NOTE])
    await expect(note.locator(".note-label")).to_have_text(["Private note · ann"])
    await expect(note.locator(".note-hint")).to_contain_text(["the customer never does"])
    assert await history.locator("b").count() == 0
    # Then a reply from the same composer: the customer's socket gets it, and
    # nothing of the note before it.
    await page.locator("#reply-text").fill(REPLY)
    await page.locator("#reply-send").click()
    await expect(history.locator(".msg.agent:not(.event) .text")).to_have_text([REPLY])
    said = await frames_until(client, lambda f: f.get("text") == REPLY)
    assert not carries(joined + said, NOTE) and not carries(joined + said, "Private note")
    assert [f["type"] for f in said if f["type"] == "message"] == ["message"]

    # Closed, the conversation is back with the bot: a note is still allowed.
    await page.locator("#close").click()
    await expect(page.locator("#conv-status")).to_contain_text("with the bot")
    await write_note(page, LATER_NOTE)
    await expect(history.locator(".msg.note .text")).to_have_text([NOTE, LATER_NOTE])
    assert await page.locator("#action-error").text_content() == ""
    # The customer hears the close and the rating question, then the answer
    # to a probe sent after the note: nothing of the note in between.
    closing = await frames_until(client, lambda f: bool(f.get("buttons")))
    probe_id = await client.say(PROBE)
    probed = await frames_until(client, lambda f: f.get("reply_to") == probe_id)
    assert probed[-1]["text"].startswith(PROBE_ANSWER)
    assert not carries(closing + probed, LATER_NOTE)

    # Nor in the history a reload of the web chat replays.
    again = await web_customer(http, desk_app, session=client.session)
    assert REPLY in [m["text"] for m in again.history]
    assert not carries(again.history, NOTE) and not carries(again.history, LATER_NOTE)
    await page.close()
    view = await ann.conversation(customer)
    assert [(e["sender"], e["text"]) for e in view["history"] if e["sender"] == "note"] == [
        ("note", NOTE), ("note", LATER_NOTE)]
    await client.close()
    await again.close()


async def test_a_colleague_sees_a_note_live_on_a_waiting_conversation(
    desk_app: RunningApp, browser: Browser, http: aiohttp.ClientSession
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    bob = await console(browser, desk_app, "bob")
    history = await open_from(bob, "queue", customer)
    await expect(history.locator(".msg.internal[data-event='queued']")).to_have_count(1)
    # Only the note event can bring it: it comes with no other event, so the
    # console adds it live rather than loading the conversation again.
    await history.evaluate("h => h.querySelectorAll('.msg').forEach(m => m.dataset.drawn = '1')")
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "notes", {"text": NOTE})
    await expect(history.locator(".msg.note .text")).to_have_text([NOTE])
    await expect(history.locator(".msg.note .note-label")).to_have_text(["Private note · ann"])
    await expect(history.locator(".msg").last).to_have_class(re.compile(r"\bnote\b"))
    await expect(history.locator(".msg:not([data-drawn])")).to_have_count(1)
    await bob.close()
    await client.close()


async def test_a_note_never_reaches_telegram(channels: ChannelsRig, browser: Browser) -> None:
    await channels.telegram_says("talk to a human")
    await channels.telegram_sent(2)
    customer = await channels.customer_of(ChannelIdentity("telegram", str(CUSTOMER["id"])))
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    await channels.telegram_sent(3)
    page = await console(browser, channels.app, "ann")
    history = await open_from(page, "mine", customer)
    await write_note(page, NOTE)
    await expect(history.locator(".msg.note .text")).to_have_text([NOTE])
    await page.locator("#reply-text").fill(REPLY)
    await page.locator("#reply-send").click()
    # The reply follows the note: a note sent to Telegram would come before it.
    sent = await channels.telegram_sent(4)
    assert sent[3] == f"ann: {REPLY}"
    assert not any(NOTE in text for text in sent)
    await page.close()
