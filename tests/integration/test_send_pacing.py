"""Sends kept to the platforms' pace, through the real client libraries to
the local Bot API and Web API servers: what the fakes record is spaced as
the limits ask (a burst of three in a chat, then one a second), in order,
and nothing is dropped. The margins are generous: this checks the spacing
of Segue's sends, not its speed."""

from __future__ import annotations

import asyncio

from bot.assembly.app import Segue
from bot.core.model import Address, Outbound
from connectors.slack import SlackConnector
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import CUSTOMER, FakeTelegram

# The fifth send of a burst of three at one a second goes 2 s after the first.
FOURTH_AFTER = 0.75
FIFTH_AFTER = 1.75
# Sends to other chats are not held back by a busy one.
OTHER_CHAT_WITHIN = 0.75


async def test_five_telegram_messages_to_one_chat_leave_in_order_and_paced(
    telegram_api: FakeTelegram, telegram: Segue
) -> None:
    connector = telegram.connectors["telegram"]
    chat = Address("telegram", str(CUSTOMER["id"]))
    texts = [f"update {i}" for i in range(5)]
    await asyncio.gather(*(connector.send(chat, Outbound(text=t)) for t in texts))

    sent = telegram_api.sent()
    assert [c.params["text"] for c in sent] == texts
    assert sent[3].at - sent[0].at >= FOURTH_AFTER
    assert sent[4].at - sent[0].at >= FIFTH_AFTER


async def test_a_busy_telegram_chat_does_not_hold_back_another(
    telegram_api: FakeTelegram, telegram: Segue
) -> None:
    connector = telegram.connectors["telegram"]
    busy, other = Address("telegram", str(CUSTOMER["id"])), Address("telegram", "777000111")
    sends = [connector.send(busy, Outbound(text=f"busy {i}")) for i in range(5)]
    await asyncio.gather(*sends, connector.send(other, Outbound(text="other")))

    by_text = {c.params["text"]: c for c in telegram_api.sent()}
    assert len(by_text) == 6
    assert by_text["other"].at - by_text["busy 0"].at < OTHER_CHAT_WITHIN
    assert by_text["busy 4"].at - by_text["busy 0"].at >= FIFTH_AFTER


async def test_five_slack_messages_to_one_channel_leave_in_order_and_paced(
    slack_api: FakeSlackApi, slack: SlackConnector
) -> None:
    channel = Address("slack", "D024BE91L")
    texts = [f"update {i}" for i in range(5)]
    await asyncio.gather(*(slack.send(channel, Outbound(text=t)) for t in texts))

    posts = slack_api.calls_to("chat.postMessage")
    assert [c.args["text"] for c in posts] == texts
    assert posts[3].at - posts[0].at >= FOURTH_AFTER
    assert posts[4].at - posts[0].at >= FIFTH_AFTER


async def test_a_slack_429_is_retried_after_retry_after_and_keeps_the_order(
    slack_api: FakeSlackApi, slack: SlackConnector
) -> None:
    slack_api.rate_limit("chat.postMessage", times=1, retry_after=1)
    channel = Address("slack", "C0SHOP")
    await asyncio.gather(slack.send(channel, Outbound(text="first")),
                         slack.send(channel, Outbound(text="second")))

    limited, *accepted = slack_api.calls_to("chat.postMessage")
    assert limited.status == 429 and limited.args["text"] == "first"
    assert [(c.status, c.args["text"]) for c in accepted] == [(200, "first"), (200, "second")]
    assert accepted[0].at - limited.at >= 1.0
