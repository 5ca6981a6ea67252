"""An agent's typing shows where the customer is (docs/protocol.md, "Agent
API": `POST /agent/api/conversations/{customer}/typing`): on every tab of
the web chat, as Telegram's chat action, not at all on Slack; refused as a
reply is refused; never stored.

Real app on loopback with the demo bot, real Redis; Telegram and Slack
through their local API fakes. A test takes `desk_app` before `http`, so a
failing test's sockets close before the app stops."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.core.model import ChannelIdentity
from tests.fakes.slack_api import TEAM_ID
from tests.fakes.telegram_api import CUSTOMER
from tests.support.app_server import RunningApp
from tests.support.channels_rig import SLACK_USER, ChannelsRig
from tests.support.handoff_rig import (
    AgentClient,
    agent,
    agent_frame,
    claimed_chat,
    hand_off,
    web_customer,
)
from tests.support.webchat_client import WebChatClient

TELEGRAM_ID = ChannelIdentity("telegram", str(CUSTOMER["id"]))
SLACK_ID = ChannelIdentity("slack", f"{TEAM_ID}:{SLACK_USER}")


def typing_frame(on: bool, name: str) -> dict[str, Any]:
    return {"type": "typing", "on": on, "sender": "agent", "agent_name": name}


async def typing(holder: AgentClient, customer: str, on: Any) -> tuple[int, dict[str, Any]]:
    return await holder.call("POST", f"conversations/{customer}/typing", {"on": on})


async def history_of(holder: AgentClient, customer: str) -> list[dict[str, Any]]:
    return list((await holder.conversation(customer))["history"])


async def test_typing_reaches_every_tab_of_the_web_chat_and_is_not_stored(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    first, customer, ann = await claimed_chat(http, desk_app)
    await agent_frame(first)
    second = await WebChatClient.connect(http, desk_app.ws_url, session=first.session)
    tabs = (first, second)
    before = await history_of(ann, customer)

    assert await typing(ann, customer, True) == (200, {"shown": True, "channel": "web"})
    for tab in tabs:
        assert await tab.receive() == typing_frame(True, "ann")
    assert await typing(ann, customer, False) == (200, {"shown": True, "channel": "web"})
    for tab in tabs:
        assert await tab.receive() == typing_frame(False, "ann")
    assert await history_of(ann, customer) == before

    # Nothing else reached the tabs: the agent's next message comes next.
    await ann.act(customer, "messages", {"text": "Found it."})
    for tab in tabs:
        frame = await tab.receive()
        assert (frame["type"], frame["text"], frame["sender"]) == ("message", "Found it.", "agent")
    after = await history_of(ann, customer)
    assert after[:-1] == before and after[-1]["text"] == "Found it."
    again = await WebChatClient.connect(http, desk_app.ws_url, session=first.session)
    # The visitor's history is the timeline without the team's own lines.
    assert len(again.history) == len([e for e in after if e["sender"] != "internal"])
    for client in (*tabs, again):
        await client.close()


async def test_typing_is_refused_as_a_reply_is(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client, customer, ann = await claimed_chat(http, desk_app)
    await agent_frame(client)
    bob, root = await agent(http, desk_app, "bob"), await agent(http, desk_app, "root")
    status, body = await typing(bob, customer, True)
    assert (status, body["error"]) == (403, "not_yours")
    assert "ann" in body["message"]
    for on in ("yes", 1, None, [True], {"on": True}):
        status, body = await typing(ann, customer, on)
        assert (status, body["error"]) == (400, "bad_fields"), on
    status, body = await ann.call("POST", f"conversations/{customer}/typing", {})
    assert (status, body["error"]) == (400, "bad_fields")
    status, body = await ann.call("POST", f"conversations/{customer}/typing", raw="{nope")
    assert (status, body["error"]) == (400, "bad_json")
    for unknown in ("0123456789abcdef", "no.such"):
        status, body = await typing(ann, unknown, True)
        assert (status, body["error"]) == (404, "unknown_customer"), unknown
    # An admin may, as an admin may reply: named as themselves.
    assert await typing(root, customer, True) == (200, {"shown": True, "channel": "web"})
    # None of the refused calls showed anything: root's is the next frame.
    assert await client.receive() == typing_frame(True, "root")
    await client.close()


async def test_a_conversation_not_handed_off_is_the_bots_but_for_admins(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await web_customer(http, desk_app)
    await client.turn("hello")
    customer = client.customer or ""
    ann, root = await agent(http, desk_app, "ann"), await agent(http, desk_app, "root")
    status, body = await typing(ann, customer, True)
    assert (status, body["error"]) == (403, "not_in_queue")
    assert await typing(root, customer, True) == (200, {"shown": True, "channel": "web"})
    assert await client.receive() == typing_frame(True, "root")
    await client.close()


async def test_typing_to_a_queued_conversation_does_not_claim_it(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    assert await typing(ann, customer, True) == (200, {"shown": True, "channel": "web"})
    assert await client.receive() == typing_frame(True, "ann")
    handoff = (await ann.conversation(customer))["handoff"]
    assert (handoff["status"], handoff["agent"]) == ("queued", None)
    assert (await ann.call("GET", "claimed"))[1] == []
    await client.close()


async def test_a_closed_web_chat_with_nothing_linked_shows_nothing(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    client = await web_customer(http, desk_app)
    await hand_off(client)
    await client.close()
    customer = client.customer or ""
    ann = await agent(http, desk_app, "ann")
    await ann.act(customer, "claim")
    before = await history_of(ann, customer)
    assert await typing(ann, customer, True) == (200, {"shown": False, "channel": None})
    assert await history_of(ann, customer) == before


async def test_typing_on_telegram_is_its_chat_action(channels: ChannelsRig) -> None:
    telegram = channels.telegram
    await channels.telegram_says("/agent")
    await channels.telegram_sent(2)
    customer = await channels.customer_of(TELEGRAM_ID)
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    await channels.telegram_sent(3)
    before, actions = await history_of(ann, customer), len(telegram.sent("sendChatAction"))
    messages = len(telegram.sent())

    # The call answers once Telegram has answered: what it sent is recorded.
    assert await typing(ann, customer, True) == (200, {"shown": True, "channel": "telegram"})
    sent = telegram.sent("sendChatAction")
    assert len(sent) == actions + 1
    assert sent[-1].params == {"chat_id": str(CUSTOMER["id"]), "action": "typing"}
    # Telegram's indicator cannot be stopped: "off" sends nothing.
    status, answer = await typing(ann, customer, False)
    assert (status, answer["channel"]) == (200, "telegram")
    assert len(telegram.sent("sendChatAction")) == actions + 1
    assert len(telegram.sent()) == messages
    assert await history_of(ann, customer) == before


async def test_slack_cannot_show_typing(channels: ChannelsRig) -> None:
    await channels.slack_says("talk to a human")
    await channels.slack_posts(2)
    customer = await channels.customer_of(SLACK_ID)
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    await channels.slack_posts(3)
    before, calls = await history_of(ann, customer), len(channels.slack.calls)
    assert await typing(ann, customer, True) == (200, {"shown": False, "channel": None})
    assert len(channels.slack.calls) == calls
    assert await history_of(ann, customer) == before
