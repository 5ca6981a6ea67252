"""Telegram: a Bot API channel on aiogram 3, by webhook or by long polling.

Both transports feed one `accept(update)` core that answers "accepted" only
once the turn is durably saved: the webhook then returns 200 and polling
confirms the update with the next `getUpdates` offset. An unreachable store
asks for a redelivery (503, or the same offset again); an update that keeps
failing is parked for an operator after a bounded number of attempts, and
one that comes with the right secret but cannot be read (a field of a newer
Bot API in a shape this aiogram does not know) is parked at once: Telegram
would deliver it again for a day, to be refused each time. The router's
handlers, which make turns of updates, are in `connectors.telegram_updates`.
"""

from __future__ import annotations

import enum
import hmac
import logging
import re
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.exceptions import AiogramError
from aiogram.types import Update
from aiogram.types.update import UpdateTypeLookupError
from aiogram.utils.token import TokenValidationError
from aiohttp import web
from pydantic import ValidationError

from bot.core import metrics, turn_log
from bot.core.delivery import Senders
from bot.core.direct_answers import DirectAnswers
from bot.core.engine import APOLOGY, Engine
from bot.core.errors import ConfigError, ConnectorError, LockLost, LockTimeout, StoreUnavailable
from bot.core.model import Address, ChannelIdentity, Outbound
from bot.core.ports import CounterStore, ParkingStore, StoreLimits, TokenStore
from bot.core.settings import Settings
from connectors.http_errors import refuse
from connectors.telegram_polling import TelegramPoller
from connectors.telegram_render import (
    TOKEN_FILTER,
    TelegramSender,
    chat_id_of,
    describe,
    telegram_pacer,
)
from connectors.telegram_updates import (
    CHANNEL,
    UpdateHandlers,
    failed_record,
    ignored,
    origin_of,
    turn_id_of,
    unreadable_reason,
    unreadable_record,
    update_id_of,
)

# Importable from here as before.
from connectors.telegram_updates import command_as_typed as _command_as_typed  # noqa: F401
from connectors.texts import UNSUPPORTED_REPLY as UNSUPPORTED_REPLY

log = logging.getLogger(__name__)
log.addFilter(TOKEN_FILTER)

WEBHOOK_PATH = "/telegram/webhook"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
ALLOWED_UPDATES = ["message", "callback_query"]
# Seconds the Bot API has to answer each call made at start (getMe, the
# webhook): a server that never answers stops the start within this, not
# aiogram's default minute.
START_TIMEOUT = 15
# The characters Telegram accepts in a webhook secret token.
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")


@dataclass(frozen=True, slots=True)
class TelegramOptions:
    """How the connector receives updates and how hard it retries."""

    mode: Literal["webhook", "polling"] = "polling"
    # Telegram allows one getUpdates caller at a time (a second gets 409):
    # of several workers in polling mode, only the one with this set polls.
    poll: bool = True
    webhook_secret: str | None = None
    webhook_url: str | None = None
    webhook_max_connections: int = 1
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
    # Processes sending with this bot side by side (`--workers`): each paces
    # its sends to its share of the bot's overall limit.
    senders: int = 1


class Outcome(enum.Enum):
    """What became of one update."""

    ACCEPTED = "accepted"  # processed, or parked after too many attempts
    UNAVAILABLE = "unavailable"  # the store is unreachable: deliver again
    FAILED = "failed"  # processing failed: deliver again, up to the limit


class TelegramStore(CounterStore, ParkingStore, TokenStore, Protocol):
    """The slices of the store Telegram uses outside a turn: counting an
    update's failed attempts, parking it after the last, and marking it
    parked so that a redelivery does not park it twice."""


