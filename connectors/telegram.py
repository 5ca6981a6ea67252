"""Telegram: a Bot API channel on aiogram 3, by webhook or by long polling.

Both transports feed one `accept(update)` core that answers "accepted" only
once the turn is durably saved: the webhook then returns 200 and polling
confirms the update with the next `getUpdates` offset. An unreachable store
asks for a redelivery (503, or the same offset again); an update that keeps
failing is parked for an operator after a bounded number of attempts.
The router's handlers, which make turns of updates, are in
`connectors.telegram_updates`.
"""

from __future__ import annotations

import asyncio
import enum
import hmac
import json
import logging
import re
import time
from contextlib import suppress
from dataclasses import dataclass
from typing import Literal, Protocol

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import AiogramError
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from aiogram.utils.token import TokenValidationError
from aiohttp import web

from bot.core.engine import APOLOGY, Engine
from bot.core.errors import ConfigError, ConnectorError, StoreUnavailable
from bot.core.model import Address, Outbound
from bot.core.ports import CounterStore, ParkingStore
from bot.core.settings import Settings
from connectors.http_errors import refuse
from connectors.telegram_render import (
    TOKEN_FILTER,
    TelegramSender,
    TextPart,
    chat_id_of,
    describe,
)
from connectors.telegram_updates import CHANNEL, UpdateHandlers, chat_of

# Importable from here as before.
from connectors.telegram_updates import command_as_typed as _command_as_typed  # noqa: F401
from connectors.texts import UNSUPPORTED_REPLY as UNSUPPORTED_REPLY

log = logging.getLogger(__name__)
log.addFilter(TOKEN_FILTER)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
# The characters Telegram accepts in a webhook secret token.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True, slots=True)
class TelegramOptions:
    """How the connector receives updates and how hard it retries."""

    mode: Literal["webhook", "polling"] = "polling"
    webhook_secret: str | None = None
    webhook_url: str | None = None
    max_text_length: int = 4096
    # An update failing this many times is acknowledged and parked.
    max_attempts: int = 3
    attempts_ttl_seconds: int = 86400
    typing_after_seconds: float = 0.5
    # Telegram shows "typing" for 5 s; renew it a little sooner.
    typing_every_seconds: float = 4.0
    poll_timeout_seconds: int = 25
    retry_delay_seconds: float = 1.0
    retry_delay_max_seconds: float = 30.0


class Outcome(enum.Enum):
    """What became of one update."""

    ACCEPTED = "accepted"  # processed, or parked after too many attempts
    UNAVAILABLE = "unavailable"  # the store is unreachable: deliver again
    FAILED = "failed"  # processing failed: deliver again, up to the limit


class TelegramStore(CounterStore, ParkingStore, Protocol):
    """The slices of the store Telegram uses outside a turn: counting an
    update's failed attempts, and parking it after the last."""


