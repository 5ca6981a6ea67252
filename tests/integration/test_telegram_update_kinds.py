"""Every kind of Telegram update, in the shapes the Bot API documents: what a
person sends that is not text is answered once, service messages and bots
get no answer, other update types are left alone, and an update that comes
with the secret but cannot be read is parked, not refused. By webhook (each
update posted again, as Telegram does when it misses our answer) and by long
polling. Segue's real app and Redis, the real aiogram client, and the local
Bot API server."""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiogram.types import Update
from prometheus_client import REGISTRY

from bot.assembly.app import Segue
from connectors.texts import UNSUPPORTED_REPLY, too_long_reply
from context_store import RedisContextStore
from tests.fakes.telegram_api import BOT_USER, CUSTOMER, ApiCall, FakeTelegram, callback_update
from tests.support.policies import RecordingEchoPolicy
from tests.support.redis_server import redis_keys
from tests.support.telegram_rig import history_of, segue_on_fake

CHAT = CUSTOMER["id"]
PRIVATE = {"id": CHAT, "first_name": "Dana", "last_name": "Reyes", "type": "private"}
OTHER = {"id": 5559876, "is_bot": False, "first_name": "Sam"}
RELAY_BOT = {"id": 7770001, "is_bot": True, "first_name": "Relay", "username": "relay_bot"}
NEWS = {"id": -1001234567890, "title": "Shop news", "type": "channel"}
# Typed by the customer; must never reach a log line.
SECRET_TEXT = "CUSTOMER-SECRET-TEXT"

PHOTO = [
    {"file_id": "AgACAgIAAxkBAAIBR2VhYmNkZWZn", "file_unique_id": "AQADr7gxG",
     "file_size": 1254, "width": 90, "height": 67},
    {"file_id": "AgACAgIAAxkBAAIBR2VhYmNkZWZo", "file_unique_id": "AQADr7gxGy",
     "file_size": 48512, "width": 800, "height": 600},
]
HERE = {"latitude": 52.520008, "longitude": 13.404954}

# What a person sends that is not text, by the field that carries it.
CONTENT: dict[str, dict[str, Any]] = {
    "photo": {"photo": PHOTO, "caption": "my broken parcel"},
    "sticker": {"sticker": {
        "file_id": "CAACAgIAAxkBAAIBQ2VhYmNk", "file_unique_id": "AgADQwEAAm", "type": "regular",
        "width": 512, "height": 512, "is_animated": False, "is_video": False, "emoji": "👍"}},
    "voice": {"voice": {"file_id": "AwACAgIAAxkBAAIBS2Vh", "file_unique_id": "AgADcTYAAm",
                        "duration": 4, "mime_type": "audio/ogg", "file_size": 15360}},
    "video": {"video": {"file_id": "BAACAgIAAxkBAAIBT2Vh", "file_unique_id": "AgADdTYAAm",
                        "width": 1280, "height": 720, "duration": 12, "mime_type": "video/mp4",
                        "file_size": 2097152}},
    "video_note": {"video_note": {"file_id": "DQACAgIAAxkBAAIBU2Vh",
                                  "file_unique_id": "AgADeTYAAm", "length": 240, "duration": 6,
                                  "file_size": 409600}},
    "audio": {"audio": {"file_id": "CQACAgIAAxkBAAIBV2Vh", "file_unique_id": "AgADfTYAAm",
                        "duration": 215, "performer": "Band", "title": "Song",
                        "mime_type": "audio/mpeg", "file_size": 3440640}},
    # Telegram sets `document` beside `animation`, for older clients.
    "animation": {"animation": {"file_id": "CgACAgIAAxkBAAIBW2Vh", "file_unique_id": "AgADgTYAAm",
                                "width": 320, "height": 240, "duration": 3},
                  "document": {"file_id": "CgACAgIAAxkBAAIBW2Vh", "file_unique_id": "AgADgTYAAm",
                               "file_name": "funny.mp4", "mime_type": "video/mp4"}},
    "document": {"document": {"file_id": "BQACAgIAAxkBAAIBX2Vh", "file_unique_id": "AgADhTYAAm",
                              "file_name": "invoice.pdf", "mime_type": "application/pdf",
                              "file_size": 88210}},
    "location": {"location": HERE},
    "venue": {"location": HERE, "venue": {"location": HERE, "title": "Alexanderplatz",
                                          "address": "Alexanderplatz, 10178 Berlin"}},
    "contact": {"contact": {"phone_number": "+4930123456", "first_name": "Dana",
                            "user_id": CHAT}},
    "poll": {"poll": {
        "id": "5336983916412076038", "question": "Which size?",
        "options": [{"persistent_id": "a", "text": "S", "voter_count": 0},
                    {"persistent_id": "b", "text": "M", "voter_count": 0}],
        "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
        "allows_multiple_answers": False, "allows_revoting": True, "members_only": False}},
    "dice": {"dice": {"emoji": "🎲", "value": 4}},
}

