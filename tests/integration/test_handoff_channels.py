"""Handoff across channels: customer messages from Telegram and Slack reach
the agent live, replies go to the channel the customer wrote from last, a
customer who moves from Slack to Telegram keeps their agent, and a web chat
with no socket falls back to a linked channel, else to the history.

Real app on loopback, real Redis, aiogram and slack-bolt against the local
Telegram Bot API and Slack Web API fakes."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from bot.core.model import ChannelIdentity
from bot.core.tokens import sign_host_identity
from tests.fakes.slack_api import TEAM_ID
from tests.fakes.telegram_api import CUSTOMER
from tests.support.app_server import RunningApp
from tests.support.channels_rig import SLACK_USER, ChannelsRig, link_code
from tests.support.handoff_rig import WEB_SECRET, agent, agent_frame, hand_off, web_customer
from tests.support.webchat_client import WebChatClient

TELEGRAM_ID = ChannelIdentity("telegram", str(CUSTOMER["id"]))
SLACK_ID = ChannelIdentity("slack", f"{TEAM_ID}:{SLACK_USER}")


async def test_telegram_messages_reach_the_agent_live_and_replies_go_back(
    channels: ChannelsRig,
) -> None:
    ann = await (await channels.agent("ann")).listen()
    await channels.telegram_says("/agent")
    asked, notice = await channels.telegram_sent(2)
    assert asked.startswith("A person from our team") and notice == "You're next in line."
    customer = (await ann.event("queued"))["customer"]
    assert customer == await channels.customer_of(TELEGRAM_ID)
    await ann.act(customer, "claim")
    await channels.telegram.wait_for("sendMessage", 3)

    await channels.telegram_silent("my parcel is late")
    live = await ann.event("message", text="my parcel is late")
    assert (live["customer"], live["entry"]["channel"]) == (customer, "telegram")
    answer = await ann.act(customer, "messages", {"text": "Checking now."})
    assert answer["channel"] == "telegram"
    assert (await channels.telegram_sent(5))[-1] == "ann: Checking now."
    # The bot said nothing to the customer's message: after the probe's
    # answer, the agent's reply came next.
    assert len(channels.telegram.sent()) == 5
    await ann.close()


async def test_slack_messages_reach_the_agent_live(channels: ChannelsRig) -> None:
    ann = await (await channels.agent("ann")).listen()
    await channels.slack_says("talk to a human")
    await channels.slack_posts(2)
    customer = (await ann.event("queued"))["customer"]
    assert customer == await channels.customer_of(SLACK_ID)
    await ann.act(customer, "claim")
    await channels.slack_posts(3)
    await channels.slack_silent("it is about a refund")
    live = await ann.event("message", text="it is about a refund")
    assert live["entry"]["channel"] == "slack"
    await ann.act(customer, "messages", {"text": "Refunds take 3 days."})
    posted = await channels.slack_posts(5)
    assert posted[-1] == "*ann:* Refunds take 3 days."
    await ann.close()


async def test_moving_from_slack_to_telegram_keeps_the_agent(channels: ChannelsRig) -> None:
    ann = await (await channels.agent("ann")).listen()
    await channels.slack_says("talk to a human")
    await channels.slack_posts(2)
    customer = (await ann.event("queued"))["customer"]
    await ann.act(customer, "claim")
    await channels.slack_posts(3)

    # The customer links Telegram to the conversation by the code flow.
    await channels.slack_says("link")
    code = link_code((await channels.slack_posts(4))[-1])
    await channels.telegram_says(f"link {code}")
    await channels.telegram_sent(1)
    await channels.telegram_says("yes")
    await ann.event("moved")
    assert await channels.customer_of(TELEGRAM_ID) == customer

    await channels.telegram_silent("I am on my phone now")
    live = await ann.event("message", text="I am on my phone now")
    assert (live["customer"], live["entry"]["channel"]) == (customer, "telegram")
    sent_before = len(channels.telegram.sent())
    answer = await ann.act(customer, "messages", {"text": "No problem."})
    assert answer["channel"] == "telegram"
    assert (await channels.telegram_sent(sent_before + 1))[-1] == "ann: No problem."
    view = await ann.conversation(customer)
    assert view["handoff"]["agent"] == "ann"
    assert {c["channel"] for c in view["channels"]} == {"slack", "telegram"}
    # The team's own lines are said on the console, every other on a channel.
    assert {e["channel"] for e in view["history"]} == {"slack", "telegram", "console"}
    assert {e["channel"] for e in view["history"] if e["sender"] not in ("internal", "note")} \
        == {"slack", "telegram"}
    await ann.close()


async def test_the_handoff_follows_when_the_held_side_joins_another(channels: ChannelsRig) -> None:
    # This time Telegram issues the code, so the handed-off Slack customer is
    # the one joined into the Telegram customer: the claim must move along.
    ann = await (await channels.agent("ann")).listen()
    await channels.telegram_says("hello")
    await channels.telegram_sent(1)
    await channels.slack_says("talk to a human")
    await channels.slack_posts(2)
    slack_customer = (await ann.event("queued"))["customer"]
    await ann.act(slack_customer, "claim")
    await channels.telegram_says("link")
    code = link_code((await channels.telegram_sent(2))[-1])
    await channels.slack_says(f"link {code}")
    await channels.slack_posts(4)
    await channels.slack_says("yes")
    moved = await ann.event("moved")
    telegram_customer = await channels.customer_of(TELEGRAM_ID)
    assert (moved["customer"], moved["to"]) == (slack_customer, telegram_customer)
    view = await ann.conversation(telegram_customer)
    assert (view["handoff"]["status"], view["handoff"]["agent"]) == ("claimed", "ann")
    assert (await ann.call("GET", "claimed"))[1] == [
        {"customer": telegram_customer, "agent": "ann", "name": "Dana Reyes"}]
    await channels.telegram_silent("still there?")
    assert (await ann.event("message", text="still there?"))["customer"] == telegram_customer
    await ann.close()


async def test_a_closed_web_chat_falls_back_to_a_linked_channel(channels: ChannelsRig) -> None:
    web = await web_customer(channels.http, channels.app)
    [code_reply] = await web.turn("link")
    code = link_code(code_reply["text"])
    await channels.telegram_says(f"link {code}")
    await channels.telegram_sent(1)
    await channels.telegram_says("yes")
    await channels.telegram_sent(2)
    await web.turn("talk to a human", expect=2)  # the web chat is where they wrote last
    await web.close()
    customer = web.customer or ""
    ann = await channels.agent("ann")
    sent_before = len(channels.telegram.sent())
    await ann.act(customer, "claim")
    answer = await ann.act(customer, "messages", {"text": "Found you on Telegram."})
    assert answer["channel"] == "telegram"
    texts = await channels.telegram_sent(sent_before + 2)
    assert texts[-1] == "ann: Found you on Telegram."


async def test_a_closed_web_chat_with_nothing_linked_keeps_the_reply_in_history(
    channels: ChannelsRig,
) -> None:
    web = await web_customer(channels.http, channels.app)
    await web.turn("talk to a human", expect=2)
    await web.close()
    customer = web.customer or ""
    ann = await channels.agent("ann")
    await ann.act(customer, "claim")
    answer = await ann.act(customer, "messages", {"text": "Write back any time."})
    assert (answer["delivered"], answer["channel"]) == (False, None)
    back = await WebChatClient.connect(channels.http, channels.app.ws_url, session=web.session)
    replayed: list[dict[str, Any]] = back.history
    assert replayed[-1]["text"] == "Write back any time." and replayed[-1]["agent_name"] == "ann"
    await ann.act(customer, "messages", {"text": "Welcome back."})
    assert (await agent_frame(back))["text"] == "Welcome back."
    await back.close()


async def test_signing_in_on_the_site_keeps_the_place_in_the_queue(
    desk_app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    visitor = await web_customer(http, desk_app)
    await hand_off(visitor)
    anonymous = (await ann.event("queued"))["customer"]
    await visitor.close()
    # The visitor signs in; their account has never written before.
    token = sign_host_identity("user-7", WEB_SECRET, expires_at=int(time.time()) + 600)
    signed_in = await WebChatClient.connect(http, desk_app.ws_url, session=visitor.session,
                                            identity=token)
    account = signed_in.customer
    assert account not in (None, anonymous)
    moved = await ann.event("moved")
    assert (moved["customer"], moved["to"]) == (anonymous, account)
    status, queue = await ann.call("GET", "queue")
    assert (status, [q["customer"] for q in queue]) == (200, [account])
    assert await redis_client.zrange("segue:{handoff}:queue", 0, -1) == [account]
    # Still waiting for a person: the bot keeps quiet, the agent sees it live.
    await signed_in.silent("hello?")
    assert (await ann.event("message", text="hello?"))["customer"] == account
    await signed_in.close()
    await ann.close()


async def test_a_resume_link_takes_the_agent_along(
    desk_app: RunningApp, http: aiohttp.ClientSession, redis_client: aioredis.Redis
) -> None:
    ann = await (await agent(http, desk_app, "ann")).listen()
    laptop = await web_customer(http, desk_app)
    link = await laptop.web_link()
    phone = await web_customer(http, desk_app)
    await hand_off(phone)
    held = (await ann.event("queued"))["customer"]
    await ann.act(held, "claim")
    await agent_frame(phone)
    await phone.close()
    # On the phone, the person opens the link the laptop showed.
    opened = await WebChatClient.connect(http, desk_app.ws_url, session=phone.session,
                                         resume=link.split("resume=")[1])
    assert "You opened a link" in (await opened.receive())["text"]
    await opened.turn("yes")
    target = laptop.customer or ""
    moved = await ann.event("moved")
    assert (moved["customer"], moved["to"]) == (held, target)
    assert (await ann.call("GET", "claimed"))[1] == [{"customer": target, "agent": "ann"}]
    assert await redis_client.hgetall("segue:{handoff}:claims") == {target: "ann"}
    assert (await ann.conversation(target))["handoff"]["agent"] == "ann"
    # Held by the agent on this side too: the bot keeps quiet.
    await opened.silent("are you still there?")
    assert (await ann.event("message", text="are you still there?"))["customer"] == target
    for client in (laptop, opened):
        await client.close()
    await ann.close()
