"""The language each channel says the sender uses reaches the engine as
`Inbound.locale`: Telegram's `language_code`, the web chat hello's `locale`,
and the Slack user's locale from users.info. Real connectors on loopback,
real Redis, the Telegram and Slack fakes; a policy records what it got."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.model import Button, Outbound
from bot.core.policy import TurnContext
from connectors.slack import SlackConnector, web_client
from connectors.slack_locale import SlackLocales
from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import CUSTOMER, FakeTelegram, callback_update, message_update
from tests.support.app_server import serve_echo
from tests.support.slack_rig import TOKEN, dm, press, running_segue
from tests.support.telegram_rig import recording, segue_on_fake
from tests.support.webchat_client import WebChatClient, raw_hello


class LocaleRecorder:
    """Echoes with two buttons, and remembers each message's text and locale."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        self.seen.append((turn.inbound.text, turn.inbound.locale))
        return [Outbound(text=f"echo: {turn.inbound.text}",
                         buttons=(Button("Yes", "yes"), Button("No", "no")))]


@pytest.fixture
def recorder() -> LocaleRecorder:
    return LocaleRecorder()


# Telegram


def telegram_user(**language: str) -> dict[str, Any]:
    """The customer as Telegram describes them, with `language_code` as given."""
    user = {k: v for k, v in CUSTOMER.items() if k != "language_code"}
    return {**user, **language}