# Service messages a private chat can carry: something happened, nobody spoke.
SERVICE: dict[str, dict[str, Any]] = {
    "pinned_message": {"pinned_message": {"message_id": 1401, "date": 1763900000,
                                          "chat": PRIVATE, "text": SECRET_TEXT}},
    "new_chat_members": {"new_chat_members": [OTHER]},
    "left_chat_member": {"left_chat_member": OTHER},
    "write_access_allowed": {"write_access_allowed": {"from_request": True}},
    "users_shared": {"users_shared": {"request_id": 1, "users": [{"user_id": 5559876}]}},
    "chat_shared": {"chat_shared": {"request_id": 2, "chat_id": -1001234567890}},
    "successful_payment": {"successful_payment": {
        "currency": "EUR", "total_amount": 1999, "invoice_payload": "order-4711",
        "telegram_payment_charge_id": "tg_charge_1", "provider_payment_charge_id": "pp_1"}},
    "forum_topic_created": {"forum_topic_created": {"name": "Returns", "icon_color": 7322096}},
    "forum_topic_edited": {"forum_topic_edited": {"name": "Refunds"}},
    "forum_topic_closed": {"forum_topic_closed": {}},
    "forum_topic_reopened": {"forum_topic_reopened": {}},
    "general_forum_topic_hidden": {"general_forum_topic_hidden": {}},
    "general_forum_topic_unhidden": {"general_forum_topic_unhidden": {}},
    "new_chat_title": {"new_chat_title": "Dana and Segue"},
    "new_chat_photo": {"new_chat_photo": PHOTO},
    "delete_chat_photo": {"delete_chat_photo": True},
    "group_chat_created": {"group_chat_created": True},
    "message_auto_delete_timer_changed": {
        "message_auto_delete_timer_changed": {"message_auto_delete_time": 86400}},
    "migrate_to_chat_id": {"migrate_to_chat_id": -1001234567890},
    "migrate_from_chat_id": {"migrate_from_chat_id": -1234567890},
    "video_chat_scheduled": {"video_chat_scheduled": {"start_date": 1763990000}},
    "video_chat_started": {"video_chat_started": {}},
    "video_chat_ended": {"video_chat_ended": {"duration": 95}},
    "video_chat_participants_invited": {"video_chat_participants_invited": {"users": [OTHER]}},
    "giveaway_created": {"giveaway_created": {}},
    "giveaway": {"giveaway": {"chats": [NEWS], "winners_selection_date": 1763990000,
                              "winner_count": 3}},
    "giveaway_completed": {"giveaway_completed": {"winner_count": 3}},
    "boost_added": {"boost_added": {"boost_count": 4}},
    "chat_background_set": {"chat_background_set": {"type": {
        "type": "fill", "fill": {"type": "solid", "color": 4294967}, "dark_theme_dimming": 20}}},
    "proximity_alert_triggered": {"proximity_alert_triggered": {
        "traveler": CUSTOMER, "watcher": OTHER, "distance": 40}},
    "connected_website": {"connected_website": "shop.example.com"},
    "passport_data": {"passport_data": {"data": [], "credentials": {
        "data": "ZW5jcnlwdGVk", "hash": "aGFzaA==", "secret": "c2VjcmV0"}}},
    "web_app_data": {"web_app_data": {"data": '{"size": "M"}', "button_text": "Pick a size"}},
}


def said(text: str = SECRET_TEXT) -> dict[str, Any]:
    return {"message_id": 1402, "date": int(time.time()), "from": CUSTOMER, "chat": PRIVATE,
            "text": text}


