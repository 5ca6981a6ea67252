"""Telegram updates in the order the customer wrote them, and a customer
whose lock is held (by a worker that died holding it) never loses a message."""

from __future__ import annotations

from typing import Any

from bot.assembly.app import Segue
from bot.core.locked_state import LockOptions
from bot.core.model import ChannelIdentity
from context_store import RedisContextStore
from tests.fakes.telegram_api import CUSTOMER, FakeTelegram
from tests.support.policies import RecordingEchoPolicy
from tests.support.redis_server import redis_keys
from tests.support.telegram_rig import history_of, segue_on_fake


async def test_the_webhook_asks_telegram_for_one_update_at_a_time(
    telegram_api: FakeTelegram, redis_store: RedisContextStore
) -> None:
    # Telegram holds the next update until the last is answered, so two
    # workers behind one address can never answer a customer out of order.
    async with segue_on_fake(telegram_api, redis_store, policy=RecordingEchoPolicy()):
        [call] = telegram_api.sent("setWebhook")
        assert call.params["max_connections"] == "1"


async def test_a_held_lock_is_busy_not_failing_and_the_update_is_never_parked(
    telegram_api: FakeTelegram, redis_store: RedisContextStore, redis_client: Any
) -> None:
    async with segue_on_fake(telegram_api, redis_store, policy=RecordingEchoPolicy()) as segue:
        segue.engine.locks.options = LockOptions(ttl_seconds=30.0, wait_seconds=0.05)
        assert await telegram_api.post_update(telegram_api.message("first")) == 200
        await telegram_api.wait_for("sendMessage", 1)
        customer = await segue.engine.customer_of(
            ChannelIdentity("telegram", str(CUSTOMER["id"])))
        # A worker took the customer's lock and died: it stays until its TTL.
        held = await redis_store.lock_and_load(customer, token="dead-worker", ttl_seconds=30,
                                               message_key=None)
        assert held.locked
        update = telegram_api.message("second")
        attempts = [await telegram_api.post_update(update) for _ in range(5)]
        assert attempts == [503] * 5  # more than the three failures that park an update
        assert await redis_keys(redis_client, "*parked*") == []
        await redis_store.unlock(customer, token="dead-worker")
        assert await telegram_api.post_update(update) == 200
        await telegram_api.wait_for("sendMessage", 2)
        texts = [e.text for e in await history_of(segue) if e.sender == "customer"]
        assert texts == ["first", "second"]
        assert len(telegram_api.sent()) == 2
        await _no_apology(segue, telegram_api)


async def _no_apology(segue: Segue, telegram_api: FakeTelegram) -> None:
    sent = [c.params["text"] for c in telegram_api.sent()]
    assert all("went wrong" not in text for text in sent), sent
