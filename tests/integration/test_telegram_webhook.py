"""The Telegram connector in webhook mode: Segue's real app and Redis, the real
aiogram client, and a local Bot API server playing Telegram."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import ExitStack
from typing import Any

import pytest
import redis.asyncio as aioredis

from bot.assembly.app import Segue
from bot.core.engine import APOLOGY
from bot.core.errors import StoreError
from bot.core.model import Button, ChannelIdentity, HistoryEntry, Outbound
from bot.core.policy import TurnContext
from connectors.telegram import UNSUPPORTED_REPLY
from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    CUSTOMER,
    TOKEN,
    FakeTelegram,
    callback_update,
    keyboard_of,
    sticker_update,
)
from tests.support.redis_server import free_port, redis_keys, redis_server
from tests.support.telegram_rig import history_of, recording, segue_on_fake

CHAT = CUSTOMER["id"]
MENU = (Button("Order status", "order_status"), Button("Talk to a person", "human"))


class ScriptedPolicy:
    """Echoes every message with a menu, and remembers what it was given, so
    these tests do not depend on the demo bot's wording."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.release: asyncio.Event | None = None

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        self.seen.append((turn.inbound.text, turn.inbound.payload))
        if self.release is not None:
            await self.release.wait()
        return [Outbound(text=f"Echo: {turn.inbound.text}", buttons=MENU)]


@pytest.fixture
def policy() -> ScriptedPolicy:
    return ScriptedPolicy()


@pytest.fixture
async def segue(
    telegram_api: FakeTelegram, redis_store: RedisContextStore, policy: ScriptedPolicy
) -> AsyncIterator[Segue]:
    async with segue_on_fake(telegram_api, redis_store, policy=policy) as running:
        yield running


def customer_texts(history: Sequence[HistoryEntry]) -> list[str]:
    return [e.text for e in history if e.sender == "customer"]


