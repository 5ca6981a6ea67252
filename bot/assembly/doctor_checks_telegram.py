"""`segue doctor`'s Telegram checks: the token, the bot's username, and the
webhook Telegram has on record, read with `getMe` and `getWebhookInfo`.

Plain aiohttp on the URLs aiogram builds for the connector (the same Bot
API server, a self-hosted one included): the answers' `Date` header is
wanted too, which aiogram's Bot does not show."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from aiogram.client.telegram import TelegramAPIServer
from aiogram.utils.token import TokenValidationError, validate_token

from bot.assembly.doctor_checks import ClockReading, Report
from bot.core.settings import Settings

TIMEOUT_SECONDS = 5.0
# A delivery error newer than this is worth a warning; an older one is told
# but Telegram may simply not have cleared it.
RECENT_ERROR_SECONDS = 3600
WEBHOOK_PATH = "/telegram/webhook"


class TelegramRefused(Exception):
    """The Bot API answered `ok: false`."""


class TelegramUnreachable(Exception):
    """The Bot API did not answer."""


class TelegramUnusable(Exception):
    """Something answered, but not the Bot API's verdict: an HTTP error
    without Telegram's JSON (a proxy's or an outage's page), or a server
    error. Nothing is known of the token."""

    def __init__(self, status: int, detail: str | None) -> None:
        super().__init__(f"HTTP {status}" + (f" ({detail})" if detail else ""))
        self.status = status


# Telegram's answers to a token it does not know (401) or cannot parse (404).
_TOKEN_REFUSED = (401, 404)


@dataclass(frozen=True, slots=True)
class _BotApi:
    session: aiohttp.ClientSession
    server: TelegramAPIServer
    token: str

    async def call(self, method: str, report: Report) -> Any:
        url = self.server.api_url(token=self.token, method=method)
        try:
            before = time.time()
            async with self.session.post(url) as response:
                after = time.time()
                text = await response.text()
                _read_date(report, response.headers.get("Date"), (before + after) / 2)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise TelegramUnreachable(_reason(exc)) from exc
        body = _json(text)
        if body is None or (not body.get("ok") and response.status not in _TOKEN_REFUSED):
            description = body.get("description") if body is not None else None
            raise TelegramUnusable(response.status, str(description) if description else None)
        if not body.get("ok"):
            raise TelegramRefused(str(body.get("description") or f"HTTP {response.status}"))
        return body.get("result")


def _json(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


async def check_telegram(report: Report, settings: Settings) -> None:
    if settings.telegram_token is None:
        return
    token = settings.telegram_token.get_secret_value()
    try:
        validate_token(token)
    except TokenValidationError:
        report.fail("telegram token", "SEGUE_TELEGRAM_TOKEN is not a bot token "
                    "(<bot id>:<secret>)", "copy the token @BotFather gave")
        return
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        api = _BotApi(session, TelegramAPIServer.from_base(settings.telegram_api_url), token)
        try:
            me = await api.call("getMe", report)
        except TelegramUnreachable as exc:
            report.fail("telegram token", f"cannot check: no answer from "
                        f"{settings.telegram_api_url}: {exc}", "make sure this machine reaches "
                        "the Bot API server at SEGUE_TELEGRAM_API_URL")
            return
        except TelegramUnusable as exc:
            report.fail("telegram token", f"cannot check: {settings.telegram_api_url} answered "
                        f"{exc}, which says nothing of the token", "make sure this machine "
                        "reaches the Bot API through any proxy in between, and that the Bot "
                        "API server at SEGUE_TELEGRAM_API_URL (a self-hosted one) is up; "
                        "then run the doctor again")
            return
        except TelegramRefused as exc:
            report.fail("telegram token", f"{settings.telegram_api_url} refused the token: "
                        f"{exc}", "set SEGUE_TELEGRAM_TOKEN to the token @BotFather gave "
                        "(/token in @BotFather for a new one)")
            return
        username = str(me.get("username", ""))
        report.ok("telegram token", f"bot @{username} (id {me.get('id')})")
        _check_username(report, settings, username)
        try:
            info = await api.call("getWebhookInfo", report)
        except (TelegramRefused, TelegramUnreachable, TelegramUnusable) as exc:
            report.fail("telegram webhook", f"getWebhookInfo failed: {exc}",
                        "check the Bot API server at SEGUE_TELEGRAM_API_URL")
            return
    if settings.telegram_mode == "polling":
        _check_polling(report, info)
    else:
        _check_webhook(report, settings, info)
        _check_delivery(report, info)


def _check_username(report: Report, settings: Settings, username: str) -> None:
    configured = settings.telegram_bot_username
    if configured is None:
        report.warn("telegram username", "SEGUE_TELEGRAM_BOT_USERNAME is not set: no links "
                    "to continue a conversation on Telegram", f"set "
                    f"SEGUE_TELEGRAM_BOT_USERNAME={username}")
    elif configured.lower() == username.lower():
        report.ok("telegram username", f"{configured} (links https://t.me/{configured})")
    else:
        report.fail("telegram username", f"SEGUE_TELEGRAM_BOT_USERNAME is {configured}, but "
                    f"the token is @{username}'s: links to continue on Telegram lead "
                    "elsewhere", f"set SEGUE_TELEGRAM_BOT_USERNAME={username}")


def _check_polling(report: Report, info: dict[str, Any]) -> None:
    registered = str(info.get("url") or "")
    pending = info.get("pending_update_count", 0)
    if not registered:
        report.ok("telegram webhook", f"none registered, as polling needs; {pending} "
                  "update(s) waiting")
        return
    report.warn("telegram webhook", f"polling mode, but a webhook is registered to "
                f"{registered}: Telegram refuses getUpdates while it is. `segue run` deletes "
                "it when it starts polling; if Segue is running already, something else "
                "registered it since",
                "use one mode per bot token: stop whatever else uses this token, or set "
                "SEGUE_TELEGRAM_MODE=webhook")


_SECRET_NOTE = ("the secret token cannot be read back from Telegram, so it is not "
                "checked here")


def _check_webhook(report: Report, settings: Settings, info: dict[str, Any]) -> None:
    registered = str(info.get("url") or "")
    configured = settings.telegram_webhook_url
    if configured is None:
        if registered:
            report.warn("telegram webhook", f"registered to {registered} by hand "
                        f"(SEGUE_TELEGRAM_WEBHOOK_URL is not set); {_SECRET_NOTE}",
                        "set SEGUE_TELEGRAM_WEBHOOK_URL=https://<public host>"
                        f"{WEBHOOK_PATH} so Segue registers it, with its secret, at start")
        else:
            report.fail("telegram webhook", "none registered, and SEGUE_TELEGRAM_WEBHOOK_URL "
                        "is not set, so Segue registers none: Telegram delivers nothing",
                        "set SEGUE_TELEGRAM_WEBHOOK_URL=https://<public host>"
                        f"{WEBHOOK_PATH} and restart `segue run`")
    elif registered == configured:
        report.ok("telegram webhook", f"registered to {registered}; {_SECRET_NOTE}")
    elif not registered:
        report.warn("telegram webhook", f"none registered yet: `segue run` registers "
                    f"{configured} at start; until then Telegram delivers nothing",
                    "start `segue run` (if it runs, look for errors from setWebhook in its log)")
    else:
        report.fail("telegram webhook", f"registered to {registered}, not to {configured}: "
                    "updates go there", "restart `segue run` to register "
                    "SEGUE_TELEGRAM_WEBHOOK_URL, and make sure nothing else uses this token")


def _check_delivery(report: Report, info: dict[str, Any]) -> None:
    pending = int(info.get("pending_update_count", 0))
    message = info.get("last_error_message")
    if not message:
        report.ok("telegram delivery", f"{pending} update(s) waiting, no delivery error")
        return
    age = time.time() - float(info.get("last_error_date") or 0)
    found = (f"{pending} update(s) waiting; last delivery error {_ago(age)}: {message}")
    if age <= RECENT_ERROR_SECONDS:
        report.warn("telegram delivery", found, "make sure the webhook URL reaches "
                    f"`segue run`'s {WEBHOOK_PATH} over https with a valid certificate, "
                    "and that it answers (its log says why not)")
    else:
        report.ok("telegram delivery", found)


def _ago(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min ago"
    return f"{seconds / 3600:.0f} h ago"


def _read_date(report: Report, header: str | None, local: float) -> None:
    if header is None or any(r.source == "Telegram's Date" for r in report.clocks):
        return
    try:
        remote = parsedate_to_datetime(header).timestamp()
    except (TypeError, ValueError):
        return
    # The header counts whole seconds: the server's time lies within the next one.
    report.clocks.append(ClockReading("Telegram's Date", remote + 0.5 - local))


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {TIMEOUT_SECONDS:.0f} s"
    return f"{type(exc).__name__}: {exc}"
