"""The outbound half of the Telegram connector: `Outbound` to Bot API calls.

Text is always sent without `parse_mode`, so nothing a customer or an agent
typed can turn into markup. Parts Telegram cannot show fall back to text.

The bot token is part of every Bot API URL, and aiohttp quotes the URL in
some of its errors: what this connector raises or logs never carries it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar
from urllib.parse import quote

from aiogram import Bot
from aiogram.exceptions import (
    AiogramError,
    ClientDecodeError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
)
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
from aiohttp import (
    ClientOSError,
    ClientResponseError,
    InvalidURL,
    NonHttpUrlClientError,
    ServerDisconnectedError,
    TooManyRedirects,
)

from bot.core.errors import ConnectorError
from bot.core.model import Image, Outbound
from connectors.pacing import Pace, Pacer
from connectors.texts import names_itself

log = logging.getLogger(__name__)

REDACTED = "***"

# Bot API limits, counted in UTF-16 code units as Telegram counts them.
TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64  # bytes
BUTTON_PROMPT = "Please choose:"
URL_BUTTON_SCHEMES = ("http://", "https://", "tg://")
PHOTO_URL_SCHEMES = ("http://", "https://")

# Telegram's send limits (core.telegram.org/bots/faq): about one message a
# second in a chat, short bursts allowed (a turn often answers with two or
# three), and about 30 a second from one bot overall: a burst of 5, then 25
# a second, keeps any one second under 30.
PER_CHAT_PACE = Pace(burst=3, per_second=1)
OVERALL_PACE = Pace(burst=5, per_second=25)
# What Telegram's 403 means for a message to a person.
NOT_STARTED_OR_BLOCKED = "the user has not started the bot or has blocked it"

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class TextPart:
    """One `sendMessage` call."""

    text: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True, slots=True)
class PhotoPart:
    """One `sendPhoto` call; `fallback` is sent as text if Telegram refuses the photo."""

    url: str
    caption: str | None
    fallback: str
    keyboard: InlineKeyboardMarkup | None = None


Part = TextPart | PhotoPart


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    """Chunks of at most `limit` UTF-16 units, cut after a newline or a space
    in the chunk's second half when there is one, never inside a character."""
    chunks: list[str] = []
    start = 0
    while start < len(text):
        end, units = start, 0
        while end < len(text):
            width = 2 if ord(text[end]) > 0xFFFF else 1
            if units + width > limit:
                break
            units += width
            end += 1
        if end < len(text):
            half = start + (end - start) // 2
            cut = max(text.rfind("\n", half, end), text.rfind(" ", half, end))
            if cut >= half:
                end = cut + 1
        chunks.append(text[start:end])
        start = end
    return [c for c in chunks if c.strip()]


def render(outbound: Outbound) -> list[Part]:
    """The Bot API calls of one reply, in order; the keyboard goes on the last."""
    text = outbound.text
    if outbound.sender == "agent" and outbound.agent_name:
        if not names_itself(text, outbound.agent_name):
            text = f"{outbound.agent_name}: {text}"
    rows, extra_lines = _keyboard_rows(outbound)
    if extra_lines:
        text = "\n".join([text, *extra_lines]) if text.strip() else "\n".join(extra_lines)
    parts: list[Part] = [TextPart(chunk) for chunk in split_text(text)]
    parts.extend(_photo_part(image) for image in outbound.images)
    if not rows:
        return parts
    keyboard = InlineKeyboardMarkup(inline_keyboard=rows)
    if not parts:
        return [TextPart(BUTTON_PROMPT, keyboard)]
    parts[-1] = replace(parts[-1], keyboard=keyboard)
    return parts