class TelegramConnector:
    """The Telegram channel. Holds an aiogram `Bot` (the Bot API client) and
    a `Dispatcher` whose router turns updates into engine turns."""

    channel = CHANNEL

    def __init__(
        self, *, bot: Bot, engine: Engine, store: TelegramStore, options: TelegramOptions
    ) -> None:
        self.bot = bot
        self.engine = engine
        self.store = store
        self.options = options
        self.sender = TelegramSender(bot)
        self.handlers = UpdateHandlers(
            bot=bot, engine=engine, sender=self.sender, options=lambda: self.options
        )
        self.dispatcher = Dispatcher(disable_fsm=True, name="segue-telegram")
        self.dispatcher.include_router(self.handlers.router())
        self._polling: asyncio.Task[None] | None = None

    # Lifecycle.

    def mount(self, app: web.Application) -> None:
        if self.options.mode == "webhook":
            app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def start(self) -> None:
        me = await self.sender.call(self.bot.get_me)
        log.info("Telegram bot @%s ready (%s mode)", me.username, self.options.mode)
        if self.options.mode == "polling":
            # getUpdates is refused while a webhook is set.
            await self.sender.call(lambda: self.bot.delete_webhook(drop_pending_updates=False))
            self._polling = asyncio.create_task(self._poll(), name="telegram-polling")
        elif self.options.webhook_url:
            await self.sender.call(
                lambda: self.bot.set_webhook(
                    url=self.options.webhook_url or "",
                    secret_token=self.options.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                )
            )
            log.info("Telegram webhook set")

    async def stop(self) -> None:
        if self._polling is not None:
            self._polling.cancel()
            with suppress(asyncio.CancelledError):
                await self._polling
            self._polling = None
        await self.bot.session.close()

    # Outbound half.

    async def send(self, address: Address, outbound: Outbound) -> None:
        await self.sender.send(chat_id_of(address.target), outbound)

    # Transports.

    async def webhook(self, request: web.Request) -> web.Response:
        # Not aiogram's SimpleRequestHandler: it answers 200 while a slow turn
        # is still running and 500 for any error, where Telegram must get 2xx
        # only once the turn is saved, and 503 when the store is away.
        secret = self.options.webhook_secret or ""
        given = request.headers.get(SECRET_HEADER, "")
        if not secret or not hmac.compare_digest(given.encode(), secret.encode()):
            return refuse(CHANNEL, "bad_secret", "missing or wrong secret token", status=401)
        try:
            data = await request.json()
            update = Update.model_validate(data, context={"bot": self.bot})
        except (ValueError, RecursionError):
            # ValueError covers pydantic's ValidationError; RecursionError is
            # nesting deeper than the JSON parser goes, which is bad JSON too.
            return refuse(CHANNEL, "bad_update", "the body is not a Telegram update", status=400)
        outcome = await self.accept(update)
        status = {Outcome.ACCEPTED: 200, Outcome.UNAVAILABLE: 503, Outcome.FAILED: 500}[outcome]
        return web.json_response({"status": outcome.value}, status=status)

    async def _poll(self) -> None:
        offset: int | None = None
        failures = 0
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=self.options.poll_timeout_seconds,
                    allowed_updates=ALLOWED_UPDATES,
                    request_timeout=self.options.poll_timeout_seconds + 10,
                )
            except AiogramError as exc:
                log.warning("getUpdates failed: %s", describe(exc, self.bot.token))
                failures += 1
            else:
                offset, accepted_all = await self._accept_in_order(updates, offset)
                failures = 0 if accepted_all else failures + 1
            if failures:
                delay = self.options.retry_delay_seconds * 2 ** min(failures - 1, 10)
                await asyncio.sleep(min(delay, self.options.retry_delay_max_seconds))

    async def _accept_in_order(
        self, updates: list[Update], offset: int | None
    ) -> tuple[int | None, bool]:
        """The next offset, and whether every update was accepted. An update
        is confirmed (by the next getUpdates offset) only once it is accepted;
        the first one that is not is fetched again, and those after it too."""
        for update in updates:
            if await self.accept(update) is not Outcome.ACCEPTED:
                return offset, False
            offset = update.update_id + 1
        return offset, True

    async def accept(self, update: Update) -> Outcome:
        """Process one update; `ACCEPTED` means it must not be delivered again."""
        try:
            _ = update.event_type  # raises for a kind aiogram does not know
        except UpdateTypeLookupError:
            # A kind newer than this aiogram: nothing here could answer it, and
            # aiogram's own warning would print the whole update, customer
            # text included.
            log.info("Telegram update %s is of a kind not handled here: ignored",
                     update.update_id)
            return Outcome.ACCEPTED
        try:
            await self.dispatcher.feed_update(self.bot, update)
        except StoreUnavailable:
            log.warning("store unavailable; Telegram update %s is to come again", update.update_id)
            return Outcome.UNAVAILABLE
        except Exception as exc:
            return await self._failed(update, exc)
        return Outcome.ACCEPTED

    async def _failed(self, update: Update, exc: Exception) -> Outcome:
        if isinstance(exc, ConnectorError | AiogramError):
            # Telegram's side failed: the short account says it all.
            reason = describe(exc, self.bot.token)
            log.error("Telegram update %s failed: %s", update.update_id, reason)
        else:
            log.error(
                "Telegram update %s failed: %s",
                update.update_id,
                type(exc).__name__,
                exc_info=exc,
            )
        try:
            attempts = await self.store.incr(
                f"telegram:attempts:{update.update_id}", self.options.attempts_ttl_seconds
            )
            if attempts < self.options.max_attempts:
                return Outcome.FAILED
            error = describe(exc, self.bot.token)
            await self.store.park(_parked_record(update, error, attempts))
        except StoreUnavailable:
            return Outcome.UNAVAILABLE
        log.error("Telegram update %s parked after %s attempts", update.update_id, attempts)
        await self._apologise(update)
        return Outcome.ACCEPTED

    async def _apologise(self, update: Update) -> None:
        chat_id = chat_of(update)
        if update.callback_query is not None:
            await self.handlers.answer(update.callback_query)
        if chat_id is None:
            return
        try:
            await self.sender.send_part(chat_id, TextPart(APOLOGY.text))
        except ConnectorError as exc:
            log.warning("could not send the apology: %s", exc)


def _parked_record(update: Update, error: str, attempts: int) -> str:
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


def build_telegram_connector(
    *, settings: Settings, engine: Engine, store: TelegramStore
) -> TelegramConnector:
    """The connector configured by `SEGUE_TELEGRAM_*`."""
    if settings.telegram_token is None:
        raise ConfigError("SEGUE_TELEGRAM_TOKEN is not set")
    secret = settings.telegram_webhook_secret
    secret_value = secret.get_secret_value() if secret is not None else None
    if secret_value is not None and not SECRET_PATTERN.fullmatch(secret_value):
        raise ConfigError(
            "SEGUE_TELEGRAM_WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
        )
    session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_url))
    try:
        bot = Bot(settings.telegram_token.get_secret_value(), session=session)
    except TokenValidationError as exc:
        raise ConfigError("SEGUE_TELEGRAM_TOKEN is not a valid bot token") from exc
    options = TelegramOptions(
        mode=settings.telegram_mode,
        webhook_secret=secret_value,
        webhook_url=settings.telegram_webhook_url,
        max_text_length=settings.max_text_length,
    )
    return TelegramConnector(bot=bot, engine=engine, store=store, options=options)
