"""The bot token never leaves the Telegram connector in an error or a log line."""

from __future__ import annotations

import logging

import pytest
from aiogram import Bot
from aiogram.exceptions import ClientDecodeError, TelegramBadRequest, TelegramNetworkError
from aiogram.methods import GetMe
from aiohttp import (
    ClientConnectorError,
    InvalidUrlClientError,
    NonHttpUrlClientError,
    ServerDisconnectedError,
)
from aiohttp.client_reqrep import ConnectionKey

import connectors.telegram  # noqa: F401  (its logger gets the token filter on import)
from connectors.telegram_render import TelegramSender, describe, redact

TOKEN = "987654321:AAFs3cretPartOfTheTokenThatMustStay"
SECRET_PART = TOKEN.split(":", 1)[1]
URL = f"https://api.telegram.org/bot{TOKEN}/getMe"


def network_error(cause: Exception) -> TelegramNetworkError:
    """What aiogram's session raises for `cause`: its text, URL and all, chained."""
    try:
        try:
            raise cause
        except Exception as exc:
            raise TelegramNetworkError(GetMe(), f"{type(exc).__name__}: {exc}") from exc
    except TelegramNetworkError as error:
        return error


def connector_error() -> ClientConnectorError:
    key = ConnectionKey("api.telegram.org", 443, True, True, None, None, None)
    return ClientConnectorError(key, OSError(111, "Connection refused"))


def test_redact_takes_out_the_token_as_written_and_as_quoted() -> None:
    quoted = TOKEN.replace(":", "%3A")
    assert redact(f"GET /bot{TOKEN}/x and /bot{quoted}/y", TOKEN) == "GET /bot***/x and /bot***/y"
    assert redact("nothing secret", TOKEN) == "nothing secret"


@pytest.mark.parametrize(
    ("cause", "expected"),
    [
        (InvalidUrlClientError(URL), "InvalidUrlClientError: not a usable URL"),
        (NonHttpUrlClientError(URL), "NonHttpUrlClientError: not a usable URL"),
        (ServerDisconnectedError(), "ServerDisconnectedError: the server disconnected"),
        (connector_error(), "ClientConnectorError: Connection refused"),
        (RuntimeError(URL), "RuntimeError: the request failed"),
    ],
)
def test_a_network_error_is_its_type_and_a_short_reason(cause: Exception, expected: str) -> None:
    assert describe(network_error(cause), TOKEN) == expected


def test_aiogram_quotes_the_url_in_network_errors() -> None:
    # Why the above matters: this is what the error itself says.
    assert TOKEN in str(network_error(InvalidUrlClientError(URL)))


def test_other_errors_are_described_with_the_token_taken_out() -> None:
    refused = TelegramBadRequest(GetMe(), f"Bad Request: odd echo of {TOKEN}")
    assert describe(refused, TOKEN) == (
        "TelegramBadRequest: Telegram server says - Bad Request: odd echo of ***"
    )


async def test_connector_logs_lose_the_token_even_in_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = Bot(TOKEN)
    TelegramSender(bot)  # the connector's sender makes its token known to the log filter
    try:
        caplog.set_level(logging.DEBUG)
        error = network_error(InvalidUrlClientError(URL))
        for name in ("connectors.telegram", "connectors.telegram_render"):
            logging.getLogger(name).error("failed on %s", URL, exc_info=error)
        assert len(caplog.records) == 2
        assert "InvalidUrlClientError" in caplog.text  # the traceback is still there
        assert "bot***/getMe" in caplog.text
        assert SECRET_PART not in caplog.text
    finally:
        await bot.session.close()


def test_an_answer_that_cannot_be_read_is_described_without_quoting_it() -> None:
    # A Bot API answer aiogram cannot read (a proxy, a Bot API server out of
    # step) quotes what was sent: the customer's reply.
    answer = {"ok": True, "result": {"message_id": 1, "text": "Order A1003 is delivered"}}
    exc = ClientDecodeError("Failed to deserialize object", ValueError("no chat"), answer)
    assert "A1003" in str(exc)  # aiogram's own words quote it
    said = describe(exc, "123:SECRET")
    assert "A1003" not in said
    assert said.startswith("ClientDecodeError: Failed to deserialize object")