def _keyboard_rows(outbound: Outbound) -> tuple[list[list[InlineKeyboardButton]], list[str]]:
    """Inline keyboard rows, and the lines of what must be shown as text instead."""
    rows: list[list[InlineKeyboardButton]] = []
    lines: list[str] = []
    # A payload Telegram cannot carry would come back wrong: list every
    # option as text then, so a typed answer still works.
    if all(_fits_callback(b.title, b.payload) for b in outbound.buttons):
        rows.extend(
            [InlineKeyboardButton(text=b.title, callback_data=b.payload)]
            for b in outbound.buttons
        )
    else:
        lines.extend(f"- {b.title}" for b in outbound.buttons)
    for link in outbound.links:
        if link.url.startswith(URL_BUTTON_SCHEMES):
            rows.append([InlineKeyboardButton(text=link.title or link.url, url=link.url)])
        else:
            lines.append(f"{link.title}: {link.url}" if link.title else link.url)
    return rows, lines


def _fits_callback(title: str, payload: str) -> bool:
    return bool(title.strip()) and 1 <= len(payload.encode("utf-8")) <= CALLBACK_DATA_LIMIT


def _photo_part(image: Image) -> Part:
    fallback = f"{image.alt}\n{image.url}" if image.alt else image.url
    if not image.url.startswith(PHOTO_URL_SCHEMES):
        return TextPart(fallback)
    caption = image.alt if image.alt and utf16_len(image.alt) <= CAPTION_LIMIT else None
    return PhotoPart(url=image.url, caption=caption, fallback=fallback)


def chat_id_of(target: str) -> int | str:
    """Telegram chat ids are integers; `@channelname` targets stay strings."""
    try:
        return int(target)
    except ValueError:
        return target


def redact(text: str, token: str) -> str:
    """`text` with the bot token, as written or as quoted in a URL, made `***`."""
    for form in sorted({token, quote(token), quote(token, safe="")}, key=len, reverse=True):
        if form:
            text = text.replace(form, REDACTED)
    return text


def telegram_pacer(senders: int = 1) -> Pacer:
    """The pacer of one process of `senders` sending with the same bot: the
    overall limit is the bot's, so each takes its share of it."""
    return Pacer(per_key=PER_CHAT_PACE, overall=OVERALL_PACE.share(senders))


def forbidden_reason(exc: TelegramForbiddenError) -> str:
    """Why Telegram will not deliver to a chat, in words an operator acts on.
    A bot may write only to people who started it, and until they block it
    ("bot can't initiate conversation with a user", "bot was blocked by the
    user"); other 403s (a deactivated user, a group the bot left) are told
    as Telegram words them."""
    words = exc.message.lower()
    if "blocked" in words or "initiate" in words:
        return f"{NOT_STARTED_OR_BLOCKED} ({exc.message})"
    return exc.message


def describe(exc: BaseException, token: str) -> str:
    """A short account of a failed Bot API request, safe to log. A network
    error is told by its type and a short reason only: aiohttp's own words
    quote the request URL."""
    if isinstance(exc, TelegramNetworkError):
        cause = exc.__cause__
        if cause is None:  # aiogram's own "Request timeout error"
            return f"{type(exc).__name__}: {redact(exc.message, token)}"
        return f"{type(cause).__name__}: {_network_reason(cause)}"
    if isinstance(exc, ClientDecodeError):
        # Its own words quote the answer, which holds the text sent.
        return f"{type(exc).__name__}: {exc.message} ({type(exc.original).__name__})"
    return f"{type(exc).__name__}: {redact(str(exc), token)}"


def _network_reason(cause: BaseException) -> str:
    if isinstance(cause, TooManyRedirects):
        return "too many redirects"
    if isinstance(cause, InvalidURL | NonHttpUrlClientError):
        return "not a usable URL"
    if isinstance(cause, ClientResponseError):
        return f"HTTP {cause.status}"
    if isinstance(cause, ServerDisconnectedError):
        return "the server disconnected"
    if isinstance(cause, TimeoutError):
        return "timed out"
    if isinstance(cause, ClientOSError) and cause.strerror:
        return cause.strerror
    return "the request failed"


