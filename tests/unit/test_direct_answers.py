"""Fixed answers outside a turn, sent once per message: on the memory store
and on Redis (the `store` fixture), with a recording channel."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from bot.core.delivery import Senders
from bot.core.direct_answers import DirectAnswers
from bot.core.errors import ConnectorError, StoreUnavailable
from bot.core.model import Address, ChannelIdentity, Outbound
from bot.core.ports import ContextStore
from context_store import MemoryContextStore, RedisContextStore
from tests.support.redis_server import redis_keys

DANA = ChannelIdentity("telegram", "5551234")
CHAT = Address("telegram", "5551234")
TEXT_ONLY = "I can read text messages only."


class Channel:
    """Records what it sends; refuses the next `refusals` messages."""

    def __init__(self, refusals: int = 0) -> None:
        self.sent: list[tuple[Address, Outbound]] = []
        self.refusals = refusals

    async def send(self, address: Address, outbound: Outbound) -> None:
        await asyncio.sleep(0)  # a network call: let racing callers run
        if self.refusals:
            self.refusals -= 1
            raise ConnectorError("Telegram could not be reached")
        self.sent.append((address, outbound))


def answers_on(store: ContextStore, channel: Channel, ttl_seconds: int = 3600) -> DirectAnswers:
    return DirectAnswers(store, Senders({"telegram": channel}), ttl_seconds=ttl_seconds)


async def test_a_message_is_answered_once_however_often_it_comes(store: ContextStore) -> None:
    channel = Channel()
    answers = answers_on(store, channel)
    sent = [await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY) for _ in range(3)]
    assert sent == [True, False, False]
    assert channel.sent == [(CHAT, Outbound(text=TEXT_ONLY))]


async def test_deliveries_racing_for_one_message_answer_it_once(store: ContextStore) -> None:
    channel = Channel()
    answers = answers_on(store, channel)
    sent = await asyncio.gather(
        *(answers.answer_once(DANA, "901", CHAT, TEXT_ONLY) for _ in range(10)))
    assert sorted(sent) == [False] * 9 + [True]
    assert len(channel.sent) == 1


async def test_messages_are_told_apart_by_sender_and_id(store: ContextStore) -> None:
    channel = Channel()
    answers = answers_on(store, channel)
    sam = ChannelIdentity("telegram", "5559876")
    on_slack = ChannelIdentity("slack", "5551234")
    asked = [(DANA, "901"), (DANA, "902"), (sam, "901"), (on_slack, "901")]
    assert [await answers.answer_once(who, mid, CHAT, TEXT_ONLY) for who, mid in asked] == [
        True] * 4
    assert len(channel.sent) == 4


async def test_an_answer_the_channel_refused_is_sent_by_the_next_delivery(
    store: ContextStore,
) -> None:
    channel = Channel(refusals=1)
    answers = answers_on(store, channel)
    assert await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY) is False
    assert channel.sent == []
    assert await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY) is True
    assert await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY) is False
    assert len(channel.sent) == 1


async def test_the_mark_expires_with_the_dedup_marks() -> None:
    now = [1000.0]
    store = MemoryContextStore(clock=lambda: now[0])
    channel = Channel()
    answers = answers_on(store, channel, ttl_seconds=600)
    assert await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY)
    now[0] += 599
    assert not await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY)
    now[0] += 2  # long past any redelivery
    assert await answers.answer_once(DANA, "901", CHAT, TEXT_ONLY)
    assert len(channel.sent) == 2


async def test_on_redis_the_mark_is_one_short_lived_key_without_the_text(
    redis_url: str, redis_client: aioredis.Redis
) -> None:
    store = RedisContextStore.from_url(redis_url)
    try:
        assert await answers_on(store, Channel(), ttl_seconds=600).answer_once(
            DANA, "901", CHAT, TEXT_ONLY)
    finally:
        await store.close()
    [key] = await redis_keys(redis_client, "*")
    assert key == "segue:token:answered:telegram:5551234:901"
    assert await redis_client.get(key) == "1"
    assert 590 <= await redis_client.ttl(key) <= 600


async def test_a_store_that_cannot_be_reached_sends_nothing_and_says_so() -> None:
    class Unreachable(MemoryContextStore):
        async def put_token(self, key: str, value: str, ttl_seconds: int) -> bool:
            raise StoreUnavailable("Redis is not answering")

    channel = Channel()
    with pytest.raises(StoreUnavailable):
        await answers_on(Unreachable(), channel).answer_once(DANA, "901", CHAT, TEXT_ONLY)
    assert channel.sent == []


def test_a_mark_that_never_expires_is_refused() -> None:
    with pytest.raises(ValueError, match="TTL"):
        answers_on(MemoryContextStore(), Channel(), ttl_seconds=0)