def channel_post() -> dict[str, Any]:
    return {"message_id": 88, "date": int(time.time()), "chat": NEWS, "sender_chat": NEWS,
            "text": "Summer sale"}


# Update types other than messages and presses, by the field that carries them.
OTHER_KINDS: dict[str, Callable[[], dict[str, Any]]] = {
    "edited_message": lambda: {**said(), "edit_date": int(time.time())},
    "channel_post": channel_post,
    "edited_channel_post": lambda: {**channel_post(), "edit_date": int(time.time())},
    "business_message": lambda: {**said(), "business_connection_id": "BCbAqLm9Av2DAQAA"},
    "my_chat_member": lambda: {
        "chat": PRIVATE, "from": CUSTOMER, "date": int(time.time()),
        "old_chat_member": {"status": "member", "user": BOT_USER},
        "new_chat_member": {"status": "kicked", "user": BOT_USER, "until_date": 0}},
    "message_reaction": lambda: {
        "chat": PRIVATE, "message_id": 1400, "user": CUSTOMER, "date": int(time.time()),
        "old_reaction": [], "new_reaction": [{"type": "emoji", "emoji": "👍"}]},
    "inline_query": lambda: {"id": "4429891312342", "from": CUSTOMER, "query": SECRET_TEXT,
                             "offset": ""},
    "pre_checkout_query": lambda: {"id": "4429891312343", "from": CUSTOMER, "currency": "EUR",
                                   "total_amount": 1999, "invoice_payload": "order-4711"},
    "chat_join_request": lambda: {"chat": NEWS, "from": CUSTOMER, "user_chat_id": CHAT,
                                  "date": int(time.time())},
}


def without(fields: dict[str, Any], *path: str) -> dict[str, Any]:
    """`fields` with the field at `path` left out."""
    trimmed = copy.deepcopy(fields)
    *parents, last = path
    inner = trimmed
    for name in parents:
        inner = inner[name]
    del inner[last]
    return trimmed


# Updates that come with the right secret, but in a shape this aiogram cannot
# read: the field it names, and how the message differs from what it expects.
UNREADABLE: dict[str, tuple[str, Callable[[dict[str, Any]], dict[str, Any]]]] = {
    # A required field missing inside the message.
    "no_chat": ("message.chat", lambda message: without(message, "chat")),
    # A known field in another shape, as a newer Bot API might send it.
    "chat_as_text": ("message.chat", lambda message: {**message, "chat": "Dana"}),
    "sticker_as_text": ("message.sticker",
                        lambda message: {**without(message, "text"), "sticker": "CAACAgIAAx"}),
    # A poll as Bot APIs before 9.6 shape it, without the fields this aiogram requires.
    "older_poll": ("message.poll", lambda message: {
        **without(message, "text"),
        "poll": without(without(CONTENT["poll"]["poll"], "allows_revoting"), "members_only")}),
}


def private_message(update_id: int, fields: dict[str, Any], *,
                    user: dict[str, Any] = CUSTOMER) -> dict[str, Any]:
    """A message update in the private chat with `user`, carrying `fields`."""
    chat = PRIVATE if user is CUSTOMER else {"id": user["id"], "first_name": user["first_name"],
                                             "type": "private"}
    message = {"message_id": update_id % 100000, "date": int(time.time()), "from": user,
               "chat": chat, **fields}
    return {"update_id": update_id, "message": message}


def content_type(update: dict[str, Any]) -> str:
    """What aiogram makes of a message update: the payloads are real shapes."""
    message = Update.model_validate(update).message
    assert message is not None
    return str(message.content_type.value)


