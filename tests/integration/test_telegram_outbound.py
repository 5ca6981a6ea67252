"""Rendering replies through the real aiogram client to the local Bot API server."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator

import pytest

from bot.assembly.app import Segue
from bot.core.errors import ConnectorError
from bot.core.model import Address, Button, ChannelIdentity, Image, Link, Outbound
from bot.core.policy import TurnContext
from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    CUSTOMER,
    TOKEN,
    FakeTelegram,
    keyboard_of,
)
from tests.support.telegram_rig import segue_on_fake

CHAT = CUSTOMER["id"]
ADDRESS = Address("telegram", str(CHAT))


@pytest.fixture
async def segue(telegram_api: FakeTelegram, redis_url: str) -> AsyncIterator[Segue]:
    async with segue_on_fake(telegram_api, RedisContextStore.from_url(redis_url)) as running:
        yield running


async def send(segue: Segue, outbound: Outbound) -> None:
    await segue.connectors["telegram"].send(ADDRESS, outbound)


async def test_long_text_is_split_at_the_telegram_limit(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    # 2,000 words of 7 letters: 15,999 characters, a space every 8th.
    text = " ".join(f"w{i:06d}" for i in range(2000))
    await send(segue, Outbound(text=text, buttons=(Button("More", "more"),)))
    parts = [c.params["text"] for c in telegram_api.sent()]
    assert [len(p) for p in parts] == [4096, 4096, 4096, 3711]
    assert "".join(parts) == text
    assert all(p.endswith(" ") for p in parts[:-1])  # cut between words
    # The buttons go with the last part, under the whole text.
    assert [bool(keyboard_of(c)) for c in telegram_api.sent()] == [False, False, False, True]


async def test_rate_limit_retry_after_is_honoured(telegram_api: FakeTelegram, segue: Segue) -> None:
    telegram_api.fail("sendMessage", status=429, description="Too Many Requests: retry after 1",
              retry_after=1)
    await send(segue, Outbound(text="hello"))
    refused, delivered = telegram_api.sent()
    assert delivered.result["text"] == "hello"
    assert delivered.at - refused.at >= 0.95


async def test_rate_limit_beyond_the_retries_is_a_connector_error(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    telegram_api.fail("sendMessage", status=429, description="Too Many Requests: retry after 600",
              retry_after=600)
    with pytest.raises(ConnectorError, match="retry after 600"):
        await send(segue, Outbound(text="hello"))
    assert len(telegram_api.sent()) == 1


async def test_blocked_customer_is_a_connector_error_and_the_turn_is_kept(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    telegram_api.blocked_chats.add(CHAT)
    with pytest.raises(ConnectorError, match="blocked"):
        await send(segue, Outbound(text="hello"))
    # Through the engine: the refusal is logged, the update still accepted.
    assert await telegram_api.post_update(telegram_api.message("hi")) == 200
    identity = ChannelIdentity("telegram", str(CHAT))
    customer = await segue.store.resolve_customer(identity, "-")
    assert [e.text for e in await segue.store.history(customer, 10)][0] == "hi"


async def test_a_redirect_loop_is_reported_without_the_bot_token(
    telegram_api: FakeTelegram, segue: Segue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    telegram_api.redirect_loop("sendMessage")
    with pytest.raises(ConnectorError) as raised:
        await send(segue, Outbound(text="hello"))
    assert telegram_api.redirects("sendMessage") == 10  # aiohttp gives up after 10
    reason = "TooManyRedirects: too many redirects"
    assert str(raised.value) == f"Telegram could not be reached: {reason}"
    assert TOKEN not in "".join(traceback.format_exception(raised.value))

    # Through the engine, which logs what the connector raised.
    assert await telegram_api.post_update(telegram_api.message("hi")) == 200
    assert telegram_api.redirects("sendMessage") == 20
    assert "delivery to telegram failed" in caplog.text
    assert "TooManyRedirects" in caplog.text
    assert TOKEN not in caplog.text


async def test_buttons_links_and_images_are_rendered_natively(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    outbound = Outbound(
        text="Your parcel <is> on its way",
        buttons=(Button("Order status", "order_status"),),
        links=(Link("https://example.com/track/A1001", "Track it"),
               Link("mailto:help@example.com", "Write to us")),
        images=(Image("https://example.com/parcel.png", "The parcel"),),
    )
    await send(segue, outbound)
    [message] = telegram_api.sent()
    [photo] = telegram_api.sent("sendPhoto")
    assert message.params["text"] == (
        "Your parcel <is> on its way\nWrite to us: mailto:help@example.com"
    )
    assert "parse_mode" not in message.params and "parse_mode" not in photo.params
    assert photo.params["photo"] == "https://example.com/parcel.png"
    assert photo.params["caption"] == "The parcel"
    assert keyboard_of(photo) == [
        {"text": "Order status", "callback_data": "order_status"},
        {"text": "Track it", "url": "https://example.com/track/A1001"},
    ]


async def test_refused_photo_falls_back_to_a_link(telegram_api: FakeTelegram, segue: Segue) -> None:
    telegram_api.fail("sendPhoto", status=400,
              description="Bad Request: wrong file identifier/HTTP URL specified")
    await send(segue, Outbound(text="", images=(Image("https://example.com/x.png", "X"),),
                               buttons=(Button("OK", "ok"),)))
    [message] = telegram_api.sent()
    assert message.params["text"] == "X\nhttps://example.com/x.png"
    assert keyboard_of(message) == [{"text": "OK", "callback_data": "ok"}]


async def test_agent_messages_carry_the_agent_name(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    await send(segue, Outbound(text="I can help.", sender="agent", agent_name="Sam"))
    [message] = telegram_api.sent()
    assert message.params["text"] == "Sam: I can help."


async def test_policy_replies_reach_the_chat_in_order(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    class TwoReplies:
        async def decide(self, turn: TurnContext) -> list[Outbound]:
            return [Outbound(text="one"), Outbound(text="two")]

    segue.engine.policy = TwoReplies()
    assert await telegram_api.post_update(telegram_api.message("go")) == 200
    assert [c.params["text"] for c in telegram_api.sent()] == ["one", "two"]
