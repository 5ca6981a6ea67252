"""The web chat's timeline: notices about the conversation itself say what
changed as `event` (a person joined or left it, a channel joined or left
it), live and in the history replayed on reconnect, and every `history`
frame names the channels the conversation is joined with (docs/protocol.md).

Real app on loopback with the demo bot, real Redis; Telegram through the
local Bot API fake, linked by the code flow as a person would. A test takes
`desk_app` before `http`, so a failing test's sockets close before the app
stops."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.fakes.telegram_api import CUSTOMER
from tests.support.app_server import RunningApp
from tests.support.channels_rig import ChannelsRig, link_code
from tests.support.handoff_rig import agent, agent_frame, hand_off, web_customer
from tests.support.webchat_client import WebChatClient

BACK_WITH_THE_BOT = "back with our assistant"
TELEGRAM_CHAT = str(CUSTOMER["id"])


async def hello(http: aiohttp.ClientSession, url: str,
                session: str | None = None) -> tuple[WebChatClient, dict[str, Any]]:
    """A socket that said hello (with `session`, to come back to it): its
    client and the whole `history` frame it got."""
    client = WebChatClient(await http.ws_connect(url))
    await client.send({"type": "hello", **({"session": session} if session else {})})
    first = await client.receive()
    assert first["type"] == "session", first
    client.session, client.customer = first["session"], first["customer"]
    history = await client.receive()
    assert history["type"] == "history", history
    client.history = history["messages"]
    return client, history


async def channels_on_reconnect(http: aiohttp.ClientSession, url: str, session: str) -> Any:
    """The `channels` of the history frame a new socket of `session` gets."""
    again, history = await hello(http, url, session)
    await again.close()
    return history["channels"]


async def bot_notice(client: WebChatClient) -> dict[str, Any]:
    """The next message frame, which must be the bot's (a notice outside a turn)."""
    frame = await client.next_message()
    assert frame["sender"] == "bot", frame
    return frame


