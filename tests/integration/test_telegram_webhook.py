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
from bot.core.engine import APOLOGY, Turn
from bot.core.errors import StoreError
from bot.core.model import Button, ChannelIdentity, HistoryEntry, Inbound, Outbound
from bot.core.policy import TurnContext
from connectors.telegram import UNSUPPORTED_REPLY
from context_store import RedisContextStore
from tests.fakes.telegram_api import (
    CUSTOMER,
    TOKEN,
    FakeTelegram,
    callback_update,
    keyboard_of,
    message_update,
    segue_on_fake,
    sticker_update,
)
from tests.support.redis_server import free_port, redis_server

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
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as server:
        yield server


@pytest.fixture
def redis_store(redis_url: str) -> RedisContextStore:
    # Closed by the app's cleanup.
    return RedisContextStore.from_url(redis_url)


@pytest.fixture
def policy() -> ScriptedPolicy:
    return ScriptedPolicy()


@pytest.fixture
async def segue(
    fake: FakeTelegram, redis_store: RedisContextStore, policy: ScriptedPolicy
) -> AsyncIterator[Segue]:
    def use_policy(segue: Segue) -> None:
        segue.engine.policy = policy

    async with segue_on_fake(fake, redis_store, configure=use_policy) as running:
        yield running


async def history_of(segue: Segue, user_id: int = CHAT) -> list[HistoryEntry]:
    customer = await segue.store.resolve_customer(ChannelIdentity("telegram", str(user_id)), "-")
    return await segue.store.history(customer, 100)


async def all_keys(client: aioredis.Redis) -> list[str]:
    return [key async for key in client.scan_iter("*")]


def customer_texts(history: Sequence[HistoryEntry]) -> list[str]:
    return [e.text for e in history if e.sender == "customer"]


async def test_start_sets_the_webhook_with_secret_and_allowed_updates(
    fake: FakeTelegram, segue: Segue
) -> None:
    [call] = fake.sent("setWebhook")
    assert call.params["url"].endswith("/telegram/webhook")
    assert call.params["secret_token"] == "s3cret-Token_1"
    assert call.json("allowed_updates") == ["message", "callback_query"]


async def test_full_conversation_over_webhook(fake: FakeTelegram, redis_store: Any) -> None:
    # The shipped dialog policy, not the scripted one.
    async with segue_on_fake(fake, redis_store) as segue:
        said = ["hi", "where is my order", "blorp flux capacitor"]
        for number, text in enumerate(said, start=1):
            assert await fake.post_update(message_update(fake.new_update_id(), text)) == 200
            await fake.wait_for("sendMessage", number)
        with_keyboard = [c for c in fake.sent() if keyboard_of(c)]
        assert with_keyboard, "no reply offered buttons"
        button = keyboard_of(with_keyboard[-1])[0]
        before = len(fake.sent())
        press = callback_update(fake.new_update_id(), with_keyboard[-1], button["callback_data"])
        assert await fake.post_update(press) == 200
        await fake.wait_for("answerCallbackQuery")
        await fake.wait_for("sendMessage", before + 1)
        history = await history_of(segue)
    assert customer_texts(history) == [*said, button["text"]]
    assert {e.channel for e in history} == {"telegram"}
    assert len([e for e in history if e.sender == "bot"]) >= 4
    assert all(c.params["chat_id"] == str(CHAT) for c in fake.sent())