class TokenFilter(logging.Filter):
    """Takes the bot tokens it knows out of log records, tracebacks included:
    one can hold an exception whose text quotes a Bot API URL."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return True  # a malformed call: the handler reports it as usual
        clean = self._clean(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            trace = logging.Formatter().formatException(record.exc_info)
            clean = self._clean(trace)
            if clean != trace:
                record.exc_info, record.exc_text = None, clean
        return True

    def _clean(self, text: str) -> str:
        for token in self.tokens:
            text = redact(text, token)
        return text


TOKEN_FILTER = TokenFilter()
log.addFilter(TOKEN_FILTER)


class TelegramSender:
    """Sends rendered parts with the bot, paced to Telegram's limits (every
    message waits its turn in its chat and overall) and honouring its flood
    control."""

    def __init__(self, bot: Bot, *, max_retries: int = 3, max_wait_seconds: float = 60.0,
                 pacer: Pacer | None = None) -> None:
        self.bot = bot
        TOKEN_FILTER.tokens.add(bot.token)
        self.max_retries = max_retries
        self.max_wait_seconds = max_wait_seconds
        self.pacer = pacer if pacer is not None else telegram_pacer()

    async def send(self, chat_id: int | str, outbound: Outbound) -> None:
        for part in render(outbound):
            await self.send_part(chat_id, part)

    async def send_part(self, chat_id: int | str, part: Part) -> None:
        match part:
            case TextPart(text=text, keyboard=keyboard):
                await self.call(
                    lambda: self.bot.send_message(
                        chat_id=chat_id, text=text, reply_markup=keyboard, parse_mode=None
                    ),
                    chat_id=chat_id,
                )
            case PhotoPart():
                await self._send_photo(chat_id, part)

    async def _send_photo(self, chat_id: int | str, part: PhotoPart) -> None:
        try:
            await self.call(
                lambda: self.bot.send_photo(
                    chat_id=chat_id,
                    photo=part.url,
                    caption=part.caption,
                    reply_markup=part.keyboard,
                    parse_mode=None,
                ),
                refusal=TelegramBadRequest,
                chat_id=chat_id,
            )
        except TelegramBadRequest as exc:
            # Telegram could not fetch or use the image: the link still helps.
            log.info("Telegram refused a photo (%s); sending it as a link", exc.message)
            await self.send_part(chat_id, TextPart(part.fallback, part.keyboard))

    async def call(
        self,
        request: Callable[[], Awaitable[T]],
        *,
        refusal: type[AiogramError] | None = None,
        chat_id: int | str | None = None,
    ) -> T:
        """Run one Bot API request, waiting out `retry_after` a bounded number
        of times; any other refusal becomes a `ConnectorError` (or is re-raised
        when it is the `refusal` the caller handles). A message to `chat_id`
        first waits its turn in the pacer, and holds the chat's turn through
        its retries, so the chat's next message cannot overtake it."""
        if chat_id is None:
            return await self._attempts(request, refusal)
        async with self.pacer.turn(str(chat_id)):
            return await self._attempts(request, refusal)

    async def _attempts(
        self, request: Callable[[], Awaitable[T]], refusal: type[AiogramError] | None
    ) -> T:
        waits = 0
        while True:
            try:
                return await request()
            except TelegramRetryAfter as exc:
                waits += 1
                if waits > self.max_retries or exc.retry_after > self.max_wait_seconds:
                    raise ConnectorError(
                        f"Telegram rate limit: retry after {exc.retry_after} s"
                    ) from exc
                log.info("Telegram asked to wait %s s before sending", exc.retry_after)
                await asyncio.sleep(exc.retry_after)
            except TelegramNetworkError as exc:
                # Not chained: a traceback would print aiohttp's error, URL and all.
                reason = describe(exc, self.bot.token)
                raise ConnectorError(f"Telegram could not be reached: {reason}") from None
            except TelegramForbiddenError as exc:
                raise ConnectorError(
                    f"Telegram refused the message: {forbidden_reason(exc)}"
                ) from exc
            except AiogramError as exc:
                if refusal is not None and isinstance(exc, refusal):
                    raise
                reason = describe(exc, self.bot.token)
                raise ConnectorError(f"Telegram refused the request: {reason}") from exc