def events_of(entries: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """(event, agent_name) of every entry that is a notice about the conversation."""
    return [(e["event"], e.get("agent_name")) for e in entries if "event" in e]


# A person joins and leaves.


async def test_people_joining_and_leaving_are_events_live_and_on_reconnect(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    web = await web_customer(http, desk_app)
    [question] = await web.turn("where is my order")
    replies = await hand_off(web)
    assert all("event" not in r for r in [question, *replies])
    customer = web.customer or ""
    ann, bob = await agent(http, desk_app, "ann"), await agent(http, desk_app, "bob")

    await ann.act(customer, "claim")
    joined = await agent_frame(web)
    assert (joined["event"], joined["agent_name"]) == ("agent_joined", "ann")
    answer = await ann.act(customer, "messages", {"text": "Hello, Ann here."})
    assert answer["entry"].get("event") is None
    said = await agent_frame(web)
    assert said["text"] == "Hello, Ann here." and "event" not in said

    # Released: the "back with" notice is the event; the question asked
    # again after it is the bot's flow going on, not a change.
    await ann.act(customer, "release")
    back, asked_again = await bot_notice(web), await bot_notice(web)
    assert BACK_WITH_THE_BOT in back["text"] and back["event"] == "agent_left"
    assert asked_again["text"] == f"Where we left off: {question['text']}"
    assert "event" not in asked_again

    await hand_off(web)
    await ann.act(customer, "claim")
    again = await agent_frame(web)
    assert (again["event"], again["agent_name"]) == ("agent_joined", "ann")
    await ann.act(customer, "transfer", {"agent": "bob"})
    taken = await agent_frame(web)
    assert taken["text"] == "bob from our team is taking over this conversation."
    assert (taken["event"], taken["agent_name"]) == ("agent_joined", "bob")
    await bob.act(customer, "close")
    closed = await bot_notice(web)
    assert closed["text"].startswith("bob closed this conversation.")
    assert closed["event"] == "agent_left"
    await web.close()

    expected = [("agent_joined", "ann"), ("agent_left", None), ("agent_joined", "ann"),
                ("agent_joined", "bob"), ("agent_left", None)]
    back_again, history = await hello(http, desk_app.ws_url, web.session)
    assert back_again.customer == customer
    assert events_of(history["messages"]) == expected
    by_text = {m["text"]: m for m in history["messages"]}
    assert "event" not in by_text[asked_again["text"]]
    assert "event" not in by_text["Hello, Ann here."]
    assert by_text[closed["text"]]["event"] == "agent_left"
    assert history["channels"] == ["web"]
    # The console's view of the conversation carries the same events.
    assert events_of([e for e in (await ann.conversation(customer))["history"]
                      if e["sender"] != "internal"]) == expected
    await back_again.close()


# Channels join and leave.


async def test_a_new_visitor_is_on_the_web_only(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    visitor, history = await hello(http, desk_app.ws_url)
    assert (history["messages"], history["channels"]) == ([], ["web"])
    await visitor.turn("hello")
    assert await channels_on_reconnect(http, desk_app.ws_url, visitor.session or "") == ["web"]
    await visitor.close()


async def test_telegram_joining_and_leaving_the_web_chat(channels: ChannelsRig) -> None:
    http, url = channels.http, channels.app.ws_url
    web, first = await hello(http, url)
    assert first["channels"] == ["web"]
    [code_reply] = await web.turn("link")
    code = link_code(code_reply["text"])
    assert "event" not in code_reply

    # The person on Telegram types the code and says yes: Telegram is told
    # it is linked, the web chat that issued the code is told who joined.
    await channels.telegram_says(f"link {code}")
    await channels.telegram_sent(1)
    await channels.telegram_says("yes")
    await channels.telegram.wait_for(
        "sendMessage", where=lambda c: c.params["text"].startswith("Linked!"))
    told = await bot_notice(web)
    assert "Telegram chat" in told["text"]
    assert (told["event"], told["channels"]) == ("channel_joined", ["telegram", "web"])
    assert "reply_to" not in told

    assert await channels_on_reconnect(http, url, web.session or "") == ["telegram", "web"]
    again, history = await hello(http, url, web.session)
    assert history["messages"][-1]["text"] == told["text"]
    assert history["messages"][-1]["event"] == "channel_joined"
    await again.close()

    [unlinked] = await web.turn("unlink telegram")
    assert unlinked["text"].startswith("Telegram is no longer linked")
    assert (unlinked["event"], unlinked["channels"]) == ("channel_left", ["web"])
    again, history = await hello(http, url, web.session)
    assert history["channels"] == ["web"]
    assert history["messages"][-1]["text"] == unlinked["text"]
    assert history["messages"][-1]["event"] == "channel_left"
    await again.close()
    # Unlinking something not linked changes nothing: no event.
    [nothing] = await web.turn("unlink telegram")
    assert "event" not in nothing and "channels" not in nothing
    await web.close()


async def test_the_web_chat_that_says_yes_is_told_it_is_linked(channels: ChannelsRig) -> None:
    http, url = channels.http, channels.app.ws_url
    await channels.telegram_says("link")
    code = link_code((await channels.telegram_sent(1))[0])
    web, _ = await hello(http, url)
    [question] = await web.turn(f"link {code}")
    assert "Telegram conversation" in question["text"] and "event" not in question

    msg_id = await web.say("Yes, link it", payload="link_yes")
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(15):
        while not frames or frames[-1]["type"] != "history":
            frames.append(await web.receive(15))
    [linked] = [f for f in frames if f["type"] == "message" and f["text"].startswith("Linked!")]
    assert (linked["event"], linked["reply_to"]) == ("channel_joined", msg_id)
    assert all("event" not in f for f in frames if f is not linked)
    # The web chat now shows the Telegram conversation, and says so.
    assert frames[-1]["channels"] == ["telegram", "web"]
    [kept] = [m for m in frames[-1]["messages"] if m["text"] == linked["text"]]
    assert (kept["channel"], kept["event"]) == ("web", "channel_joined")
    assert await channels_on_reconnect(http, url, web.session or "") == ["telegram", "web"]
    # The Telegram chat that issued the code is told a web chat joined it.
    joined = await channels.telegram.wait_for(
        "sendMessage", where=lambda c: "joined this conversation" in c.params["text"])
    assert joined[0].params["chat_id"] == TELEGRAM_CHAT
    again, history = await hello(http, url, web.session)
    [told] = [m for m in history["messages"] if m["text"] == joined[0].params["text"]]
    assert (told["channel"], told["event"]) == ("telegram", "channel_joined")
    await again.close()
    await web.close()