class TelegramConnector:
    """The Telegram channel. Holds an aiogram `Bot` (the Bot API client) and
    a `Dispatcher` whose router turns updates into engine turns."""

    channel = CHANNEL

    def __init__(
        self,
        *,
        bot: Bot,
        engine: Engine,
        store: TelegramStore,
        options: TelegramOptions,
        answers: DirectAnswers | None = None,
    ) -> None:
        self.bot = bot
        self.engine = engine
        self.store = store
        if answers is None:
            # Built alone, not by the app: fixed answers of its own, sent
            # through itself, marked for as long as dedup marks last by default.
            answers = DirectAnswers(store, Senders({CHANNEL: self}),
                                    ttl_seconds=StoreLimits().dedup_ttl_seconds)
        self.answers = answers
        self.options = options
        self.sender = TelegramSender(bot, pacer=telegram_pacer(options.senders))
        self.handlers = UpdateHandlers(
            bot=bot, engine=engine, answers=answers, options=lambda: self.options
        )
        self.dispatcher = Dispatcher(disable_fsm=True, name="segue-telegram")
        self.dispatcher.include_router(self.handlers.router())
        self._poller: TelegramPoller | None = None

    # Lifecycle.

    def mount(self, app: web.Application) -> None:
        if self.options.mode == "webhook":
            app.router.add_post(WEBHOOK_PATH, self.webhook)

    async def start(self) -> None:
        me = await self.sender.call(lambda: self.bot.get_me(request_timeout=START_TIMEOUT))
        log.info("Telegram bot @%s ready (%s mode)", me.username, self.options.mode)
        if self.options.mode == "polling" and not self.options.poll:
            log.info("another worker polls Telegram for updates; this one only sends")
        elif self.options.mode == "polling":
            # getUpdates is refused while a webhook is set.
            await self.sender.call(lambda: self.bot.delete_webhook(
                drop_pending_updates=False, request_timeout=START_TIMEOUT))
            self._poller = TelegramPoller(bot=self.bot, accept=self._accepted,
                                          options=lambda: self.options,
                                          allowed_updates=ALLOWED_UPDATES)
            self._poller.start()
        elif self.options.webhook_url:
            await self.sender.call(
                lambda: self.bot.set_webhook(
                    url=self.options.webhook_url or "",
                    secret_token=self.options.webhook_secret,
                    allowed_updates=ALLOWED_UPDATES,
                    max_connections=self.options.webhook_max_connections,
                    request_timeout=START_TIMEOUT,
                )
            )
            log.info("Telegram webhook set")

    async def stop(self, grace_seconds: float = 25.0) -> None:
        """Stop polling (an update in hand is handled to its end, up to
        `grace_seconds`, and the updates handled are confirmed to Telegram),
        then close the Bot API client."""
        if self._poller is not None:
            await self._poller.stop(grace_seconds)
            self._poller = None
        await self.bot.session.close()

    # Outbound half.

    async def send(self, address: Address, outbound: Outbound) -> None:
        await self.sender.send(chat_id_of(address.target), outbound)

    async def direct_address(self, identity: ChannelIdentity) -> Address | None:
        """Where a message to this person goes when the business writes
        first: their private chat with the bot, whose id is their user id.
        Telegram delivers there only if they started the bot and have not
        blocked it; otherwise `send` raises a `ConnectorError` saying so."""
        if identity.channel != CHANNEL or not _is_user_id(identity.user_id):
            return None
        return Address(CHANNEL, identity.user_id)

    async def typing(self, address: Address, on: bool, agent_name: str) -> None:
        # Telegram shows "typing" for about 5 s and has no way to stop it;
        # the console repeats `on` while the agent types.
        if on:
            await self.bot.send_chat_action(chat_id_of(address.target), "typing",
                                            request_timeout=5)

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
        except (ValueError, RecursionError):
            # RecursionError is nesting deeper than the JSON parser goes,
            # which is bad JSON too.
            data = None
        if update_id_of(data) is None:
            return refuse(CHANNEL, "bad_update", "the body is not a Telegram update", status=400)
        outcome = await self.accept_json(data)
        status = {Outcome.ACCEPTED: 200, Outcome.UNAVAILABLE: 503, Outcome.FAILED: 500}[outcome]
        return web.json_response({"status": outcome.value}, status=status)

    async def _accepted(self, data: dict[str, Any]) -> bool:
        return await self.accept_json(data) is Outcome.ACCEPTED

    async def accept_json(self, data: dict[str, Any]) -> Outcome:
        """One update as Telegram sent it (with an `update_id`): read, then
        accepted, or parked at once if this aiogram cannot read it."""
        with turn_log.turn(turn_id_of(update_id_of(data)), channel=CHANNEL):
            try:
                update = Update.model_validate(data, context={"bot": self.bot})
            except (ValidationError, RecursionError) as exc:
                return await self._unreadable(data, exc)
            return await self.accept(update)

    async def accept(self, update: Update) -> Outcome:
        """Process one update; `ACCEPTED` means it must not be delivered again."""
        with turn_log.turn(turn_id_of(update.update_id), channel=CHANNEL):
            return await self._accept(update)

    async def _accept(self, update: Update) -> Outcome:
        try:
            _ = update.event_type  # raises for a kind aiogram does not know
        except UpdateTypeLookupError:
            # A kind newer than this aiogram: nothing here could answer it, and
            # aiogram's own warning would print the whole update, customer
            # text included.
            log.info("Telegram update %s is of a kind not handled here: ignored",
                     update.update_id)
            ignored("unknown_kind")
            return Outcome.ACCEPTED
        try:
            handled = await self.dispatcher.feed_update(self.bot, update)
        except StoreUnavailable:
            log.warning("store unavailable; Telegram update %s is to come again", update.update_id)
            return Outcome.UNAVAILABLE
        except (LockTimeout, LockLost) as exc:
            # The customer's lock is held, perhaps by a worker that died with
            # it: it runs out within its TTL. Busy is not failing, so this
            # does not count towards parking the update.
            log.warning("Telegram update %s is to come again: %s", update.update_id, exc)
            return Outcome.UNAVAILABLE
        except Exception as exc:
            return await self._failed(update, exc)
        if handled is UNHANDLED:
            # Edited messages, channel posts, group chats: nothing to say.
            ignored(f"{update.event_type}_not_handled")
        return Outcome.ACCEPTED

    async def _unreadable(self, data: dict[str, Any], exc: Exception) -> Outcome:
        update_id = update_id_of(data)
        # The reason names fields, never their values: those may be what the
        # customer wrote.
        reason = unreadable_reason(exc)
        try:
            parked = await self._park_once(update_id, unreadable_record(data, reason))
        except StoreUnavailable:
            log.warning("store unavailable; Telegram update %s is to come again", update_id)
            return Outcome.UNAVAILABLE
        if parked:
            log.warning("Telegram update %s could not be read (%s): parked", update_id, reason)
            metrics.PARKED.labels(CHANNEL, "unreadable").inc()
        return Outcome.ACCEPTED

    async def _park_once(self, update_id: int | None, record: str) -> bool:
        """Park an update unless a delivery before this one parked it;
        whether it was parked now."""
        key = f"telegram:parked:{update_id}"
        if not await self.store.put_token(key, "1", self.options.attempts_ttl_seconds):
            log.info("Telegram update %s was parked already", update_id)
            return False
        try:
            await self.store.park(record)
        except Exception:
            # Not parked after all: the next delivery must park it.
            with suppress(Exception):
                await self.store.take_token(key)
            raise
        return True

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
            if await self._park_once(update.update_id, failed_record(update, error, attempts)):
                log.error("Telegram update %s parked after %s attempts",
                          update.update_id, attempts)
                metrics.PARKED.labels(CHANNEL, "failed").inc()
            await self._apologise(update)
        except StoreUnavailable:
            return Outcome.UNAVAILABLE
        return Outcome.ACCEPTED

    async def _apologise(self, update: Update) -> None:
        if update.callback_query is not None:
            await self.handlers.answer(update.callback_query)
        origin = origin_of(update)
        if origin is not None:
            # Once, like every word said outside a turn: the update may come
            # again if Telegram never saw our answer.
            identity, address = origin
            await self.answers.answer_once(
                identity, str(update.update_id), address, APOLOGY.text
            )


def _is_user_id(user_id: str) -> bool:
    # Telegram's user ids are positive integers; a group's or a channel's
    # chat id (negative, or `@name`) is no person's private chat.
    return user_id.isascii() and user_id.isdigit() and int(user_id) > 0


def build_telegram_connector(
    *,
    settings: Settings,
    engine: Engine,
    store: TelegramStore,
    answers: DirectAnswers | None = None,
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
        poll=settings.worker_index in (None, 0),
        webhook_secret=secret_value,
        webhook_url=settings.telegram_webhook_url,
        webhook_max_connections=settings.telegram_webhook_max_connections,
        max_text_length=settings.max_text_length,
        senders=settings.workers,
    )
    return TelegramConnector(
        bot=bot, engine=engine, store=store, answers=answers, options=options
    )
