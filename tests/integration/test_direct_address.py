"""Reaching a person who has not written in this chat: the address the
Telegram and Slack connectors give for a message the business sends first,
and what comes of sending there, through the real client libraries to the
local Bot API and Web API servers."""

from __future__ import annotations

import logging

import pytest

from bot.assembly.app import Segue
from bot.core.errors import ConnectorError
from bot.core.model import Address, ChannelIdentity, Outbound
from connectors.slack import SlackConnector
from connectors.slack_parse import identity
from connectors.telegram import TelegramConnector
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi
from tests.fakes.telegram_api import BLOCKED, NOT_STARTED, FakeTelegram

# Someone Segue has never had a message from, on either channel.
TELEGRAM_USER = 777000111
SLACK_USER = "U0NEWCOMER"


def telegram_connector(segue: Segue) -> TelegramConnector:
    connector = segue.connectors["telegram"]
    assert isinstance(connector, TelegramConnector)
    return connector


async def test_telegram_writes_first_to_the_users_private_chat(
    telegram_api: FakeTelegram, telegram: Segue
) -> None:
    connector = telegram_connector(telegram)
    person = ChannelIdentity("telegram", str(TELEGRAM_USER))
    address = await connector.direct_address(person)
    assert address == Address("telegram", str(TELEGRAM_USER))

    await connector.send(address, Outbound(text="Your order A1001 has shipped."))
    (sent,) = telegram_api.sent()
    assert int(sent.params["chat_id"]) == TELEGRAM_USER
    assert sent.params["text"] == "Your order A1001 has shipped."


@pytest.mark.parametrize("user_id", ["-1001234567890", "@shopnews", "0", "", "12a"])
async def test_telegram_gives_no_private_chat_for_what_is_not_a_user(
    telegram: Segue, user_id: str
) -> None:
    connector = telegram_connector(telegram)
    assert await connector.direct_address(ChannelIdentity("telegram", user_id)) is None
    assert await connector.direct_address(ChannelIdentity("slack", f"{TEAM_ID}:U1")) is None


@pytest.mark.parametrize("refusal", [NOT_STARTED, BLOCKED])
async def test_telegram_refusing_a_user_who_did_not_start_the_bot_says_why(
    telegram_api: FakeTelegram, telegram: Segue, refusal: str
) -> None:
    connector = telegram_connector(telegram)
    telegram_api.forbid(TELEGRAM_USER, refusal)
    address = await connector.direct_address(ChannelIdentity("telegram", str(TELEGRAM_USER)))
    assert address is not None

    with pytest.raises(ConnectorError) as raised:
        await connector.send(address, Outbound(text="Your order A1001 has shipped."))
    message = str(raised.value)
    assert "the user has not started the bot or has blocked it" in message
    assert refusal in message  # Telegram's own words, for the operator
    assert telegram_api.sent() == []


async def test_slack_opens_the_direct_message_and_the_message_goes_there(
    slack_api: FakeSlackApi, slack: SlackConnector
) -> None:
    person = identity(TEAM_ID, SLACK_USER)
    address = await slack.direct_address(person)

    (opened,) = slack_api.calls_to("conversations.open")
    assert opened.args["users"] == SLACK_USER
    assert address == Address("slack", slack_api.dm_channel(SLACK_USER), None)
    assert address.target.startswith("D")

    await slack.send(address, Outbound(text="Your order A1001 has shipped."))
    (posted,) = await slack_api.wait_posted(1)
    assert posted["channel"] == address.target
    assert posted["text"] == "Your order A1001 has shipped."
    assert "thread_ts" not in posted

    # Asked again, the channel is remembered: Slack is not asked twice.
    assert await slack.direct_address(person) == address
    assert len(slack_api.calls_to("conversations.open")) == 1


async def test_slack_direct_messages_are_opened_again_once_forgotten(
    slack_api: FakeSlackApi, slack: SlackConnector
) -> None:
    now = [0.0]
    slack.direct_messages.clock = lambda: now[0]
    person = identity(TEAM_ID, SLACK_USER)
    first = await slack.direct_address(person)
    now[0] = slack.direct_messages.ttl_seconds
    assert await slack.direct_address(person) == first
    assert len(slack_api.calls_to("conversations.open")) == 2


@pytest.mark.parametrize("error", ["user_not_found", "cannot_dm_bot", "user_disabled"])
async def test_slack_refusing_to_open_a_direct_message_gives_no_address(
    slack_api: FakeSlackApi, slack: SlackConnector, caplog: pytest.LogCaptureFixture,
    error: str
) -> None:
    caplog.set_level(logging.INFO, logger="connectors")
    slack_api.refuse_dm(SLACK_USER, error)
    assert await slack.direct_address(identity(TEAM_ID, SLACK_USER)) is None
    (logged,) = [r for r in caplog.records if error in r.getMessage()]
    assert logged.levelno == logging.INFO
    assert SLACK_USER not in logged.getMessage()
    assert slack_api.posted() == []

    # Not remembered: once Slack opens it, the person is reachable.
    del slack_api.dm_refusals[SLACK_USER]
    assert await slack.direct_address(identity(TEAM_ID, SLACK_USER)) is not None


async def test_slack_gives_no_address_for_what_is_not_a_slack_user(
    slack_api: FakeSlackApi, slack: SlackConnector
) -> None:
    assert await slack.direct_address(ChannelIdentity("slack", "no-team-here")) is None
    assert await slack.direct_address(ChannelIdentity("telegram", "5551234")) is None
    assert slack_api.calls_to("conversations.open") == []


async def test_slack_rate_limiting_conversations_open_past_its_retries_is_an_error(
    slack_api: FakeSlackApi, slack: SlackConnector
) -> None:
    # Not "no direct message": the caller is to try again later.
    slack_api.rate_limit("conversations.open", times=4, retry_after=0)
    with pytest.raises(ConnectorError, match="ratelimited"):
        await slack.direct_address(identity(TEAM_ID, SLACK_USER))
    assert len(slack_api.calls_to("conversations.open")) == 4