async def test_telegram_language_code_is_the_locale_of_messages_presses_and_deep_links(
    telegram_api: FakeTelegram, redis_store: RedisContextStore, recorder: LocaleRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    german = telegram_user(language_code="de")
    async with segue_on_fake(telegram_api, redis_store, policy=recorder) as segue:
        # A deep link's /start is answered by linking, before any policy.
        received = recording(segue, monkeypatch)
        update = message_update(telegram_api.new_update_id(), "hallo", user=german)
        assert await telegram_api.post_update(update) == 200
        [menu] = await telegram_api.wait_for("sendMessage")
        pressed = callback_update(telegram_api.new_update_id(), menu, "yes", user=german)
        assert await telegram_api.post_update(pressed) == 200
        start = message_update(telegram_api.new_update_id(), "/start c0ffee", user=german)
        assert await telegram_api.post_update(start) == 200
    assert [(i.text, i.locale) for i in received] == [
        ("hallo", "de"), ("Yes", "de"), ("/start c0ffee", "de")]
    assert recorder.seen == [("hallo", "de"), ("Yes", "de")]


async def test_telegram_without_language_code_gives_no_locale(
    telegram_api: FakeTelegram, redis_store: RedisContextStore, recorder: LocaleRecorder
) -> None:
    async with segue_on_fake(telegram_api, redis_store, policy=recorder):
        update = message_update(telegram_api.new_update_id(), "hi", user=telegram_user())
        assert await telegram_api.post_update(update) == 200
        [menu] = await telegram_api.wait_for("sendMessage")
        pressed = callback_update(telegram_api.new_update_id(), menu, "no", user=telegram_user())
        assert await telegram_api.post_update(pressed) == 200
    assert recorder.seen == [("hi", None), ("No", None)]


# Web chat


async def test_web_chat_hello_locale_is_the_locale_of_every_message(
    redis_url: str, http: aiohttp.ClientSession, recorder: LocaleRecorder
) -> None:
    async with serve_echo(redis_url, policy=recorder) as app:
        client = await WebChatClient.connect(http, app.ws_url, locale="es-MX")
        await client.turn("hola")
        await client.turn("Yes", payload="yes")
        await client.close()
        # A later socket of the same session says its own.
        again = await WebChatClient.connect(http, app.ws_url, session=client.session)
        await again.turn("sin idioma")
        await again.close()
    assert recorder.seen == [("hola", "es-MX"), ("Yes", "es-MX"), ("sin idioma", None)]


async def test_web_chat_deep_link_turn_carries_the_hello_locale(
    redis_url: str, http: aiohttp.ClientSession, recorder: LocaleRecorder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with serve_echo(redis_url, policy=recorder) as app:
        first = await WebChatClient.connect(http, app.ws_url)
        token = (await first.web_link()).split("resume=")[1]
        # The link's question is asked by linking, before any policy.
        received = recording(app.segue, monkeypatch)
        opened = await WebChatClient.connect(http, app.ws_url, resume=token, locale="pt-BR")
        question = await opened.next_message()
        assert question["reply_to"] == f"resume:{token}"
        for client in (first, opened):
            await client.close()
    assert [(i.payload, i.locale) for i in received] == [(f"resume:{token}", "pt-BR")]


# Not language tags: markup, a number, a tag-shaped string too long, a
# trailing newline, an empty string, a list.
ODD_LOCALES = ["<script>", 123, "en-" + "-".join(["abcdefgh"] * 11), "de\n", "", ["de"]]


@pytest.mark.parametrize("locale", ODD_LOCALES, ids=repr)
async def test_web_chat_odd_hello_locale_still_connects_without_a_locale(
    redis_url: str, http: aiohttp.ClientSession, recorder: LocaleRecorder, locale: object
) -> None:
    async with serve_echo(redis_url, policy=recorder) as app:
        ws, first = await raw_hello(http, app.ws_url, locale=locale)
        assert first["type"] == "session", first
        await ws.close()
        client = await WebChatClient.connect(http, app.ws_url, locale=locale)
        await client.turn("hello")
        await client.close()
    assert recorder.seen == [("hello", None)]


# Slack

DANA = "U2147483697"


async def test_slack_user_locale_comes_from_users_info_once(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, recorder: LocaleRecorder
) -> None:
    slack_api.set_locale(DANA, "de-DE")
    async with running_segue(slack_api, redis_store, policy=recorder) as rig:
        assert (await rig.post_event(dm("hallo", event_id="EvL1", user=DANA))).status == 200
        [menu] = await rig.replies(1)
        assert (await rig.post_action(press(menu, 0, user=DANA))).status == 200
        assert (await rig.post_event(dm("noch was", event_id="EvL2", user=DANA))).status == 200
        await rig.replies(3)
    assert recorder.seen == [("hallo", "de-DE"), ("Yes", "de-DE"), ("noch was", "de-DE")]
    [lookup] = slack_api.calls_to("users.info")
    assert lookup.args["user"] == DANA and lookup.args["include_locale"] in ("1", "true")


async def test_slack_lookup_failure_gives_no_locale_and_the_turn_is_answered(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, recorder: LocaleRecorder,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    slack_api.refuse("users.info", "missing_scope", times=2)
    async with running_segue(slack_api, redis_store, policy=recorder) as rig:
        assert (await rig.post_event(dm("secret one", event_id="EvF1", user=DANA))).status == 200
        await rig.replies(1)
        other = dm("secret two", event_id="EvF2", user="U0OTHER01")
        assert (await rig.post_event(other)).status == 200
        await rig.replies(2)
        # A failed lookup is not tried again on the next turn.
        assert (await rig.post_event(dm("secret three", event_id="EvF3", user=DANA))).status == 200
        await rig.replies(3)
    assert recorder.seen == [("secret one", None), ("secret two", None), ("secret three", None)]
    assert len(slack_api.calls_to("users.info")) == 2
    warnings = [r for r in caplog.records
                if r.name == "connectors.slack_locale" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "missing_scope" in warnings[0].getMessage()
    assert not [r for r in caplog.records
                if r.name == "connectors.slack_locale" and "secret" in r.getMessage()]


async def test_a_slow_users_info_holds_the_turn_at_most_the_lookup_timeout(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, recorder: LocaleRecorder
) -> None:
    slack_api.set_locale(DANA, "de-DE")
    slack_api.hold("users.info", seconds=30)
    async with running_segue(slack_api, redis_store, policy=recorder) as rig:
        connector = rig.segue.connectors["slack"]
        assert isinstance(connector, SlackConnector)
        connector.locales.timeout_seconds = 0.5
        assert (await rig.post_event(dm("still there?", event_id="EvT1", user=DANA))).status == 200
        await rig.replies(1)
        await slack_api.wait_abandoned()
    assert recorder.seen == [("still there?", None)]


async def test_slack_locales_are_kept_an_hour_for_a_bounded_number_of_users(
    slack_api: FakeSlackApi,
) -> None:
    now = [0.0]
    client: AsyncWebClient = web_client(TOKEN, slack_api.url)

    async def users_info(user: str) -> dict[str, Any]:
        response = await client.users_info(user=user, include_locale=True)
        assert isinstance(response.data, dict)
        return response.data

    locales = SlackLocales(users_info, max_users=2, clock=lambda: now[0])
    slack_api.set_locale("UA", "de-DE")
    assert await locales.locale("T1", "UA") == "de-DE"
    slack_api.set_locale("UA", "fr-FR")
    now[0] = 3599
    assert await locales.locale("T1", "UA") == "de-DE"
    assert len(slack_api.calls_to("users.info")) == 1
    now[0] = 3601
    assert await locales.locale("T1", "UA") == "fr-FR"
    assert len(slack_api.calls_to("users.info")) == 2
    # A third user pushes out the one asked about least recently.
    assert await locales.locale("T1", "UB") == "en-US"
    assert await locales.locale("T1", "UA") == "fr-FR"
    assert await locales.locale("T1", "UC") == "en-US"
    assert len(slack_api.calls_to("users.info")) == 4
    assert await locales.locale("T1", "UA") == "fr-FR"
    assert await locales.locale("T1", "UB") == "en-US"
    assert len(slack_api.calls_to("users.info")) == 5
