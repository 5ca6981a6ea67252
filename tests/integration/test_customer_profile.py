"""The customer profile an agent reads: what Telegram (`from_user`), Slack
(users.info) and a host site's identity token say about the customer, kept
per channel in the conversation state, merged in the agent API's view, named
in the queue, exported with the customer and erased
with them. Real app on loopback, real Redis, aiogram and slack-bolt against
the local Telegram Bot API and Slack Web API fakes."""

from __future__ import annotations

import logging
import time
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import Button, ChannelIdentity, Outbound
from bot.core.policy import TurnContext
from bot.core.tokens import sign_host_identity
from connectors.slack import web_client
from connectors.slack_locale import SlackLocales
from context_store import RedisContextStore
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi
from tests.fakes.telegram_api import CUSTOMER, FakeTelegram, callback_update, message_update
from tests.support.app_server import RunningApp
from tests.support.channels_rig import SLACK_USER, ChannelsRig
from tests.support.handoff_rig import WEB_SECRET, agent, hand_off
from tests.support.privacy_rig import keyspace, segue_customers
from tests.support.slack_rig import TOKEN
from tests.support.telegram_rig import segue_on_fake
from tests.support.webchat_client import WebChatClient

TELEGRAM_ID = ChannelIdentity("telegram", str(CUSTOMER["id"]))
SLACK_ID = ChannelIdentity("slack", f"{TEAM_ID}:{SLACK_USER}")


def identity(user: str, **claims: str) -> str:
    return sign_host_identity(user, WEB_SECRET, expires_at=int(time.time()) + 600, **claims)


