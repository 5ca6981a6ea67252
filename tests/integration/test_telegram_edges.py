"""The Telegram connector at its edges: what the webhook answers and why, the
limits and odd senders of a message, button presses that are not ordinary,
updates parked after failing, and how long polling backs off. Segue's real
app and Redis, the real aiogram client, and the local Bot API server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.assembly.app import Segue
from bot.core.engine import APOLOGY, Turn
from bot.core.errors import ConnectorError, StoreError
from bot.core.model import Inbound
from connectors.telegram import TelegramConnector
from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    BOT_USER,
    CUSTOMER,
    ApiCall,
    FakeTelegram,
    callback_update,
    message_update,
)
from tests.support.policies import RecordingEchoPolicy
from tests.support.redis_server import redis_keys
from tests.support.telegram_rig import history_of, recording, segue_on_fake

CHAT = CUSTOMER["id"]


class PoisonedStore(RedisContextStore):
    """A store that cannot save a message whose text starts with "poison"."""

    async def save_and_unlock(self, customer_id: str, **kwargs: Any) -> bool:
        if any(entry.text.startswith("poison") for entry in kwargs["entries"]):
            raise StoreError("value rejected")
        return await super().save_and_unlock(customer_id, **kwargs)


@pytest.fixture
def policy() -> RecordingEchoPolicy:
    return RecordingEchoPolicy()


@pytest.fixture
async def segue(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy
) -> AsyncIterator[Segue]:
    store = PoisonedStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store, policy=policy) as running:
        yield running


async def post(telegram_api: FakeTelegram, update: dict[str, Any], *, secret: str | None = None,
               body: bytes | None = None) -> tuple[int, Any]:
    """Deliver one update to the webhook; the status and the JSON answer."""
    assert telegram_api.webhook is not None
    token = telegram_api.webhook["secret_token"] if secret is None else secret
    headers = {"Content-Type": "application/json"}
    if token:
        headers["X-Telegram-Bot-Api-Secret-Token"] = token
    data = body if body is not None else json.dumps(update).encode()
    async with aiohttp.ClientSession() as session, session.post(
        telegram_api.webhook["url"], data=data, headers=headers
    ) as response:
        return response.status, await response.json()


def sent_message(telegram_api: FakeTelegram, text: str = "Which one?",
                 chat: dict[str, Any] | None = None, *, date: int | None = None) -> ApiCall:
    """A message the bot sent earlier, as a button press quotes it."""
    message: dict[str, Any] = {
        "message_id": 1399,
        "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")},
        "chat": chat or {"id": CHAT, "first_name": "Dana", "type": "private"},
        "date": int(time.time()) if date is None else date,
        "text": text,
    }
    return ApiCall("sendMessage", {}, time.monotonic(), message)




# What the webhook answers.

async def test_refusals_name_their_error_code_and_say_why(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    status, answer = await post(telegram_api, telegram_api.message("hi"), secret="nope")
    assert status == 401
    assert answer["error"] == "bad_secret"
    assert "secret" in answer["message"].lower()
    status, answer = await post(telegram_api, {}, body=b'{"update_id": "x"}')
    assert status == 400
    assert answer["error"] == "bad_update"
    assert "update" in answer["message"].lower()
    assert telegram_api.sent() == []


async def test_each_outcome_is_named_in_the_answer(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    ok = await post(telegram_api, telegram_api.message("hello"))
    assert ok == (200, {"status": "accepted"})
    failed = await post(telegram_api, telegram_api.message("poison"))
    assert failed == (500, {"status": "failed"})


async def test_a_secret_that_is_not_configured_matches_no_header(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    connector = segue.connectors["telegram"]
    assert isinstance(connector, TelegramConnector)
    options = connector.options
    # Assembled without a secret (the settings refuse that, a direct build may not).
    connector.options = replace(options, webhook_secret=None)
    for guess in ["XXXX", "", "None"]:
        status, _ = await post(telegram_api, telegram_api.message("hi"), secret=guess)
        assert status == 401
    # A secret of plain letters still needs the header.
    connector.options = replace(options, webhook_secret="XXXX")
    status, _ = await post(telegram_api, telegram_api.message("hi"), secret="")
    assert status == 401
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


# Messages.

async def test_messages_from_bots_are_ignored(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    other_bot = {**CUSTOMER, "id": 7770001, "is_bot": True, "first_name": "Relay"}
    status, _ = await post(telegram_api, telegram_api.message("hi", user=other_bot))
    assert status == 200
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


async def test_a_message_at_the_limit_is_taken_and_one_over_it_is_refused(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy
) -> None:
    store = PoisonedStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store, policy=policy, max_text_length=10) as segue:
        assert (await post(telegram_api, telegram_api.message("x" * 10)))[0] == 200
        assert (await post(telegram_api, telegram_api.message("y" * 11)))[0] == 200
        history = await history_of(segue)
    first, second = telegram_api.sent()
    assert first.params["text"] == "Echo: " + "x" * 10
    too_long = ("Sorry, that message is too long for me (11 characters; the limit is 10). "
                "Please send it in shorter parts.")
    assert (second.params["chat_id"], second.params["text"]) == (str(CHAT), too_long)
    assert policy.seen == ["x" * 10]
    assert [e.text for e in history] == ["x" * 10, "Echo: " + "x" * 10]


async def test_commands_lose_only_the_bot_name(
    telegram_api: FakeTelegram, segue: Segue, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = recording(segue, monkeypatch)
    for text in ["/link@segue_demo_bot 12 34", "/help@segue_demo_bot", "/start@a@b go"]:
        assert (await post(telegram_api, telegram_api.message(text)))[0] == 200
    assert [i.text for i in received] == ["/link 12 34", "/help", "/start go"]


# Button presses.

async def test_presses_reach_the_engine_as_separate_messages_with_the_sender(
    telegram_api: FakeTelegram, segue: Segue, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = recording(segue, monkeypatch)
    menu = sent_message(telegram_api)
    first, second = callback_update(telegram_api.new_update_id(), menu, "more"), callback_update(
        telegram_api.new_update_id(), menu, "more")
    assert (await post(telegram_api, first))[0] == 200
    assert (await post(telegram_api, second))[0] == 200
    assert [i.message_id for i in received] == [
        str(first["update_id"]), str(second["update_id"])]
    assert {i.display_name for i in received} == {"Dana Reyes"}
    assert len(telegram_api.sent()) == 2
    assert [e.text for e in await history_of(segue) if e.sender == "customer"] == ["more", "more"]


async def test_a_press_on_a_message_too_old_to_read_uses_its_data(
    telegram_api: FakeTelegram, segue: Segue, monkeypatch: pytest.MonkeyPatch
) -> None:
    received = recording(segue, monkeypatch)
    # Telegram sends a message it no longer shows with date 0, content left out.
    old = sent_message(telegram_api, date=0)
    assert old.result is not None
    old.result.pop("from")
    old.result.pop("text")
    press = callback_update(telegram_api.new_update_id(), old, "order_status")
    assert (await post(telegram_api, press))[0] == 200
    assert [(i.text, i.payload) for i in received] == [("order_status", "order_status")]
    await telegram_api.wait_for("answerCallbackQuery")


async def test_presses_outside_a_private_chat_or_without_data_are_only_answered(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    group = {"id": -1001234567890, "title": "Support group", "type": "supergroup"}
    in_group = callback_update(telegram_api.new_update_id(),
                               sent_message(telegram_api, chat=group), "more")
    no_data = callback_update(telegram_api.new_update_id(), sent_message(telegram_api), "more")
    del no_data["callback_query"]["data"]
    for press in (in_group, no_data):
        assert (await post(telegram_api, press))[0] == 200
    answered = [c.params["callback_query_id"] for c in telegram_api.sent("answerCallbackQuery")]
    assert answered == [in_group["callback_query"]["id"], no_data["callback_query"]["id"]]
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


async def test_a_slow_press_shows_typing_in_its_chat(
    telegram_api: FakeTelegram, segue: Segue, policy: RecordingEchoPolicy
) -> None:
    policy.release = asyncio.Event()
    press = callback_update(telegram_api.new_update_id(), sent_message(telegram_api), "more")
    posting = asyncio.create_task(post(telegram_api, press))
    [typing] = await telegram_api.wait_for("sendChatAction")
    assert typing.params == {"chat_id": str(CHAT), "action": "typing"}
    policy.release.set()
    assert (await posting)[0] == 200
    [reply] = telegram_api.sent()
    assert reply.params["text"] == "Echo: more"


# Updates that keep failing.

async def test_each_update_counts_its_own_attempts(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    first = telegram_api.message("poison one")
    second = telegram_api.message("poison two")
    statuses = [(await post(telegram_api, update))[0] for update in [first, second] * 3]
    assert statuses == [500, 500, 500, 500, 200, 200]
    records = [json.loads(r) for r in await segue.store.parked(10)]
    assert sorted(r["update_id"] for r in records) == [first["update_id"], second["update_id"]]
    assert {r["attempts"] for r in records} == {3}


async def test_a_parked_update_keeps_what_an_operator_needs(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    update = telegram_api.message("poison")
    before = time.time()
    assert [(await post(telegram_api, update))[0] for _ in range(3)] == [500, 500, 200]
    [record] = await segue.store.parked(10)
    parked = json.loads(record)
    assert parked["channel"] == "telegram"
    assert parked["kind"] == "update"
    kept = parked["update"]
    assert kept["update_id"] == update["update_id"]
    assert kept["message"]["text"] == "poison"
    assert kept["message"]["chat"] == update["message"]["chat"]
    # As Telegram sent it: the Bot API's field names, not aiogram's.
    assert kept["message"]["from"] == update["message"]["from"]
    assert "null" not in json.dumps(kept)  # fields Telegram left out stay out
    assert before <= parked["ts"] <= time.time()


async def test_a_parked_update_delivered_again_is_not_parked_or_apologised_for_again(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    # Telegram missed the 200 that followed the parking, and delivers it again.
    update = telegram_api.message("poison")
    statuses = [(await post(telegram_api, update))[0] for _ in range(5)]
    assert statuses == [500, 500, 200, 200, 200]
    assert [c.params["text"] for c in telegram_api.sent()] == [APOLOGY.text]
    [record] = await segue.store.parked(10)
    assert json.loads(record)["attempts"] == 3


async def test_a_parked_press_is_answered_and_apologised_for_in_its_chat(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    press = callback_update(telegram_api.new_update_id(), sent_message(telegram_api), "poison")
    assert [(await post(telegram_api, press))[0] for _ in range(3)] == [500, 500, 200]
    [apology] = telegram_api.sent()
    assert (apology.params["chat_id"], apology.params["text"]) == (str(CHAT), APOLOGY.text)
    [answer] = telegram_api.sent("answerCallbackQuery")
    assert answer.params["callback_query_id"] == press["callback_query"]["id"]
    assert answer.at < apology.at


async def test_an_update_failing_on_a_channel_error_is_parked_too(
    telegram_api: FakeTelegram, segue: Segue, caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def unreachable(inbound: Inbound) -> Turn:
        # A turn that needed another channel, which could not be reached.
        raise ConnectorError("the desk could not be reached")

    monkeypatch.setattr(segue.engine, "process", unreachable)
    update = telegram_api.message("unreachable")
    assert [(await post(telegram_api, update))[0] for _ in range(3)] == [500, 500, 200]
    [record] = await segue.store.parked(10)
    assert json.loads(record)["error"].startswith("ConnectorError")
    [apology] = telegram_api.sent()
    assert apology.params["text"] == APOLOGY.text
    assert "could not be reached" in caplog.text


# Long polling.

class RecordedSleeps:
    """`asyncio` as the connector sees it, its pauses recorded instead of
    waited; a long pause (the typing delay) is waited for real."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    async def sleep(self, delay: float) -> None:
        if delay >= 100:
            await asyncio.sleep(delay)
            return
        self.delays.append(delay)
        await asyncio.sleep(0)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordedSleeps:
    """The Telegram connector's pauses, recorded."""
    recorded = RecordedSleeps()
    monkeypatch.setattr("connectors.telegram_polling.asyncio", recorded)
    return recorded