def counted(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def texts(telegram_api: FakeTelegram) -> list[str]:
    """What the bot said that Telegram took (a refused call has no result)."""
    return [call.params["text"] for call in telegram_api.sent() if call.result is not None]


@pytest.fixture
def policy() -> RecordingEchoPolicy:
    return RecordingEchoPolicy()


@pytest.fixture
async def segue(
    telegram_api: FakeTelegram, redis_store: RedisContextStore, policy: RecordingEchoPolicy
) -> AsyncIterator[Segue]:
    async with segue_on_fake(telegram_api, redis_store, policy=policy,
                             max_text_length=40) as running:
        yield running


async def parked(segue: Segue) -> list[dict[str, Any]]:
    return [json.loads(record) for record in await segue.store.parked(10)]


# What a person sends that is not text.

@pytest.mark.parametrize("kind", sorted(CONTENT))
async def test_content_that_is_not_text_is_answered_once_however_often_it_comes(
    telegram_api: FakeTelegram, segue: Segue, policy: RecordingEchoPolicy,
    redis_client: aioredis.Redis, kind: str,
) -> None:
    update = private_message(telegram_api.new_update_id(), CONTENT[kind])
    assert content_type(update) == kind
    assert [await telegram_api.post_update(update) for _ in range(3)] == [200, 200, 200]
    [reply] = telegram_api.sent()
    assert (reply.params["chat_id"], reply.params["text"]) == (str(CHAT), UNSUPPORTED_REPLY)
    assert policy.seen == []
    # Only the mark that it was answered: no customer, no history.
    marker = f"segue:token:answered:telegram:{CHAT}:{update['update_id']}"
    assert await redis_keys(redis_client, "*") == [marker]


async def test_deliveries_of_one_update_arriving_together_are_answered_once(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    update = private_message(telegram_api.new_update_id(), CONTENT["voice"])
    statuses = await asyncio.gather(*(telegram_api.post_update(update) for _ in range(5)))
    assert statuses == [200] * 5
    assert texts(telegram_api) == [UNSUPPORTED_REPLY]


async def test_each_update_of_the_same_kind_gets_its_own_answer(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    first = private_message(telegram_api.new_update_id(), CONTENT["sticker"])
    second = private_message(telegram_api.new_update_id(), CONTENT["sticker"])
    for update in (first, second, first, second):
        assert await telegram_api.post_update(update) == 200
    assert texts(telegram_api) == [UNSUPPORTED_REPLY, UNSUPPORTED_REPLY]


async def test_an_over_long_text_is_answered_once_however_often_it_comes(
    telegram_api: FakeTelegram, segue: Segue, policy: RecordingEchoPolicy
) -> None:
    update = telegram_api.message("x" * 41)
    assert [await telegram_api.post_update(update) for _ in range(3)] == [200, 200, 200]
    assert texts(telegram_api) == [too_long_reply(41, 40)]
    assert policy.seen == []
    assert await history_of(segue) == []


async def test_an_answer_that_could_not_be_sent_is_sent_on_the_next_delivery(
    telegram_api: FakeTelegram, segue: Segue
) -> None:
    telegram_api.fail("sendMessage", status=500, description="Internal Server Error")
    update = private_message(telegram_api.new_update_id(), CONTENT["photo"])
    assert await telegram_api.post_update(update) == 200
    [refused] = telegram_api.sent()
    assert refused.result is None
    assert await telegram_api.post_update(update) == 200
    assert await telegram_api.post_update(update) == 200
    assert len(telegram_api.sent()) == 2
    assert texts(telegram_api) == [UNSUPPORTED_REPLY]


# Service messages, bots, and other update types: no word to anyone.

@pytest.mark.parametrize("kind", sorted(SERVICE))
async def test_a_service_message_gets_no_answer_and_stores_nothing(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture, kind: str,
) -> None:
    caplog.set_level(logging.INFO)
    update = private_message(telegram_api.new_update_id(), SERVICE[kind])
    assert content_type(update) == kind
    before = counted("segue_ignored_total", channel="telegram", reason="service_message")
    assert [await telegram_api.post_update(update) for _ in range(2)] == [200, 200]
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []
    assert counted("segue_ignored_total", channel="telegram",
                   reason="service_message") == before + 2
    assert SECRET_TEXT not in caplog.text


async def test_messages_and_presses_from_bots_get_no_answer_and_store_nothing(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis,
    policy: RecordingEchoPolicy,
) -> None:
    menu = ApiCall("sendMessage", {}, time.monotonic(), {
        "message_id": 1399, "date": int(time.time()), "chat": PRIVATE, "text": "Which one?",
        "from": {k: BOT_USER[k] for k in ("id", "is_bot", "first_name", "username")}})
    updates = [
        telegram_api.message("hi", user=RELAY_BOT),
        telegram_api.message("x" * 41, user=RELAY_BOT),
        private_message(telegram_api.new_update_id(), CONTENT["sticker"], user=RELAY_BOT),
        private_message(telegram_api.new_update_id(), SERVICE["pinned_message"], user=RELAY_BOT),
        callback_update(telegram_api.new_update_id(), menu, "order_status", user=RELAY_BOT),
    ]
    before = counted("segue_ignored_total", channel="telegram", reason="from_bot")
    for update in updates:
        assert [await telegram_api.post_update(update) for _ in range(2)] == [200, 200]
    assert telegram_api.sent() == []
    assert telegram_api.sent("answerCallbackQuery") == []
    assert policy.seen == []
    assert await redis_keys(redis_client, "*") == []
    assert counted("segue_ignored_total", channel="telegram",
                   reason="from_bot") == before + 2 * len(updates)


async def test_a_message_without_a_sender_gets_no_answer(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    update = private_message(telegram_api.new_update_id(), CONTENT["sticker"])
    del update["message"]["from"]
    before = counted("segue_ignored_total", channel="telegram", reason="no_sender")
    assert await telegram_api.post_update(update) == 200
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []
    assert counted("segue_ignored_total", channel="telegram", reason="no_sender") == before + 1


@pytest.mark.parametrize("kind", sorted(OTHER_KINDS))
async def test_other_update_types_are_accepted_and_left_alone(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis,
    policy: RecordingEchoPolicy, kind: str,
) -> None:
    update = {"update_id": telegram_api.new_update_id(), kind: OTHER_KINDS[kind]()}
    assert Update.model_validate(update).event_type == kind
    reason = f"{kind}_not_handled"
    before = counted("segue_ignored_total", channel="telegram", reason=reason)
    assert [await telegram_api.post_update(update) for _ in range(2)] == [200, 200]
    calls = {call.method for call in telegram_api.calls}
    assert calls == {"getMe", "setWebhook"}
    assert policy.seen == []
    assert await redis_keys(redis_client, "*") == []
    assert counted("segue_ignored_total", channel="telegram", reason=reason) == before + 2


async def test_content_in_a_group_gets_no_answer(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    update = private_message(telegram_api.new_update_id(), CONTENT["photo"])
    update["message"]["chat"] = {"id": -1001234567890, "title": "Support group",
                                 "type": "supergroup"}
    reason = "message_not_handled"
    before = counted("segue_ignored_total", channel="telegram", reason=reason)
    assert [await telegram_api.post_update(update) for _ in range(2)] == [200, 200]
    assert telegram_api.sent() == []
    assert await redis_keys(redis_client, "*") == []
    assert counted("segue_ignored_total", channel="telegram", reason=reason) == before + 2


# Updates with the secret that cannot be read.

@pytest.mark.parametrize("case", sorted(UNREADABLE))
async def test_an_unreadable_update_with_the_secret_is_accepted_and_parked_once(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis,
    policy: RecordingEchoPolicy, caplog: pytest.LogCaptureFixture, case: str,
) -> None:
    caplog.set_level(logging.INFO)
    field, reshape = UNREADABLE[case]
    update = {"update_id": telegram_api.new_update_id(), "message": reshape(said())}
    with pytest.raises(ValueError, match="validation error"):
        Update.model_validate(update)
    before = counted("segue_parked_total", channel="telegram", reason="unreadable")
    assert [await telegram_api.post_update(update) for _ in range(2)] == [200, 200]
    assert telegram_api.sent() == []
    assert policy.seen == []
    [record] = await parked(segue)
    assert record["kind"] == "unreadable_update"
    assert record["update_id"] == update["update_id"]
    assert record["update"] == update  # as Telegram sent it
    assert record["error"].startswith(field)
    assert counted("segue_parked_total", channel="telegram",
                   reason="unreadable") == before + 1
    # Kept for an operator; nothing of a customer or a conversation.
    assert not await redis_keys(redis_client, "segue:{*")
    assert SECRET_TEXT not in caplog.text
    assert f"Telegram update {update['update_id']} could not be read" in caplog.text


async def test_why_an_update_could_not_be_read_names_fields_never_what_they_held(
    telegram_api: FakeTelegram, segue: Segue, caplog: pytest.LogCaptureFixture
) -> None:
    # pydantic's own wording quotes a tag it does not know; the reason must not.
    caplog.set_level(logging.DEBUG, logger="connectors")
    message = {**said("hi"), "forward_origin": {"type": SECRET_TEXT, "date": 1763900000}}
    update = {"update_id": telegram_api.new_update_id(), "message": message}
    assert await telegram_api.post_update(update) == 200
    [record] = await parked(segue)
    assert record["error"] == "message.forward_origin: union_tag_invalid"
    assert SECRET_TEXT not in caplog.text


# The two refusals below are kept as they were: guards, not changes.

async def test_an_unreadable_update_without_the_secret_is_refused(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis
) -> None:
    update = {"update_id": telegram_api.new_update_id(), "message": without(said(), "chat")}
    for secret in ["", "wrong-secret"]:
        assert await telegram_api.post_update(update, secret=secret) == 401
    assert await redis_keys(redis_client, "*") == []


@pytest.mark.parametrize("body", [
    b'{"message": {"message_id": 1, "text": "hi"}}',  # no update_id
    b'{"update_id": true, "message": {}}',
    b'{"update_id": 1.5}',
    b'"an update"',
])
async def test_a_body_that_is_not_an_update_is_still_refused(
    telegram_api: FakeTelegram, segue: Segue, redis_client: aioredis.Redis, body: bytes
) -> None:
    assert await telegram_api.post_update({}, body=body) == 400
    assert await redis_keys(redis_client, "*") == []


# Long polling: the same, batch by batch.

def every_kind(telegram_api: FakeTelegram) -> list[dict[str, Any]]:
    """One update of each way an update is handled, ending in a text."""
    _, older_poll = UNREADABLE["older_poll"]
    return [
        private_message(telegram_api.new_update_id(), CONTENT["sticker"]),
        private_message(telegram_api.new_update_id(), SERVICE["successful_payment"]),
        {"update_id": telegram_api.new_update_id(), "message": older_poll(said())},
        telegram_api.message("hi", user=RELAY_BOT),
        {"update_id": telegram_api.new_update_id(), "edited_message": OTHER_KINDS[
            "edited_message"]()},
        telegram_api.message("x" * 41),
        telegram_api.message("where is my order"),
    ]


def offset_is(value: int) -> Callable[[ApiCall], bool]:
    return lambda call: call.params.get("offset") == str(value)


async def test_polling_handles_a_batch_of_every_kind_once_and_confirms_it(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy
) -> None:
    store = RedisContextStore.from_url(redis_url)
    async with segue_on_fake(telegram_api, store, mode="polling", policy=policy,
                             max_text_length=40) as segue:
        await telegram_api.wait_for("getUpdates")
        batch = every_kind(telegram_api)
        await telegram_api.queue_updates(batch)
        await telegram_api.wait_for("getUpdates", where=offset_is(batch[-1]["update_id"] + 1))
        records = await parked(segue)
        history = await history_of(segue)
    assert texts(telegram_api) == [UNSUPPORTED_REPLY, too_long_reply(41, 40),
                                   "Echo: where is my order"]
    assert [r["update_id"] for r in records] == [batch[2]["update_id"]]
    assert policy.seen == ["where is my order"]
    assert [e.text for e in history] == ["where is my order", "Echo: where is my order"]


async def test_polling_after_a_restart_answers_nothing_twice(
    telegram_api: FakeTelegram, redis_url: str, policy: RecordingEchoPolicy
) -> None:
    # The first worker handles a batch, but Telegram never hears it: the
    # getUpdates that would confirm it fails, and the worker stops while it
    # waits to try again. The next worker is given the same batch.
    async with segue_on_fake(telegram_api, RedisContextStore.from_url(redis_url),
                             mode="polling", policy=policy, max_text_length=40,
                             retry_delay_seconds=30.0):
        await telegram_api.wait_for("getUpdates")
        telegram_api.fail("getUpdates", status=502, description="Bad Gateway")
        batch = every_kind(telegram_api)
        confirmed = offset_is(batch[-1]["update_id"] + 1)
        await telegram_api.queue_updates(batch)
        await telegram_api.wait_for("getUpdates", where=confirmed)
    answered = texts(telegram_api)
    assert len(answered) == 3
    async with segue_on_fake(telegram_api, RedisContextStore.from_url(redis_url),
                             mode="polling", policy=policy, max_text_length=40) as segue:
        await telegram_api.wait_for("getUpdates", 2, where=confirmed)
        records = await parked(segue)
    assert texts(telegram_api) == answered
    assert len(records) == 1
    assert policy.seen == ["where is my order"]