async def test_button_press_is_answered_and_reaches_the_policy(
    fake: FakeTelegram, segue: Segue, policy: ScriptedPolicy
) -> None:
    await fake.post_update(message_update(fake.new_update_id(), "hello"))
    [menu] = await fake.wait_for("sendMessage")
    assert [(b["text"], b["callback_data"]) for b in keyboard_of(menu)] == [
        ("Order status", "order_status"),
        ("Talk to a person", "human"),
    ]
    press = callback_update(fake.new_update_id(), menu, "human")
    assert await fake.post_update(press) == 200
    [answer] = await fake.wait_for("answerCallbackQuery")
    assert answer.params["callback_query_id"] == press["callback_query"]["id"]
    await fake.wait_for("sendMessage", 2)
    assert policy.seen[-1] == ("Talk to a person", "human")
    # Delivered again (say our 200 was lost): accepted, not processed twice.
    assert await fake.post_update(press) == 200
    assert len(fake.sent()) == 2
    assert len(fake.sent("answerCallbackQuery")) == 2  # the second refused, harmlessly
    assert customer_texts(await history_of(segue)) == ["hello", "Talk to a person"]


async def test_same_update_posted_three_times_is_answered_once(
    fake: FakeTelegram, segue: Segue
) -> None:
    update = message_update(fake.new_update_id(), "where is my order")
    statuses = [await fake.post_update(update) for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert len(fake.sent()) == 1
    history = await history_of(segue)
    assert customer_texts(history) == ["where is my order"]
    assert len(history) == 2


@pytest.mark.parametrize("secret", ["", "wrong-secret", "s3cret-Token_"])
async def test_wrong_or_missing_secret_is_refused_and_nothing_stored(
    fake: FakeTelegram, segue: Segue, redis_client: aioredis.Redis, secret: str
) -> None:
    status = await fake.post_update(message_update(fake.new_update_id(), "hi"), secret=secret)
    assert status == 401
    assert fake.sent() == []
    assert await all_keys(redis_client) == []


@pytest.mark.parametrize("body", [b"not json", b'{"update_id": "x"}', b"[1, 2]"])
async def test_malformed_update_is_refused_and_nothing_stored(
    fake: FakeTelegram, segue: Segue, redis_client: aioredis.Redis, body: bytes
) -> None:
    assert await fake.post_update({}, body=body) == 400
    assert fake.sent() == []
    assert await all_keys(redis_client) == []


async def test_redis_down_answers_503_then_redelivery_is_processed_once(
    fake: FakeTelegram, policy: ScriptedPolicy
) -> None:
    port = free_port()
    update = message_update(fake.new_update_id(), "where is my order")
    with ExitStack() as first_redis:
        store = RedisContextStore.from_url(first_redis.enter_context(redis_server(port)))

        def use_policy(segue: Segue) -> None:
            segue.engine.policy = policy

        async with segue_on_fake(fake, store, configure=use_policy) as segue:
            first_redis.close()  # Redis goes away while Segue runs
            assert await fake.post_update(update) == 503
            assert fake.sent() == []
            with redis_server(port):  # and comes back
                assert await fake.post_update(update) == 200
                assert await fake.post_update(update) == 200
                history = await history_of(segue)
    assert len(fake.sent()) == 1
    assert customer_texts(history) == ["where is my order"]
    assert policy.seen == [("where is my order", None)]


class PoisonedStore(RedisContextStore):
    """A store that cannot save one particular message: a bug, not an outage."""

    async def save_and_unlock(self, customer_id: str, **kwargs: Any) -> bool:
        if any(entry.text == "poison" for entry in kwargs["entries"]):
            raise StoreError("value rejected")
        return await super().save_and_unlock(customer_id, **kwargs)


async def test_poisoned_update_is_parked_after_three_attempts_with_an_apology(
    fake: FakeTelegram, redis_url: str
) -> None:
    store = PoisonedStore.from_url(redis_url)
    async with segue_on_fake(fake, store) as segue:
        update = message_update(fake.new_update_id(), "poison")
        assert [await fake.post_update(update) for _ in range(3)] == [500, 500, 200]
        [apology] = fake.sent()
        assert apology.params["text"] == APOLOGY.text
        [record] = await segue.store.parked(10)
        assert await history_of(segue) == []
        # The chat is not blocked: the next message is answered.
        assert await fake.post_update(message_update(fake.new_update_id(), "hi")) == 200
        await fake.wait_for("sendMessage", 2)
    parked = json.loads(record)
    assert parked["update_id"] == update["update_id"]
    assert parked["attempts"] == 3
    assert "value rejected" in parked["error"]
    assert TOKEN not in record and TOKEN.split(":")[1] not in record
    assert "s3cret-Token_1" not in record


async def test_sticker_gets_a_clear_reply_and_nothing_is_stored(
    fake: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    assert await fake.post_update(sticker_update(fake.new_update_id())) == 200
    [reply] = fake.sent()
    assert reply.params["text"] == UNSUPPORTED_REPLY
    assert "text" in reply.params["text"]
    assert await all_keys(redis_client) == []


async def test_customer_markup_is_sent_back_as_plain_text(
    fake: FakeTelegram, segue: Segue
) -> None:
    await fake.post_update(message_update(fake.new_update_id(), "<b>hi</b> & <a href='x'>"))
    [reply] = await fake.wait_for("sendMessage")
    assert reply.params["text"] == "Echo: <b>hi</b> & <a href='x'>"
    assert "parse_mode" not in reply.params
    assert "entities" not in reply.params


async def test_commands_arrive_as_typed(
    fake: FakeTelegram, segue: Segue, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: list[Inbound] = []
    process = segue.engine.process

    async def recording(inbound: Inbound) -> Turn:
        received.append(inbound)
        return await process(inbound)

    # At the engine's door: what links and dialogs make of them is theirs.
    monkeypatch.setattr(segue.engine, "process", recording)
    for text in ["/start c0ffee-token_42", "/link@segue_demo_bot 123456", "/start"]:
        assert await fake.post_update(message_update(fake.new_update_id(), text)) == 200
    assert [i.text for i in received] == ["/start c0ffee-token_42", "/link 123456", "/start"]
    first = received[0]
    assert first.identity == ChannelIdentity("telegram", str(CHAT))
    assert first.address.target == str(CHAT)
    assert first.display_name == "Dana Reyes"
    assert [i.message_id for i in received] == sorted({i.message_id for i in received})


async def test_group_messages_are_ignored(
    fake: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    update = message_update(fake.new_update_id(), "hi all", chat_type="supergroup")
    assert await fake.post_update(update) == 200
    assert fake.sent() == []
    assert await all_keys(redis_client) == []


async def test_typing_is_shown_while_a_turn_runs_long(
    fake: FakeTelegram, segue: Segue, policy: ScriptedPolicy
) -> None:
    policy.release = asyncio.Event()
    posting = asyncio.create_task(fake.post_update(message_update(fake.new_update_id(), "hm")))
    [typing] = await fake.wait_for("sendChatAction")
    assert typing.params == {"chat_id": str(CHAT), "action": "typing"}
    assert fake.sent() == []
    policy.release.set()
    assert await posting == 200
    [reply] = fake.sent()
    assert reply.at > typing.at


async def test_quick_turn_shows_no_typing(fake: FakeTelegram, segue: Segue) -> None:
    assert await fake.post_update(message_update(fake.new_update_id(), "quick")) == 200
    assert len(fake.sent()) == 1
    assert fake.sent("sendChatAction") == []


async def test_deeply_nested_json_is_refused_like_malformed_json(
    fake: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    # Deeper than the JSON parser recurses: bad JSON, not a server error.
    body = b"[" * 100_000 + b"]" * 100_000
    assert await fake.post_update({}, body=body) == 400
    assert fake.sent() == []
    assert await all_keys(redis_client) == []


async def test_an_update_of_an_unknown_kind_is_accepted_quietly(
    fake: FakeTelegram, segue: Segue, redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A kind a newer Bot API may send; aiogram would warn with the whole update.
    update = {"update_id": 901, "some_future_kind": {"text": "CUSTOMER-SECRET-TEXT"}}
    assert await fake.post_update(update) == 200
    assert fake.sent() == []
    assert "CUSTOMER-SECRET-TEXT" not in caplog.text
    assert await all_keys(redis_client) == []