async def test_polling_backs_off_doubling_and_starts_over_once_all_is_accepted(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy,
    sleeps: RecordedSleeps,
) -> None:
    telegram_api.fail("getUpdates", status=500, description="Internal Server Error", times=3)
    store = PoisonedStore.from_url(redis_url)
    options = {"retry_delay_seconds": 1.0, "typing_after_seconds": 1000, "poll_timeout_seconds": 1}
    async with segue_on_fake(telegram_api, store, mode="polling",
                             policy=policy, **options) as segue:
        await telegram_api.wait_for("getUpdates", 4)
        assert sleeps.delays == [1.0, 2.0, 4.0]
        await telegram_api.queue_update(telegram_api.message("hello"))
        await telegram_api.wait_for("sendMessage")
        poisoned = telegram_api.new_update_id()
        await telegram_api.queue_update(message_update(poisoned, "poison"))
        # Tried three times, then parked with an apology and confirmed.
        await telegram_api.wait_for("sendMessage", 2)
        await telegram_api.wait_for("getUpdates", where=lambda c: c.params.get("offset") == str(
            poisoned + 1))
        await telegram_api.queue_update(telegram_api.message("after"))
        await telegram_api.wait_for("sendMessage", 3)
        # A long poll that ends empty is not a failure.
        held = len(telegram_api.sent("getUpdates"))
        await telegram_api.wait_for("getUpdates", held + 2)
        assert len(await segue.store.parked(10)) == 1
    assert sleeps.delays == [1.0, 2.0, 4.0, 1.0, 2.0]
    assert [c.params["text"] for c in telegram_api.sent()] == [
        "Echo: hello", APOLOGY.text, "Echo: after"]


async def test_polling_can_be_stopped_twice(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy
) -> None:
    store = RedisContextStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store, mode="polling",
                             policy=policy) as segue:
        await telegram_api.wait_for("getUpdates")
        connector = segue.connectors["telegram"]
        await connector.stop()
        await connector.stop()


async def test_a_long_poll_held_by_telegram_is_not_a_failure(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy,
    sleeps: RecordedSleeps,
) -> None:
    store = RedisContextStore.from_url(redis_url)
    options = {"poll_timeout_seconds": 12, "typing_after_seconds": 1000}
    async with segue_on_fake(telegram_api, store, mode="polling",
                             policy=policy, **options) as segue:
        [held] = await telegram_api.wait_for("getUpdates")
        assert held.params["timeout"] == "12"
        # What is tested is time passing: Telegram holds the poll this long.
        await asyncio.sleep(3)
        await telegram_api.queue_update(telegram_api.message("late"))
        await telegram_api.wait_for("sendMessage")
        assert len(telegram_api.sent("getUpdates")) == 1
        assert await history_of(segue)
    assert sleeps.delays == []
