"""The inbound half of the Telegram connector: which updates become turns.

The aiogram router sends a private text message or a button press to the
engine as one turn. What a person sends that is not text (stickers, voice,
files, photos, places, polls) and an over-long text get a fixed answer, once
however often the update comes, and are never stored. Service messages (a
pin, a payment, a forum topic), anything from a bot, and anything outside a
private chat get no answer. Whether an update is accepted, retried or parked
is decided by the connector around the router (`connectors.telegram`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any, Protocol

from aiogram import Bot, F, Router
from aiogram.enums import ContentType
from aiogram.exceptions import AiogramError
from aiogram.methods.base import TelegramMethod
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, Update, User
from pydantic import ValidationError

from bot.core import metrics
from bot.core.direct_answers import DirectAnswers
from bot.core.engine import Engine, Turn
from bot.core.model import Address, ChannelIdentity, Inbound
from bot.core.profile import Profile, profile_of
from connectors.telegram_render import TOKEN_FILTER, describe
from connectors.texts import UNSUPPORTED_REPLY, too_long_reply

log = logging.getLogger(__name__)
log.addFilter(TOKEN_FILTER)

CHANNEL = "telegram"

# What a person sends that is not text: answered "text only". Every other
# private message without text is a service message (a pin, a payment, a
# forum topic, a timer change) or of a kind this aiogram does not know; "I
# can read text only" would answer nothing anyone said, so they get no word.
UNREADABLE_CONTENT = frozenset({
    ContentType.ANIMATION, ContentType.AUDIO, ContentType.DOCUMENT, ContentType.LIVE_PHOTO,
    ContentType.PAID_MEDIA, ContentType.PHOTO, ContentType.STICKER, ContentType.STORY,
    ContentType.VIDEO, ContentType.VIDEO_NOTE, ContentType.VOICE, ContentType.CHECKLIST,
    ContentType.CONTACT, ContentType.DICE, ContentType.GAME, ContentType.POLL,
    ContentType.VENUE, ContentType.LOCATION, ContentType.INVOICE, ContentType.RICH_MESSAGE,
})


class HandlerOptions(Protocol):
    """The connector's options the handlers read (`TelegramOptions`)."""

    @property
    def max_text_length(self) -> int: ...

    @property
    def typing_after_seconds(self) -> float: ...

    @property
    def typing_every_seconds(self) -> float: ...


class UpdateHandlers:
    """The router's handlers. `options` is asked for at every update, so a
    change of the connector's options applies to the next one."""

    def __init__(
        self,
        *,
        bot: Bot,
        engine: Engine,
        answers: DirectAnswers,
        options: Callable[[], HandlerOptions],
    ) -> None:
        self.bot = bot
        self.engine = engine
        self.answers = answers
        self._options = options

    def router(self) -> Router:
        router = Router(name="segue-telegram-inbound")
        router.message.register(self._on_message, F.chat.type == "private")
        router.callback_query.register(self._on_button)
        return router

    async def _on_message(self, message: Message, event_update: Update) -> None:
        user = message.from_user
        if user is None:
            ignored("no_sender")
        elif user.is_bot:
            # Only people are answered: two bots answering each other never stop.
            ignored("from_bot")
        elif message.text:
            await self._on_text(message, message.text, user, event_update)
        elif message.content_type in UNREADABLE_CONTENT:
            metrics.BAD_INPUT.labels(CHANNEL, "unsupported_content").inc()
            await self._answer_once(message, user, event_update, UNSUPPORTED_REPLY)
        elif message.content_type == ContentType.UNKNOWN:
            ignored("unknown_content")
        else:
            ignored("service_message")

    async def _on_text(
        self, message: Message, typed: str, user: User, event_update: Update
    ) -> None:
        text = command_as_typed(typed)
        limit = self._options().max_text_length
        if len(text) > limit:
            metrics.BAD_INPUT.labels(CHANNEL, "text_too_long").inc()
            await self._answer_once(message, user, event_update, too_long_reply(len(text), limit))
            return
        inbound = Inbound(
            identity=ChannelIdentity(CHANNEL, str(user.id)),
            address=Address(CHANNEL, str(message.chat.id)),
            message_id=str(event_update.update_id),
            text=text,
            display_name=user.full_name,
            locale=user.language_code or None,
            profile=profile_of_user(user),
        )
        turn = await self._process(inbound, message.chat.id)
        await self.engine.deliver(turn)

    async def _answer_once(
        self, message: Message, user: User, event_update: Update, text: str
    ) -> None:
        # Never stored, so the engine's dedup does not see it: the answer is
        # marked instead, and a redelivered update finds it answered.
        await self.answers.answer_once(
            ChannelIdentity(CHANNEL, str(user.id)),
            str(event_update.update_id),
            Address(CHANNEL, str(message.chat.id)),
            text,
        )

    async def _on_button(self, query: CallbackQuery, event_update: Update) -> None:
        if query.from_user.is_bot:
            ignored("from_bot")
            return
        message = query.message
        if message is None or message.chat.type != "private" or not query.data:
            await self.answer(query)
            return
        inbound = Inbound(
            identity=ChannelIdentity(CHANNEL, str(query.from_user.id)),
            address=Address(CHANNEL, str(message.chat.id)),
            message_id=str(event_update.update_id),
            text=button_title(message, query.data),
            payload=query.data,
            display_name=query.from_user.full_name,
            locale=query.from_user.language_code or None,
            profile=profile_of_user(query.from_user),
        )
        turn = await self._process(inbound, message.chat.id)
        # Once saved, so a press that is delivered again is not lost; this
        # stops the spinner on the customer's button.
        await self.answer(query)
        await self.engine.deliver(turn)

    async def _process(self, inbound: Inbound, chat_id: int) -> Turn:
        typing = asyncio.create_task(self._keep_typing(chat_id))
        try:
            return await self.engine.process(inbound)
        finally:
            typing.cancel()
            with suppress(asyncio.CancelledError):
                await typing

    async def _keep_typing(self, chat_id: int) -> None:
        # Only a turn slow enough for a person to notice shows "typing".
        await asyncio.sleep(self._options().typing_after_seconds)
        while True:
            try:
                await self.bot.send_chat_action(chat_id=chat_id, action="typing")
            except AiogramError as exc:
                log.debug("typing action failed: %s", describe(exc, self.bot.token))
                return
            await asyncio.sleep(self._options().typing_every_seconds)

    async def answer(self, query: CallbackQuery) -> None:
        """Stop the spinner on a pressed button."""
        try:
            await self.bot.answer_callback_query(callback_query_id=query.id)
        except AiogramError as exc:
            # Already answered on an earlier delivery, or too old: harmless.
            log.debug("answerCallbackQuery failed: %s", describe(exc, self.bot.token))


