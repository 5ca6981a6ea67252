"""The Telegram connector in long-polling mode against the local Bot API server."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    TOKEN,
    ApiCall,
    FakeTelegram,
    message_update,
)
from tests.support.policies import RecordingEchoPolicy
from tests.support.redis_server import free_port, redis_server
from tests.support.telegram_rig import history_of, segue_on_fake

# Retry a refused update quickly: the tests wait for it.
QUICK_RETRY = {"retry_delay_seconds": 0.05}


def offset_is(value: int) -> Callable[[ApiCall], bool]:
    return lambda call: call.params.get("offset") == str(value)


async def test_polling_confirms_an_update_only_after_processing_it(
    telegram_api: FakeTelegram, redis_url: str
) -> None:
    policy = RecordingEchoPolicy()
    store = RedisContextStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store, mode="polling",
                             policy=policy, **QUICK_RETRY) as segue:
        [first_poll] = await telegram_api.wait_for("getUpdates")
        assert telegram_api.sent("deleteWebhook") and telegram_api.sent("setWebhook") == []
        assert int(first_poll.params["timeout"]) > 0  # long polling, not short
        assert first_poll.json("allowed_updates") == ["message", "callback_query"]
        update_id = telegram_api.new_update_id()
        await telegram_api.queue_update(message_update(update_id, "where is my order"))
        [reply] = await telegram_api.wait_for("sendMessage")
        [confirm] = await telegram_api.wait_for("getUpdates", where=offset_is(update_id + 1))
        history = await history_of(segue)
    assert reply.params["text"] == "Echo: where is my order"
    assert confirm.at > reply.at
    assert [e.text for e in history] == ["where is my order", "Echo: where is my order"]
    assert policy.seen == ["where is my order"]


async def test_polling_keeps_an_update_while_redis_is_down_and_processes_it_once(
    telegram_api: FakeTelegram,
) -> None:
    policy = RecordingEchoPolicy()
    port = free_port()
    with ExitStack() as first_redis:
        store = RedisContextStore.from_url(first_redis.enter_context(redis_server(port)))
        async with segue_on_fake(telegram_api, store, mode="polling",
                             policy=policy, **QUICK_RETRY) as segue:
            await telegram_api.wait_for("getUpdates")
            first_redis.close()
            update_id = telegram_api.new_update_id()
            await telegram_api.queue_update(message_update(update_id, "hello?"))
            # Fetched again and again without confirming it while Redis is away.
            await telegram_api.wait_for("getUpdates", 4, where=lambda c: "offset" not in c.params)
            assert telegram_api.sent() == []
            with redis_server(port):
                await telegram_api.wait_for("sendMessage")
                await telegram_api.wait_for("getUpdates", where=offset_is(update_id + 1))
                history = await history_of(segue)
    assert len(telegram_api.sent()) == 1
    assert [e.text for e in history] == ["hello?", "Echo: hello?"]
    assert policy.seen == ["hello?"]


async def test_a_failing_get_updates_is_logged_without_the_bot_token(
    telegram_api: FakeTelegram, redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    telegram_api.redirect_loop("getUpdates")
    store = RedisContextStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store, mode="polling",
                             policy=RecordingEchoPolicy(), **QUICK_RETRY):
        # aiohttp gives up after 10 redirects; the next attempt comes after the log line.
        await telegram_api.wait_for("getUpdates", 11, where=lambda call: call.result == "redirect")
    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("getUpdates")]
    assert failures[0] == "getUpdates failed: TooManyRedirects: too many redirects"
    assert TOKEN not in caplog.text
