"""Erase misses nothing: a customer who wrote on the web chat, Telegram and
Slack, joined two other customers into theirs, asked for link codes and a
deep link, typed wrong codes and was queued for a person is erased (by
"forget me" and a yes, or by `segue customers erase`), and afterwards not one
key of the whole Redis keyspace, nor any value in it, names any of their
customer ids or channel user ids.

Real app on loopback (the shipped demo bot), real Redis, aiogram and
slack-bolt against the local Telegram and Slack fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
import redis.asyncio as aioredis

from bot.core.backoff import poll_until
from bot.core.model import ChannelIdentity
from tests.fakes.slack_api import TEAM_ID
from tests.fakes.telegram_api import CUSTOMER, sticker_update
from tests.support.channels_rig import SLACK_USER, ChannelsRig, link_code
from tests.support.handoff_rig import AgentClient, web_customer
from tests.support.privacy_rig import keyspace, segue_customers

TELEGRAM_ID = ChannelIdentity("telegram", str(CUSTOMER["id"]))
SLACK_ID = ChannelIdentity("slack", f"{TEAM_ID}:{SLACK_USER}")
WRONG_CODE = "link ZZZZ-ZZZZ"
# An erased id keeps an empty marker this long, so that workers that cached
# it resolve the identity again rather than write under it.
MARKER_SECONDS = 86400


@dataclass(slots=True)
class Customer:
    """The customer ids and channel user ids that must all be gone."""

    web: str
    telegram: str
    slack: str
    web_user: str

    def needles(self) -> set[str]:
        return {self.web, self.telegram, self.slack, self.web_user,
                TELEGRAM_ID.user_id, SLACK_ID.user_id, SLACK_USER}


async def everything_kept(rig: ChannelsRig) -> tuple[Customer, AgentClient]:
    """The whole story up to the erase; the customer, and an agent watching
    the queue."""
    ann = await (await rig.agent("ann")).listen()
    web = await web_customer(rig.http, rig.app)
    await web.turn("hello")
    # Telegram joins the web chat by a code.
    code = link_code((await web.turn("link"))[0]["text"])
    await rig.telegram_says(f"link {code}")
    await rig.telegram_sent(1)
    telegram = await rig.customer_of(TELEGRAM_ID)
    await rig.telegram_says("yes")
    await rig.telegram_sent(3)  # joined, and where the web chat left off
    # Slack types wrong codes (counted against its identity), then joins.
    for n in range(2):
        await rig.slack_says(WRONG_CODE)
        await rig.slack_posts(n + 1)
    slack = await rig.customer_of(SLACK_ID)
    code = link_code((await web.turn("link"))[0]["text"])
    await rig.slack_says(f"link {code}")
    await rig.slack_posts(3)
    await rig.slack_says("yes")
    await rig.slack_posts(5)  # joined, and where the web chat left off
    assert web.customer is not None and web.session is not None
    assert await rig.customer_of(SLACK_ID) == web.customer
    # Wrong codes from Telegram, now theirs, until it has to wait.
    for n in range(4):
        await rig.telegram_says(WRONG_CODE)
        await rig.telegram_sent(4 + n)
    # A sticker, answered once with a fixed reply (marked answered, by their id).
    assert await rig.telegram.post_update(sticker_update(rig.telegram.new_update_id())) == 200
    await rig.telegram_sent(8)
    # A live code and deep link, and a person asked for.
    [issued] = await web.turn("link")
    assert issued["links"], issued
    await rig.telegram_says("/agent")
    await rig.telegram_sent(10)
    assert (await ann.event("queued"))["customer"] == web.customer
    # An update of theirs that Telegram kept failing on, parked for an
    # operator, as the Telegram connector parks one.
    update = rig.telegram.message("my address is 1 Main St")
    await rig.segue.store.park(json.dumps({"channel": "telegram", "kind": "update",
                                           "update": update, "attempts": 3}))
    [web_user] = [i.user_id for i in await rig.segue.store.identities(web.customer)
                  if i.channel == "web"]
    await web.close()
    customer = Customer(web.customer, telegram, slack, web_user)
    await no_socket_presence(rig, customer.web_user)
    return customer, ann


async def no_socket_presence(rig: ChannelsRig, session: str) -> None:
    """The web chat's socket closed: its presence goes with it (the server
    handles the close after the client's, so this waits for it)."""
    store = rig.segue.store
    assert hasattr(store, "client")

    async def gone() -> bool | None:
        return not await store.client.exists(f"segue:{{w:{session}}}:sockets") or None

    assert await poll_until(gone, within_seconds=10)


async def assert_nothing_names(client: aioredis.Redis, customer: Customer) -> None:
    kept = await keyspace(client)
    assert kept, "the scan read nothing"
    markers = {f"segue:{{c:{c}}}:moved" for c in (customer.web, customer.telegram,
                                                  customer.slack)}
    for key in markers & kept.keys():
        if kept[key] == '""' and 0 < await client.ttl(key) <= MARKER_SECONDS:
            del kept[key]  # an empty marker, gone within a day
    leftovers = {key: value for key, value in kept.items()
                 if any(needle in key or needle in value for needle in customer.needles())}
    assert leftovers == {}


@pytest.mark.parametrize("how", ["forget me", "segue customers erase"])
async def test_after_an_erase_no_key_or_value_names_the_customer(
    channels: ChannelsRig, redis_url: str, redis_client: aioredis.Redis, how: str
) -> None:
    customer, ann = await everything_kept(channels)
    before = await keyspace(redis_client)
    for needle in customer.needles():  # the check below could fail
        assert any(needle in key or needle in value for key, value in before.items()), needle
    assert any(key.startswith("segue:token:answered:telegram:") for key in before)
    if how == "forget me":
        await channels.telegram_says("forget me")
        assert "Are you sure?" in (await channels.telegram_sent(11))[-1]
        await channels.telegram_says("yes")
        assert (await channels.telegram_sent(12))[-1].startswith("Done: everything")
    else:
        ran = await segue_customers("erase", customer.web, redis_url=redis_url)
        assert (ran.status, ran.out) == (0, f"customer {customer.web} erased\n"), ran.err
    # The consoles are told either way.
    assert (await ann.event("erased"))["customer"] == customer.web
    await ann.close()
    await assert_nothing_names(redis_client, customer)
    # A Slack message is queued in the inbox and handled: the customer starts afresh.
    await channels.slack_says("hello again")
    await channels.slack_posts(6)
    assert await channels.customer_of(SLACK_ID) not in (customer.web, customer.slack)