async def test_start_sets_the_webhook_with_secret_and_allowed_updates(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    [call] = telegram_api.sent("setWebhook")
    assert call.params["url"].endswith("/telegram/webhook")
    assert call.params["secret_token"] == "s3cret-Token_1"
    assert call.json("allowed_updates") == ["message", "callback_query"]


async def test_full_conversation_over_webhook(telegram_api: FakeTelegram, redis_store: Any) -> None:
    # The shipped dialog policy, not the scripted one.
    async with segue_on_fake(telegram_api, redis_store) as segue:
        said = ["hi", "where is my order", "blorp flux capacitor"]
        for number, text in enumerate(said, start=1):
            assert await telegram_api.post_update(telegram_api.message(text)) == 200
            await telegram_api.wait_for("sendMessage", number)
        with_keyboard = [c for c in telegram_api.sent() if keyboard_of(c)]
        assert with_keyboard, "no reply offered buttons"
        button = keyboard_of(with_keyboard[-1])[0]
        before = len(telegram_api.sent())
        press = callback_update(telegram_api.new_update_id(), with_keyboard[-1],
                                button["callback_data"])
        assert await telegram_api.post_update(press) == 200
        await telegram_api.wait_for("answerCallbackQuery")
        await telegram_api.wait_for("sendMessage", before + 1)
        history = await history_of(segue)
    assert customer_texts(history) == [*said, button["text"]]
    assert {e.channel for e in history} == {"telegram"}
    assert len([e for e in history if e.sender == "bot"]) >= 4
    assert all(c.params["chat_id"] == str(CHAT) for c in telegram_api.sent())


async def test_button_press_is_answered_and_reaches_the_policy(
    telegram_api: FakeTelegram, segue: Segue, policy: ScriptedPolicy
) -> None:
    await telegram_api.post_update(telegram_api.message("hello"))
    [menu] = await telegram_api.wait_for("sendMessage")
    assert [(b["text"], b["callback_data"]) for b in keyboard_of(menu)] == [
        ("Order status", "order_status"),
        ("Talk to a person", "human"),
    ]
    press = callback_update(telegram_api.new_update_id(), menu, "human")
    assert await telegram_api.post_update(press) == 200
    [answer] = await telegram_api.wait_for("answerCallbackQuery")
    assert answer.params["callback_query_id"] == press["callback_query"]["id"]
    await telegram_api.wait_for("sendMessage", 2)
    assert policy.seen[-1] == ("Talk to a person", "human")
    # Delivered again (say our 200 was lost): accepted, not processed twice.
    assert await telegram_api.post_update(press) == 200
    assert len(telegram_api.sent()) == 2
    assert len(telegram_api.sent("answerCallbackQuery")) == 2  # the second refused, harmlessly
    assert customer_texts(await history_of(segue)) == ["hello", "Talk to a person"]


async def test_same_update_posted_three_times_is_answered_once(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    update = telegram_api.message("where is my order")
    statuses = [await telegram_api.post_update(update) for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(telegram_api.sent()) == 1
    history = await history_of(segue)
    assert customer_texts(history) == ["where is my order"]
    assert len(history) == 2


@pytest.mark.parametrize("secret", ["", "wrong-secret", "s3cret-Token_"])
async def test_wrong_or_missing_secret_is_refused_and_nothing_stored(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis, secret: str
) -> None:
    status = await telegram_api.post_update(telegram_api.message("hi"), secret=secret)
    assert status == 401
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


@pytest.mark.parametrize("body", [b"not json", b'{"update_id": "x"}', b"[1, 2]"])
async def test_malformed_update_is_refused_and_nothing_stored(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis, body: bytes
) -> None:
    assert await telegram_api.post_update({}, body=body) == 400
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


async def test_redis_down_answers_503_then_redelivery_is_processed_once(
    telegram_api: FakeTelegram, policy: ScriptedPolicy
) -> None:
    port = free_port()
    update = telegram_api.message("where is my order")
    with ExitStack() as first_redis:
        store = RedisContextStore.from_url(first_redis.enter_context(redis_server(port)))
        async with segue_on_fake(telegram_api, store, policy=policy) as segue:
            first_redis.close()  # Redis goes away while Segue runs
            assert await telegram_api.post_update(update) == 503
            assert telegram_api.sent() == []
            with redis_server(port):  # and comes back
                assert await telegram_api.post_update(update) == 200
                assert await telegram_api.post_update(update) == 200
                history = await history_of(segue)
    assert len(telegram_api.sent()) == 1
    assert customer_texts(history) == ["where is my order"]
    assert policy.seen == [("where is my order", None)]


class PoisonedStore(RedisContextStore):
    """A store that cannot save one particular message: a bug, not an outage."""

    async def save_and_unlock(self, customer_id: str, **kwargs: Any) -> bool:
        if any(entry.text == "poison" for entry in kwargs["entries"]):
            raise StoreError("value rejected")
        return await super().save_and_unlock(customer_id, **kwargs)


async def test_poisoned_update_is_parked_after_three_attempts_with_an_apology(
    telegram_api: FakeTelegram, redis_url: str
) -> None:
    store = PoisonedStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store) as segue:
        update = telegram_api.message("poison")
        assert [await telegram_api.post_update(update) for _ in range(3)] == [500, 500, 200]
        [apology] = telegram_api.sent()
        assert apology.params["text"] == APOLOGY.text
        [record] = await segue.store.parked(10)
        assert await history_of(segue) == []
        # The chat is not blocked: the next message is answered.
        assert await telegram_api.post_update(telegram_api.message("hi")) == 200
        await telegram_api.wait_for("sendMessage", 2)
    parked = json.loads(record)
    assert parked["update_id"] == update["update_id"]
    assert parked["attempts"] == 3
    assert "value rejected" in parked["error"]
    assert TOKEN not in record and TOKEN.split(":")[1] not in record
    assert "s3cret-Token_1" not in record


async def test_sticker_gets_a_clear_reply_and_nothing_is_stored(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    update = sticker_update(telegram_api.new_update_id())
    assert await telegram_api.post_update(update) == 200
    [reply] = telegram_api.sent()
    assert reply.params["text"] == UNSUPPORTED_REPLY
    assert "text" in reply.params["text"]
    # Nothing of the sticker is kept. One key is: the mark that this update
    # was answered, without which a redelivery would be answered again. It
    # holds no customer data and expires like the dedup marks of turns.
    [marker] = await redis_keys(redis_client, "*")
    assert marker == f"segue:token:answered:telegram:{CHAT}:{update['update_id']}"
    assert await redis_client.get(marker) == "1"
    assert 0 < await redis_client.ttl(marker) <= segue.store.limits.dedup_ttl_seconds


async def test_customer_markup_is_sent_back_as_plain_text(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    await telegram_api.post_update(telegram_api.message("<b>hi</b> & <a href='x'>"))
    [reply] = await telegram_api.wait_for("sendMessage")
    assert reply.params["text"] == "Echo: <b>hi</b> & <a href='x'>"
    assert "parse_mode" not in reply.params
    assert "entities" not in reply.params


async def test_commands_arrive_as_typed(
    telegram_api: FakeTelegram, segue: Segue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # At the engine's door: what links and dialogs make of them is theirs.
    received = recording(segue, monkeypatch)
    for text in ["/start c0ffee-token_42", "/link@segue_demo_bot 123456", "/start"]:
        assert await telegram_api.post_update(telegram_api.message(text)) == 200
    assert [i.text for i in received] == ["/start c0ffee-token_42", "/link 123456", "/start"]
    first = received[0]
    assert first.identity == ChannelIdentity("telegram", str(CHAT))
    assert first.address.target == str(CHAT)
    assert first.display_name == "Dana Reyes"
    assert [i.message_id for i in received] == sorted({i.message_id for i in received})


async def test_group_messages_are_ignored(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    update = telegram_api.message("hi all", chat_type="supergroup")
    assert await telegram_api.post_update(update) == 200
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


async def test_typing_is_shown_while_a_turn_runs_long(
    telegram_api: FakeTelegram, segue: Segue, policy: ScriptedPolicy
) -> None:
    policy.release = asyncio.Event()
    posting = asyncio.create_task(telegram_api.post_update(telegram_api.message("hm")))
    [typing] = await telegram_api.wait_for("sendChatAction")
    assert typing.params == {"chat_id": str(CHAT), "action": "typing"}
    assert telegram_api.sent() == []
    policy.release.set()
    assert await posting == 200
    [reply] = telegram_api.sent()
    assert reply.at > typing.at


async def test_quick_turn_shows_no_typing(telegram_api: FakeTelegram, segue: Segue) -> None:
    assert await telegram_api.post_update(telegram_api.message("quick")) == 200
    assert len(telegram_api.sent()) == 1
    assert telegram_api.sent("sendChatAction") == []


async def test_deeply_nested_json_is_refused_like_malformed_json(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    # Deeper than the JSON parser recurses: bad JSON, not a server error.
    body = b"[" * 100_000 + b"]" * 100_000
    assert await telegram_api.post_update({}, body=body) == 400
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []


async def test_an_update_of_an_unknown_kind_is_accepted_quietly(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A kind a newer Bot API may send; aiogram would warn with the whole update.
    update = {"update_id": 901, "some_future_kind": {"text": "CUSTOMER-SECRET-TEXT"}}
    assert await telegram_api.post_update(update) == 200
    assert telegram_api.sent() == []
    assert "CUSTOMER-SECRET-TEXT" not in caplog.text
    assert await redis_keys(redis_client, "*") == []
