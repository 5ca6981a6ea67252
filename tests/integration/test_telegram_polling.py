"""The Telegram connector in long-polling mode against the local Bot API server."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack
from dataclasses import replace

import pytest

from bot.assembly.app import Segue
from bot.core.model import ChannelIdentity, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from connectors.telegram import TelegramConnector
from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    CUSTOMER,
    TOKEN,
    ApiCall,
    FakeTelegram,
    message_update,
    segue_on_fake,
)
from tests.support.redis_server import free_port, redis_server


class EchoPolicy:
    """Answers every message, counting how often it is asked."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        self.seen.append(turn.inbound.text)
        return [Outbound(text=f"Echo: {turn.inbound.text}")]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


def configure(policy: EchoPolicy) -> Callable[[Segue], None]:
    def apply(segue: Segue) -> None:
        segue.engine.policy = policy
        connector = segue.connectors["telegram"]
        assert isinstance(connector, TelegramConnector)
        # Retry a refused update quickly: the test waits for it.
        connector.options = replace(connector.options, retry_delay_seconds=0.05)

    return apply


def offset_is(value: int) -> Callable[[ApiCall], bool]:
    return lambda call: call.params.get("offset") == str(value)


async def history_of(segue: Segue) -> list[HistoryEntry]:
    identity = ChannelIdentity("telegram", str(CUSTOMER["id"]))
    return await segue.store.history(await segue.store.resolve_customer(identity, "-"), 100)


async def test_polling_confirms_an_update_only_after_processing_it(
    fake: FakeTelegram, redis_url: str
) -> None:
    policy = EchoPolicy()
    store = RedisContextStore.from_url(redis_url)
    async with segue_on_fake(fake, store, mode="polling", configure=configure(policy)) as segue:
        [first_poll] = await fake.wait_for("getUpdates")
        assert fake.sent("deleteWebhook") and fake.sent("setWebhook") == []
        assert int(first_poll.params["timeout"]) > 0  # long polling, not short
        assert first_poll.json("allowed_updates") == ["message", "callback_query"]
        update_id = fake.new_update_id()
        await fake.queue_update(message_update(update_id, "where is my order"))
        [reply] = await fake.wait_for("sendMessage")
        [confirm] = await fake.wait_for("getUpdates", where=offset_is(update_id + 1))
        history = await history_of(segue)
    assert reply.params["text"] == "Echo: where is my order"
    assert confirm.at > reply.at
    assert [e.text for e in history] == ["where is my order", "Echo: where is my order"]
    assert policy.seen == ["where is my order"]


async def test_polling_keeps_an_update_while_redis_is_down_and_processes_it_once(
    fake: FakeTelegram,
) -> None:
    policy = EchoPolicy()
    port = free_port()
    with ExitStack() as first_redis:
        store = RedisContextStore.from_url(first_redis.enter_context(redis_server(port)))
        async with segue_on_fake(fake, store, mode="polling", configure=configure(policy)) as segue:
            await fake.wait_for("getUpdates")
            first_redis.close()
            update_id = fake.new_update_id()
            await fake.queue_update(message_update(update_id, "hello?"))
            # Fetched again and again without confirming it while Redis is away.
            await fake.wait_for("getUpdates", 4, where=lambda c: "offset" not in c.params)
            assert fake.sent() == []
            with redis_server(port):
                await fake.wait_for("sendMessage")
                await fake.wait_for("getUpdates", where=offset_is(update_id + 1))
                history = await history_of(segue)
    assert len(fake.sent()) == 1
    assert [e.text for e in history] == ["hello?", "Echo: hello?"]
    assert policy.seen == ["hello?"]


async def test_a_failing_get_updates_is_logged_without_the_bot_token(
    fake: FakeTelegram, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.redirect_loop("getUpdates")
    store = RedisContextStore.from_url(redis_url)
    async with segue_on_fake(fake, store, mode="polling", configure=configure(EchoPolicy())):
        # aiohttp gives up after 10 redirects; the next attempt comes after the log line.
        await fake.wait_for("getUpdates", 11, where=lambda call: call.result == "redirect")
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("getUpdates")]
    assert failures[0] == "getUpdates failed: TooManyRedirects: too many redirects"
    assert TOKEN not in caplog.text