def slack_says_about_users(slack: FakeSlackApi, monkeypatch: pytest.MonkeyPatch,
                           **user: Any) -> None:
    """users.info answers with `user`'s fields (`profile` merged) on top of
    the fake's own answer."""
    answer = slack._user_info
    details = user.pop("profile", {})

    def with_fields(args: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
        status, body, headers = answer(args)
        body["user"] = {**body["user"], **user,
                        "profile": {**body["user"]["profile"], **details}}
        return status, body, headers

    monkeypatch.setattr(slack, "_user_info", with_fields)


# Telegram


async def test_telegram_sender_is_the_telegram_profile(channels: ChannelsRig) -> None:
    await channels.telegram_says("hello")
    await channels.telegram_sent(1)
    customer = await channels.customer_of(TELEGRAM_ID)
    view = await (await channels.agent("ann")).conversation(customer)
    telegram = {"name": "Dana Reyes", "first_name": "Dana", "last_name": "Reyes",
                "username": "dreyes", "language": "en"}
    assert view["profile"] == {"name": "Dana Reyes", "username": "dreyes", "email": None,
                               "language": "en", "time_zone": None,
                               "by_channel": {"telegram": telegram}}


class ButtonPolicy:
    """Answers with a button, and remembers each message's profile."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str] | None] = []

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        profile = turn.inbound.profile
        self.seen.append(dict(profile) if profile is not None else None)
        return [Outbound(text="ok", buttons=(Button("Yes", "yes"),))]


async def test_a_telegram_button_press_brings_the_profile_as_it_is_now(
    telegram_api: FakeTelegram, redis_store: RedisContextStore,
) -> None:
    policy = ButtonPolicy()
    renamed = {**CUSTOMER, "last_name": "Reyes-Ortiz", "username": "dana_ro"}
    async with segue_on_fake(telegram_api, redis_store, policy=policy) as segue:
        update = message_update(telegram_api.new_update_id(), "hi")
        assert await telegram_api.post_update(update) == 200
        [menu] = await telegram_api.wait_for("sendMessage")
        pressed = callback_update(telegram_api.new_update_id(), menu, "yes", user=renamed)
        assert await telegram_api.post_update(pressed) == 200
        await telegram_api.wait_for("sendMessage", 2)
        customer = await segue.store.resolve_customer(TELEGRAM_ID, "unseen")
        raw = await segue.store.load_state(customer)
    assert [p and (p["name"], p.get("username")) for p in policy.seen] == [
        ("Dana Reyes", "dreyes"), ("Dana Reyes-Ortiz", "dana_ro")]
    assert raw is not None and '"username":"dana_ro"' in raw and "dreyes" not in raw


# Slack


async def test_slack_users_info_is_the_slack_profile(
    channels: ChannelsRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack_says_about_users(channels.slack, monkeypatch, real_name="Dana Reyes",
                           tz="America/Mexico_City",
                           profile={"display_name": "dana", "email": "dana@example.com"})
    await channels.slack_says("hello")
    await channels.slack_posts(1)
    await channels.slack_says("and again")
    await channels.slack_posts(2)
    customer = await channels.customer_of(SLACK_ID)
    view = await (await channels.agent("ann")).conversation(customer)
    assert view["profile"] == {
        "name": "Dana Reyes", "username": None, "email": "dana@example.com",
        "language": "en-US", "time_zone": "America/Mexico_City",
        "by_channel": {"slack": {"name": "Dana Reyes", "display_name": "dana",
                                 "email": "dana@example.com", "language": "en-US",
                                 "time_zone": "America/Mexico_City"}}}
    # One lookup for both turns: the answer is kept.
    assert len(channels.slack.calls_to("users.info")) == 1


async def test_slack_profiles_are_kept_a_day_and_outlast_a_failed_lookup(
    slack_api: FakeSlackApi, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    client: AsyncWebClient = web_client(TOKEN, slack_api.url)

    async def users_info(user: str) -> dict[str, Any]:
        response = await client.users_info(user=user, include_locale=True)
        assert isinstance(response.data, dict)
        return response.data

    users = SlackLocales(users_info, clock=lambda: now[0])
    first = await users.about("T1", "UA")
    assert first.profile is not None and first.profile["name"] == "user-ua"
    # After the hour the locale is asked again; a failure then keeps the
    # profile until its day is up, and the locale is not known meanwhile.
    slack_api.refuse("users.info", "ratelimited", times=3)
    now[0] = 3601
    failed = await users.about("T1", "UA")
    assert (failed.locale, failed.profile) == (None, first.profile)
    now[0] = 3601 + 200
    assert (await users.about("T1", "UA")).profile == first.profile  # not asked meanwhile
    now[0] = 3601 + 301
    assert (await users.about("T1", "UA")).profile == first.profile
    assert len(slack_api.calls_to("users.info")) == 3
    # A day after the last answer, a failure leaves no profile.
    now[0] = 86_401
    assert (await users.about("T1", "UA")).profile is None
    now[0] = 86_401 + 301
    slack_says_about_users(slack_api, monkeypatch, real_name="Dana Reyes")
    again = await users.about("T1", "UA")
    assert again.profile is not None and again.profile["name"] == "Dana Reyes"
    assert len(slack_api.calls_to("users.info")) == 5


# Web chat


async def test_a_signed_in_visitor_is_named_in_the_view_and_the_queue(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    token = identity("user.7", name="Dana Reyes", email="dana@example.com")
    visitor = await WebChatClient.connect(http, desk_app.ws_url, identity=token)
    await hand_off(visitor)
    customer = visitor.customer or ""
    ann = await agent(http, desk_app, "ann")
    status, body = await ann.call("GET", "queue")
    queue: Any = body  # a list, though the client types every answer as an object
    assert status == 200 and queue == [
        {"customer": customer, "since": queue[0]["since"], "reason": queue[0]["reason"],
         "channel": "web", "waited_seconds": queue[0]["waited_seconds"],
         "waiting_too_long": False, "name": "Dana Reyes"}]
    view = await ann.conversation(customer)
    assert view["profile"] == {"name": "Dana Reyes", "username": None,
                               "email": "dana@example.com", "language": None,
                               "time_zone": None, "by_channel": {"web": {
                                   "name": "Dana Reyes", "email": "dana@example.com"}}}
    await visitor.close()


async def test_an_anonymous_visitor_has_no_profile_and_no_name(
    desk_app: RunningApp, http: aiohttp.ClientSession
) -> None:
    visitor = await WebChatClient.connect(http, desk_app.ws_url)
    await hand_off(visitor)
    customer = visitor.customer or ""
    ann = await agent(http, desk_app, "ann")
    status, queue = await ann.call("GET", "queue")
    assert status == 200 and [set(q) for q in queue] == [
        {"customer", "since", "reason", "channel", "waited_seconds", "waiting_too_long"}]
    view = await ann.conversation(customer)
    assert view["profile"] == {"name": None, "username": None, "email": None,
                               "language": None, "time_zone": None, "by_channel": {}}
    await visitor.close()


async def test_the_profile_is_exported_and_erased_with_the_customer(
    desk_app: RunningApp, http: aiohttp.ClientSession, redis_url: str,
    redis_client: aioredis.Redis, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    token = identity("user-9", name="Zebulon Quarryman", email="zq@example.org")
    visitor = await WebChatClient.connect(http, desk_app.ws_url, identity=token)
    await visitor.turn("hello")
    customer = visitor.customer or ""
    await visitor.close()
    root = await agent(http, desk_app, "root")
    status, document = await root.call("GET", f"customers/{customer}/export")
    assert status == 200, document
    assert document["conversation"]["profile"] == {
        "web": {"name": "Zebulon Quarryman", "email": "zq@example.org"}}
    stored = await keyspace(redis_client)
    assert any("Zebulon" in value for value in stored.values())
    ran = await segue_customers("erase", customer, redis_url=redis_url)
    assert ran.status == 0, ran.err
    left = await keyspace(redis_client)
    assert not [k for k, v in left.items() if "Zebulon" in v or "zq@example.org" in v]
    # Profile values stay out of the log above DEBUG.
    assert not [r for r in caplog.records if r.levelno > logging.DEBUG
                and ("Zebulon" in r.getMessage() or "zq@example" in r.getMessage())]
