"""`segue doctor`'s Slack checks: `auth.test` with the bot token, and with an
app token `apps.connections.open`, the call Socket Mode starts with.

slack_sdk's AsyncWebClient as the connector uses it, but with no retries
and a short timeout: a doctor reports, it does not wait Slack out."""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.assembly.doctor_checks import ClockReading, Report
from bot.core.settings import Settings

TIMEOUT_SECONDS = 5
EVENTS_PATH = "/slack/events"


class SlackRefused(Exception):
    """Slack answered `ok: false` (its error code)."""


class SlackUnreachable(Exception):
    """The Web API did not answer."""


class SlackUnusable(Exception):
    """Something answered with an HTTP error instead of the Web API's
    verdict (a proxy's or an outage's page, a rate limit): nothing is known
    of the token. Slack tells a bad token with HTTP 200 and `ok: false`."""

    def __init__(self, status: int | None, error: str | None) -> None:
        super().__init__(f"HTTP {status}" + (f" ({error})" if error else ""))


_UNREACHABLE_FIX = "make sure this machine reaches the Web API at SEGUE_SLACK_API_URL"
_UNUSABLE_FIX = ("make sure this machine reaches the Web API at SEGUE_SLACK_API_URL through "
                 "any proxy in between (https://status.slack.com tells an outage); then run "
                 "the doctor again")


def _unusable(check: str, report: Report, api_url: str, exc: SlackUnusable) -> None:
    report.fail(check, f"cannot check: {api_url} answered {exc}, which says nothing of the "
                "token", _UNUSABLE_FIX)


async def check_slack(report: Report, settings: Settings) -> None:
    if settings.slack_bot_token is None:
        return
    bot = _client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url)
    try:
        auth = await _call(report, bot, "auth.test")
    except SlackUnreachable as exc:
        report.fail("slack token", f"cannot check: no answer from {settings.slack_api_url}: "
                    f"{exc}", _UNREACHABLE_FIX)
    except SlackUnusable as exc:
        _unusable("slack token", report, settings.slack_api_url, exc)
    except SlackRefused as exc:
        report.fail("slack token", f"{settings.slack_api_url} refused the bot token: {exc}",
                    "set SEGUE_SLACK_BOT_TOKEN to the Bot User OAuth Token (xoxb-...) on "
                    "the app's OAuth & Permissions page")
    else:
        report.ok("slack token", f"team {auth.get('team')} ({auth.get('team_id')}), bot user "
                  f"{auth.get('user')} ({auth.get('user_id')})")
    if settings.slack_app_token is not None:
        await _check_socket_mode(report, settings)
    else:
        _check_http_events(report, settings)


async def _check_socket_mode(report: Report, settings: Settings) -> None:
    assert settings.slack_app_token is not None
    app = _client(settings.slack_app_token.get_secret_value(), settings.slack_api_url)
    try:
        # The URL it answers is a one-time ticket; left unused, it lapses.
        await _call(report, app, "apps.connections.open")
    except SlackUnreachable as exc:
        report.fail("slack socket mode", f"cannot check: no answer from "
                    f"{settings.slack_api_url}: {exc}", _UNREACHABLE_FIX)
        return
    except SlackUnusable as exc:
        _unusable("slack socket mode", report, settings.slack_api_url, exc)
        return
    except SlackRefused as exc:
        report.fail("slack socket mode", f"Slack refused the app token: {exc}",
                    "set SEGUE_SLACK_APP_TOKEN to an app-level token (xapp-...) with the "
                    "connections:write scope, and turn Socket Mode on for the app")
        return
    report.ok("slack socket mode", "the app token opens a Socket Mode connection")


def _check_http_events(report: Report, settings: Settings) -> None:
    if settings.public_url is None:
        report.ok("slack events", f"HTTP events at {EVENTS_PATH} (SEGUE_PUBLIC_URL is not "
                  "set, so the full Request URL is not known here); the signing secret "
                  "cannot be checked from here")
        return
    url = settings.public_url.rstrip("/") + EVENTS_PATH
    report.ok("slack events", f"HTTP events: the app's Request URL must be {url}; the "
              "signing secret cannot be checked from here")


def _client(token: str, api_url: str) -> AsyncWebClient:
    return AsyncWebClient(token=token, base_url=api_url if api_url.endswith("/")
                          else api_url + "/", timeout=TIMEOUT_SECONDS, retry_handlers=[])


async def _call(report: Report, client: AsyncWebClient, method: str) -> dict[str, Any]:
    before = time.time()
    try:
        response = await client.api_call(method)
    except SlackApiError as exc:
        _read_date(report, exc.response.headers, (before + time.time()) / 2)
        # slack_sdk's response, or aiohttp's when the body was not JSON.
        status = getattr(exc.response, "status_code", getattr(exc.response, "status", None))
        data = getattr(exc.response, "data", None)
        error = data.get("error") if isinstance(data, dict) else None
        if status != 200 or not error:
            raise SlackUnusable(status, str(error) if error else None) from exc
        raise SlackRefused(str(error)) from exc
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {TIMEOUT_SECONDS} s"
        raise SlackUnreachable(reason) from exc
    _read_date(report, response.headers, (before + time.time()) / 2)
    data = response.data
    return data if isinstance(data, dict) else {}


def _read_date(report: Report, headers: dict[str, Any], local: float) -> None:
    header = next((v for k, v in headers.items() if k.lower() == "date"), None)
    if isinstance(header, list):
        header = header[0] if header else None
    if header is None or any(r.source == "Slack's Date" for r in report.clocks):
        return
    try:
        remote = parsedate_to_datetime(str(header)).timestamp()
    except (TypeError, ValueError):
        return
    # The header counts whole seconds: the server's time lies within the next one.
    report.clocks.append(ClockReading("Slack's Date", remote + 0.5 - local))