def ignored(reason: str) -> None:
    """An update left unanswered on purpose, counted by why."""
    metrics.IGNORED.labels(CHANNEL, reason).inc()


def profile_of_user(user: User) -> Profile | None:
    """What Telegram says about a person: the names they gave (a first name
    always, a last name and a username if they set them) and their app's
    language."""
    return profile_of(name=user.full_name, first_name=user.first_name,
                      last_name=user.last_name, username=user.username,
                      language=user.language_code)


def command_as_typed(text: str) -> str:
    """`/link@segue_bot 123` as `/link 123`: the bot's name adds nothing."""
    if text.startswith("/"):
        command, sep, rest = text.partition(" ")
        return command.split("@", 1)[0] + sep + rest
    return text


def button_title(message: Message | InaccessibleMessage, data: str) -> str:
    """The title of the pressed button, read from the message's keyboard."""
    markup = message.reply_markup if isinstance(message, Message) else None
    if markup is not None:
        for row in markup.inline_keyboard:
            for button in row:
                if button.callback_data == data:
                    return button.text
    return data


def origin_of(update: Update) -> tuple[ChannelIdentity, Address] | None:
    """Who sent an update and the chat to answer in, if it names a person
    in a private chat: only those are ever answered."""
    if update.message is not None:
        user, chat = update.message.from_user, update.message.chat
    elif update.callback_query is not None and update.callback_query.message is not None:
        user, chat = update.callback_query.from_user, update.callback_query.message.chat
    else:
        return None
    if user is None or user.is_bot or chat.type != "private":
        return None
    return ChannelIdentity(CHANNEL, str(user.id)), Address(CHANNEL, str(chat.id))


# Updates as Telegram sends them, before aiogram reads them.

# How much of why an update could not be read is kept: the first few fields.
REASON_ERRORS = 3
REASON_PART_MAX = 200


class RawUpdates(TelegramMethod[list[Any]]):
    """`getUpdates` with its updates left as JSON: aiogram's own method reads
    the whole batch at once, so one update it cannot read would fail every
    poll and hold back the others for good."""

    __returning__ = list[Any]
    __api_method__ = "getUpdates"

    offset: int | None = None
    timeout: int | None = None
    allowed_updates: list[str] | None = None


def failed_record(update: Update, error: str, attempts: int) -> str:
    return json.dumps(
        {
            "channel": CHANNEL,
            "kind": "update",
            "update_id": update.update_id,
            "attempts": attempts,
            "error": error,
            "update": update.model_dump(mode="json", exclude_none=True, by_alias=True),
            "ts": time.time(),
        }
    )


def turn_id_of(update_id: int | None) -> str | None:
    """The turn id of an update's lines: its update id, which is also the
    id of its message to the engine (None: a random one)."""
    return None if update_id is None else str(update_id)


def update_id_of(data: object) -> int | None:
    """The `update_id` of what may be an update as Telegram sends it."""
    if not isinstance(data, dict):
        return None
    update_id = data.get("update_id")
    if isinstance(update_id, bool) or not isinstance(update_id, int):
        return None
    return update_id


def unreadable_reason(exc: Exception) -> str:
    """Why an update could not be read: the paths of the first fields that
    failed and the kind of each error, never the values given (pydantic's
    wording quotes some of them)."""
    if not isinstance(exc, ValidationError):
        return type(exc).__name__
    parts = [
        f"{'.'.join(str(p) for p in error['loc'])}: {error['type']}"[:REASON_PART_MAX]
        for error in exc.errors(include_input=False, include_url=False)[:REASON_ERRORS]
    ]
    more = exc.error_count() - len(parts)
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)


def unreadable_record(data: dict[str, Any], reason: str) -> str:
    record = {
        "channel": CHANNEL,
        "kind": "unreadable_update",
        "update_id": update_id_of(data),
        "error": reason,
        "update": data,
        "ts": time.time(),
    }
    try:
        return json.dumps(record)
    except (ValueError, RecursionError):
        # Nested deeper than the encoder goes: the operator gets the id and why.
        record["update"] = None
        return json.dumps(record)
