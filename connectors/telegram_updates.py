"""The inbound half of the Telegram connector: which updates become turns.

The aiogram router sends a private text message or a button press to the
engine as one turn; other private messages (stickers, voice, files, photos)
and an over-long text get a direct answer and are never stored; anything else
is ignored. Whether an update is accepted, retried or parked is decided by
the connector around the router (`connectors.telegram`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import suppress
from typing import Protocol

from aiogram import Bot, F, Router
from aiogram.exceptions import AiogramError
from aiogram.types import CallbackQuery, InaccessibleMessage, Message, Update

from bot.core import metrics
from bot.core.engine import Engine, Turn
from bot.core.errors import ConnectorError
from bot.core.model import Address, ChannelIdentity, Inbound
from connectors.telegram_render import TOKEN_FILTER, TelegramSender, TextPart, describe
from connectors.texts import UNSUPPORTED_REPLY, too_long_reply

log = logging.getLogger(__name__)
log.addFilter(TOKEN_FILTER)

CHANNEL = "telegram"


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
        sender: TelegramSender,
        options: Callable[[], HandlerOptions],
    ) -> None:
        self.bot = bot
        self.engine = engine
        self.sender = sender
        self._options = options

    def router(self) -> Router:
        router = Router(name="segue-telegram-inbound")
        private = F.chat.type == "private"
        router.message.register(self._on_text, private, F.text)
        router.message.register(self._on_unsupported, private)
        router.callback_query.register(self._on_button)
        return router

    async def _on_text(self, message: Message, event_update: Update) -> None:
        user = message.from_user
        if user is None or user.is_bot or message.text is None:
            return
        text = command_as_typed(message.text)
        limit = self._options().max_text_length
        if len(text) > limit:
            metrics.BAD_INPUT.labels(CHANNEL, "text_too_long").inc()
            await self.reply_directly(message.chat.id, too_long_reply(len(text), limit))
            return
        inbound = Inbound(
            identity=ChannelIdentity(CHANNEL, str(user.id)),
            address=Address(CHANNEL, str(message.chat.id)),
            message_id=str(event_update.update_id),
            text=text,
            display_name=user.full_name,
        )
        turn = await self._process(inbound, message.chat.id)
        await self.engine.deliver(turn)

    async def _on_unsupported(self, message: Message) -> None:
        # Stickers, voice, files, photos: answered, never stored.
        metrics.BAD_INPUT.labels(CHANNEL, "unsupported_content").inc()
        await self.reply_directly(message.chat.id, UNSUPPORTED_REPLY)

    async def _on_button(self, query: CallbackQuery, event_update: Update) -> None:
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

    async def reply_directly(self, chat_id: int, text: str) -> None:
        """A word to the customer outside any turn; nothing of it is stored."""
        try:
            await self.sender.send_part(chat_id, TextPart(text))
        except ConnectorError as exc:
            log.warning("could not reply on Telegram: %s", exc)


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


def chat_of(update: Update) -> int | None:
    """The chat an update came from, if it names one."""
    if update.message is not None:
        return update.message.chat.id
    if update.callback_query is not None and update.callback_query.message is not None:
        return update.callback_query.message.chat.id
    return None
