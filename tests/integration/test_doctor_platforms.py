"""`segue doctor`'s Telegram, Slack and clock checks, against the local Bot
API and Web API with good and bad credentials, webhooks registered right,
elsewhere or not at all, and clocks set apart."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import FakeTelegram
from tests.support.doctor_rig import (
    SIGNING_SECRET,
    SLACK_APP_TOKEN,
    SLACK_BOT_TOKEN,
    TELEGRAM_TOKEN,
    WEBHOOK_SECRET,
    WEBHOOK_URL,
    RunDoctor,
    doctor_runner,
    empty_config,
    persistent_redis_server,
    slack_env,
    slack_fake,
    telegram_env,
    telegram_fake,
    web_chat_env,
    webhook_env,
)
from tests.support.redis_server import free_port


@pytest.fixture
def doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           tmp_path: Path) -> RunDoctor:
    return doctor_runner(monkeypatch, capsys, empty_config(tmp_path))


@pytest.fixture(scope="module")
def persistent_redis() -> Iterator[str]:
    with persistent_redis_server() as url:
        yield url


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with telegram_fake() as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackApi]:
    async with slack_fake() as fake:
        yield fake


# A deployment with nothing wrong.

async def test_a_sound_deployment_passes_every_check(
        doctor: RunDoctor, persistent_redis: str, telegram: FakeTelegram,
        slack: FakeSlackApi) -> None:
    telegram.webhook = {"url": WEBHOOK_URL, "secret_token": WEBHOOK_SECRET}
    ran = await doctor({"SEGUE_REDIS_URL": persistent_redis, **webhook_env(telegram),
                        **slack_env(slack), **web_chat_env()})
    assert ran.code == 0, ran.out
    assert [text.split(" ", 1)[0] for text in ran.lines] == ["ok"] * len(ran.lines), ran.out
    assert re.search(r"store: Redis \d+\.\d+\.\d+ at redis://127\.0\.0\.1:\d+/0 answers",
                     ran.line("store"))
    assert "AOF on" in ran.line("store persistence")
    assert "noeviction" in ran.line("store eviction")
    assert "bot @segue_demo_bot (id 123456789)" in ran.line("telegram token")
    assert f"registered to {WEBHOOK_URL}" in ran.line("telegram webhook")
    assert "secret token cannot be read back" in ran.line("telegram webhook")
    assert "0 update(s) waiting, no delivery error" in ran.line("telegram delivery")
    assert "team Example (T061EG9R6), bot user segue (U0BOTUSER)" in ran.line("slack token")
    assert "opens a Socket Mode connection" in ran.line("slack socket mode")
    assert re.search(r"Redis TIME, .* Telegram's Date, .* Slack's Date", ran.line("clock"))
    assert [c.method for c in telegram.calls] == ["getMe", "getWebhookInfo"]
    assert [c.method for c in slack.calls] == ["auth.test", "apps.connections.open"]


# Telegram.

async def test_a_wrong_telegram_token_fails_with_telegrams_answer(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    wrong = "987654321:ZZdoctorTelegramWrong0123456789abcd"
    ran = await doctor({**telegram_env(telegram), "SEGUE_TELEGRAM_TOKEN": wrong})
    assert ran.code == 1
    assert ran.line("telegram token").startswith(
        f"FAIL  telegram token: {telegram.url} refused the token: Unauthorized")
    assert "ZZdoctorTelegramWrong" not in ran.out
    assert "telegram webhook" not in ran.out


async def test_an_error_naming_the_api_url_does_not_show_the_token(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    # aiohttp's redirect error quotes the URL, which holds the token.
    telegram.redirect_loop("getMe")
    ran = await doctor(telegram_env(telegram))
    assert ran.code == 1
    assert re.match(rf"FAIL  telegram token: cannot check: no answer from {telegram.url}: "
                    r"TooManyRedirects: .*/bot\[secret\]/getMe", ran.line("telegram token"))


async def test_a_malformed_telegram_token_fails_before_calling(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    ran = await doctor({**telegram_env(telegram), "SEGUE_TELEGRAM_TOKEN": "not a token"})
    assert ran.level("telegram token") == "FAIL" and telegram.calls == []


async def test_the_bot_username_missing_warns_and_a_different_one_fails(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    env = telegram_env(telegram)
    del env["SEGUE_TELEGRAM_BOT_USERNAME"]
    missing = await doctor(env)
    assert missing.line("telegram username").startswith("warn  telegram username: "
                                                        "SEGUE_TELEGRAM_BOT_USERNAME is not set")
    assert "fix: set SEGUE_TELEGRAM_BOT_USERNAME=segue_demo_bot" in missing.line(
        "telegram username")
    other = await doctor({**env, "SEGUE_TELEGRAM_BOT_USERNAME": "another_bot"})
    assert other.code == 1
    assert other.line("telegram username").startswith(
        "FAIL  telegram username: SEGUE_TELEGRAM_BOT_USERNAME is another_bot, but the token "
        "is @segue_demo_bot's")


async def test_a_webhook_registered_elsewhere_fails(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    telegram.webhook = {"url": "https://old.example.com/hook"}
    ran = await doctor(webhook_env(telegram))
    assert ran.code == 1
    assert ran.line("telegram webhook").startswith(
        f"FAIL  telegram webhook: registered to https://old.example.com/hook, not to "
        f"{WEBHOOK_URL}")


async def test_no_webhook_registered_yet_warns(doctor: RunDoctor, telegram: FakeTelegram) -> None:
    ran = await doctor(webhook_env(telegram))
    assert ran.code == 0
    assert ran.line("telegram webhook").startswith(
        f"warn  telegram webhook: none registered yet: `segue run` registers {WEBHOOK_URL}")


async def test_a_webhook_url_left_unset_must_be_registered_by_hand(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    env = webhook_env(telegram)
    del env["SEGUE_TELEGRAM_WEBHOOK_URL"]
    none = await doctor(env)
    assert none.level("telegram webhook") == "FAIL"
    telegram.webhook = {"url": WEBHOOK_URL}
    by_hand = await doctor(env)
    assert by_hand.line("telegram webhook").startswith(
        f"warn  telegram webhook: registered to {WEBHOOK_URL} by hand")


async def test_a_recent_delivery_error_warns_and_an_old_one_does_not(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    telegram.webhook = {"url": WEBHOOK_URL}
    await telegram.queue_updates([telegram.message("hi"), telegram.message("there")])
    telegram.fail_delivery("Wrong response from the webhook: 503 Service Unavailable",
                           seconds_ago=30)
    recent = await doctor(webhook_env(telegram))
    # Telegram counts whole seconds.
    assert re.match(r"warn  telegram delivery: 2 update\(s\) waiting; last delivery error "
                    r"3[01] s ago: Wrong response from the webhook: 503 Service Unavailable\n"
                    r"  fix: make sure the webhook URL reaches", recent.line("telegram delivery"))
    telegram.fail_delivery("Connection refused", seconds_ago=3 * 86400)
    old = await doctor(webhook_env(telegram))
    assert old.line("telegram delivery") == (
        "ok    telegram delivery: 2 update(s) waiting; last delivery error 72 h ago: "
        "Connection refused")


async def test_polling_with_a_webhook_set_says_segue_deletes_it_at_start(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    clean = await doctor(telegram_env(telegram))
    assert clean.line("telegram webhook").startswith(
        "ok    telegram webhook: none registered, as polling needs")
    telegram.webhook = {"url": "https://old.example.com/hook"}
    ran = await doctor(telegram_env(telegram))
    assert ran.line("telegram webhook").startswith(
        "warn  telegram webhook: polling mode, but a webhook is registered to "
        "https://old.example.com/hook")
    assert "`segue run` deletes it when it starts polling" in ran.line("telegram webhook")
    assert telegram.webhook is not None, "the doctor only looks"


# Slack.

async def test_wrong_slack_tokens_fail_with_slacks_error(
        doctor: RunDoctor, slack: FakeSlackApi) -> None:
    ran = await doctor(slack_env(slack, SEGUE_SLACK_BOT_TOKEN="xoxb-doctor-wrong-bot",
                                 SEGUE_SLACK_APP_TOKEN="xapp-doctor-wrong-app"))
    assert ran.code == 1
    assert ran.line("slack token").startswith(
        f"FAIL  slack token: {slack.url} refused the bot token: invalid_auth")
    assert ran.line("slack socket mode").startswith(
        "FAIL  slack socket mode: Slack refused the app token: invalid_auth")
    assert "doctor-wrong" not in ran.out


async def test_platform_apis_out_of_reach_fail_as_unchecked(doctor: RunDoctor) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    ran = await doctor({"SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "SEGUE_TELEGRAM_API_URL": nowhere,
                        "SEGUE_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
                        "SEGUE_SLACK_API_URL": nowhere + "/api/",
                        "SEGUE_SLACK_APP_TOKEN": SLACK_APP_TOKEN})
    assert ran.code == 1
    assert ran.line("telegram token").startswith(
        f"FAIL  telegram token: cannot check: no answer from {nowhere}: ClientConnectorError")
    assert ran.line("slack token").startswith(
        f"FAIL  slack token: cannot check: no answer from {nowhere}/api/: ClientConnectorError")
    assert ran.level("slack socket mode") == "FAIL"


@pytest.fixture
async def bad_gateway() -> AsyncIterator[str]:
    """A proxy in front of a platform API that is down: every request gets
    HTTP 502 and an HTML page."""
    async def answer(request: web.Request) -> web.Response:
        return web.Response(status=502, content_type="text/html",
                            text="<html><body><h1>502 Bad Gateway</h1></body></html>")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_an_http_error_page_is_no_verdict_on_the_tokens(
        doctor: RunDoctor, bad_gateway: str) -> None:
    ran = await doctor({"SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
                        "SEGUE_TELEGRAM_API_URL": bad_gateway,
                        "SEGUE_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN,
                        "SEGUE_SLACK_API_URL": bad_gateway + "/api/",
                        "SEGUE_SLACK_APP_TOKEN": SLACK_APP_TOKEN})
    assert ran.code == 1
    assert ran.line("telegram token").startswith(
        f"FAIL  telegram token: cannot check: {bad_gateway} answered HTTP 502, which says "
        "nothing of the token\n  fix: make sure this machine reaches the Bot API through any "
        "proxy in between, and that the Bot API server at SEGUE_TELEGRAM_API_URL")
    for check in ("slack token", "slack socket mode"):
        assert ran.line(check).startswith(
            f"FAIL  {check}: cannot check: {bad_gateway}/api/ answered HTTP 502, which says "
            "nothing of the token\n  fix: make sure this machine reaches the Web API at "
            "SEGUE_SLACK_API_URL through any proxy in between")
    for check in ("telegram token", "slack token", "slack socket mode"):
        assert "refused" not in ran.line(check)
        assert "SEGUE_TELEGRAM_TOKEN" not in ran.line(check)
        assert not re.search(r"SEGUE_SLACK_(BOT|APP)_TOKEN", ran.line(check))


async def test_a_telegram_server_error_is_no_verdict_on_the_token(
        doctor: RunDoctor, telegram: FakeTelegram) -> None:
    telegram.fail("getMe", status=500, description="Internal Server Error")
    ran = await doctor(telegram_env(telegram))
    assert ran.line("telegram token").startswith(
        f"FAIL  telegram token: cannot check: {telegram.url} answered HTTP 500 (Internal "
        "Server Error), which says nothing of the token")


async def test_slack_over_http_names_the_request_url(
        doctor: RunDoctor, slack: FakeSlackApi) -> None:
    env = slack_env(slack, SEGUE_SLACK_SIGNING_SECRET=SIGNING_SECRET)
    del env["SEGUE_SLACK_APP_TOKEN"]
    ran = await doctor({**env, **web_chat_env()})
    assert ran.code == 0
    assert ("ok    slack events: HTTP events: the app's Request URL must be "
            "https://bot.example.com/slack/events") in ran.line("slack events")
    assert [c.method for c in slack.calls] == ["auth.test"]


# The clock.

async def test_a_clock_a_little_off_warns_and_far_off_fails(
        doctor: RunDoctor, telegram: FakeTelegram, slack: FakeSlackApi) -> None:
    env = {**telegram_env(telegram), **slack_env(slack)}
    telegram.clock_offset = 30  # the Date header counts whole seconds: 29.5 to 30.5
    behind = await doctor(env)
    assert re.search(r"warn  clock: this clock is (29|30)\.\d s behind Telegram's Date, .* "
                     r"Slack's Date", behind.line("clock"))
    assert "fix: synchronise this machine's clock" in behind.line("clock")
    telegram.clock_offset = 0
    slack.clock_offset = -600
    ahead = await doctor(env)
    assert ahead.code == 1
    assert re.search(r"FAIL  clock: .* (59\d|6\d\d)\.\d s ahead of Slack's Date",
                     ahead.line("clock"))
