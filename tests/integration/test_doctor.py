"""`segue doctor` as an operator runs it: against real Redis servers (with
and without persistence, refusing CONFIG, not there at all, a cluster) and
the local Telegram and Slack APIs with good and bad credentials."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.assembly.cli import main
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import BOT_USER, FakeTelegram
from tests.support.redis_server import free_port, redis_server

ROOT = Path(__file__).resolve().parents[2]
# Distinctive values, so that a secret in the output cannot hide.
TELEGRAM_TOKEN = "987654321:ZZdoctorTelegramSecret0123456789abcd"
SLACK_BOT_TOKEN = "xoxb-doctor-bot-secret-7f3a91"
SLACK_APP_TOKEN = "xapp-doctor-app-secret-91c2e4"
SIGNING_SECRET = "doctor-signing-secret-3b8d"
WEBHOOK_SECRET = "doctor-webhook-secret-c0ffee"
WEBCHAT_SECRET = "doctor-webchat-secret-5a5a5a"
IDENTITY_SECRET = "doctor-identity-secret-6b6b"
REDIS_PASSWORD = "doctor-redis-password-e1d2"
SECRETS = (TELEGRAM_TOKEN, TELEGRAM_TOKEN.partition(":")[2], SLACK_BOT_TOKEN, SLACK_APP_TOKEN,
           SIGNING_SECRET, WEBHOOK_SECRET, WEBCHAT_SECRET, IDENTITY_SECRET, REDIS_PASSWORD)
WEBHOOK_URL = "https://bot.example.com/telegram/webhook"
LINE = re.compile(r"(ok   |warn |FAIL ) [a-z][a-z ]*: \S.*|  fix: \S.*")


@dataclass(frozen=True, slots=True)
class Doctor:
    """What one run of `segue doctor` printed and returned."""

    code: int
    out: str

    def line(self, check: str) -> str:
        """The line of `check` (and its fix, if any); it must be there once."""
        found = [i for i, text in enumerate(self.lines) if re.match(
            rf"\S+ +{re.escape(check)}: ", text)]
        assert len(found) == 1, f"{check!r} in:\n{self.out}"
        i = found[0]
        fix = self.lines[i + 1] if i + 1 < len(self.lines) and self.lines[i + 1].startswith(
            "  fix:") else ""
        return self.lines[i] + ("\n" + fix if fix else "")

    def level(self, check: str) -> str:
        return self.line(check).split(" ", 1)[0]

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


RunDoctor = Callable[[dict[str, str]], Awaitable[Doctor]]


def assert_well_formed(ran: Doctor) -> None:
    assert ran.lines, "nothing printed"
    for text in ran.lines:
        assert LINE.fullmatch(text), f"not a doctor line: {text!r}"
    for secret in SECRETS:
        assert secret not in ran.out, f"a secret was printed:\n{ran.out}"
    failed = any(text.startswith("FAIL") for text in ran.lines)
    assert ran.code == (1 if failed else 0)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """An empty configuration: the environment says everything."""
    path = tmp_path / "segue.yml"
    path.write_text("{}\n")
    return path


@pytest.fixture
def doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           config_file: Path) -> RunDoctor:
    """Runs `main(["doctor", ...])` with exactly the given SEGUE_* environment."""
    for name in list(os.environ):
        if name.startswith("SEGUE_"):
            monkeypatch.delenv(name)

    async def run(env: dict[str, str]) -> Doctor:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        # In a thread: the command runs its own event loop, while the fakes
        # keep serving on this one.
        code = await asyncio.to_thread(main, ["doctor", "--config", str(config_file)])
        ran = Doctor(code, capsys.readouterr().out)
        assert_well_formed(ran)
        return ran

    return run


@pytest.fixture(scope="module")
def persistent_redis() -> Iterator[str]:
    """A Redis with AOF on, and a user that may not run CONFIG (as on a
    managed Redis)."""
    with redis_server() as url:
        with redis.Redis.from_url(url) as client:
            client.config_set("appendonly", "yes")
            client.acl_setuser("doctor", enabled=True, passwords=[f"+{REDIS_PASSWORD}"],
                               keys=["*"], commands=["+@all", "-config"])
        yield url


@pytest.fixture(scope="module")
def forgetful_redis() -> Iterator[str]:
    """A Redis that keeps nothing across a restart and evicts keys when full."""
    with redis_server() as url:
        with redis.Redis.from_url(url) as client:
            client.config_set("appendonly", "no")
            client.config_set("save", "")
            client.config_set("maxmemory-policy", "allkeys-lru")
        yield url


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(token=TELEGRAM_TOKEN) as fake:
        yield fake


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(token=SLACK_BOT_TOKEN, app_token=SLACK_APP_TOKEN) as fake:
        yield fake


def web_chat_env() -> dict[str, str]:
    return {"SEGUE_WEBCHAT_SECRET": WEBCHAT_SECRET,
            "SEGUE_WEBCHAT_IDENTITY_SECRET": IDENTITY_SECRET,
            "SEGUE_WEBCHAT_ALLOWED_ORIGINS": "https://shop.example.com",
            "SEGUE_PUBLIC_URL": "https://bot.example.com"}


def telegram_env(fake: FakeTelegram, **extra: str) -> dict[str, str]:
    return {"SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "SEGUE_TELEGRAM_API_URL": fake.url,
            "SEGUE_TELEGRAM_BOT_USERNAME": str(BOT_USER["username"]), **extra}


def webhook_env(fake: FakeTelegram, **extra: str) -> dict[str, str]:
    return telegram_env(fake, SEGUE_TELEGRAM_MODE="webhook",
                        SEGUE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
                        SEGUE_TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, **extra)


def slack_env(fake: FakeSlackApi, **extra: str) -> dict[str, str]:
    return {"SEGUE_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN, "SEGUE_SLACK_API_URL": fake.url,
            "SEGUE_SLACK_APP_TOKEN": SLACK_APP_TOKEN, **extra}


def with_password(url: str) -> str:
    return url.replace("redis://", f"redis://doctor:{REDIS_PASSWORD}@")


# A deployment with nothing wrong, and one with nothing configured.

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


async def test_nothing_configured_warns_of_the_memory_store_and_open_web_chat(
        doctor: RunDoctor) -> None:
    ran = await doctor({})
    assert ran.code == 0
    assert ran.line("store") == (
        "warn  store: SEGUE_REDIS_URL is not set: the in-memory store, so data is lost on "
        "restart\n  fix: set SEGUE_REDIS_URL to a Redis with persistence (redis://host:6379/0)")
    assert ran.level("web chat secret") == "warn"
    assert ran.level("web chat origins") == "warn"
    assert ran.level("dialogs") == "ok"
    assert "telegram" not in ran.out and "slack" not in ran.out


async def test_several_workers_without_redis_or_web_chat_secret_fail(doctor: RunDoctor) -> None:
    ran = await doctor({"SEGUE_WORKERS": "2"})
    assert ran.code == 1
    assert ran.level("store") == "FAIL" and ran.level("web chat secret") == "FAIL"


# The store.

async def test_redis_without_persistence_and_with_eviction_warns(
        doctor: RunDoctor, forgetful_redis: str) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": forgetful_redis, **web_chat_env()})
    assert ran.code == 0
    assert ran.level("store") == "ok"
    assert ran.line("store persistence").startswith(
        "warn  store persistence: neither AOF nor RDB snapshots")
    assert "fix: CONFIG SET appendonly yes" in ran.line("store persistence")
    assert ran.line("store eviction").startswith(
        "warn  store eviction: maxmemory-policy allkeys-lru: when memory is full")


async def test_redis_snapshots_count_as_persistence(
        doctor: RunDoctor, forgetful_redis: str) -> None:
    with redis.Redis.from_url(forgetful_redis) as client:
        client.config_set("save", "3600 1")
        try:
            ran = await doctor({"SEGUE_REDIS_URL": forgetful_redis})
        finally:
            client.config_set("save", "")
    assert ran.line("store persistence") == "ok    store persistence: RDB snapshots (save 3600 1)"


async def test_a_redis_refusing_config_is_told_as_unreadable_without_its_password(
        doctor: RunDoctor, persistent_redis: str) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": with_password(persistent_redis), **web_chat_env()})
    assert ran.code == 0
    assert ran.level("store") == "ok"
    assert "redis://127.0.0.1:" in ran.line("store") and "doctor:" not in ran.out
    assert ran.line("store persistence").startswith(
        "warn  store persistence: cannot read (CONFIG GET refused: ")
    assert ran.level("store eviction") == "warn"


async def test_a_wrong_redis_password_fails_without_showing_it(
        doctor: RunDoctor, persistent_redis: str) -> None:
    url = with_password(persistent_redis).replace(REDIS_PASSWORD, REDIS_PASSWORD + "-wrong")
    ran = await doctor({"SEGUE_REDIS_URL": url})
    assert ran.code == 1
    assert ran.level("store") == "FAIL"
    assert REDIS_PASSWORD not in ran.out


async def test_an_unreachable_redis_fails_quickly(doctor: RunDoctor) -> None:
    port = free_port()
    started = time.monotonic()
    ran = await doctor({"SEGUE_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert time.monotonic() - started < 10
    assert ran.code == 1
    assert ran.line("store").startswith(
        f"FAIL  store: Redis at redis://127.0.0.1:{port}/0 does not answer: ")
    assert "fix: start Redis, or correct SEGUE_REDIS_URL" in ran.line("store")
    assert "store persistence" not in ran.out


async def test_a_silent_redis_does_not_hang_the_command(doctor: RunDoctor) -> None:
    # Accepts connections, never answers.
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        ran = await doctor({"SEGUE_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        assert time.monotonic() - started < 15
    finally:
        server.close()
        for writer in accepted:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()
    assert ran.code == 1
    assert "does not answer: no answer within 5 s" in ran.line("store")


async def test_a_redis_cluster_is_checked_on_every_primary(
        doctor: RunDoctor, cluster_url: str) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": cluster_url})
    assert re.search(r"store: Redis Cluster \d+\.\d+\.\d+ at redis\+cluster://", ran.line("store"))
    assert ran.level("store persistence") == "warn"  # the test cluster keeps nothing
    assert ran.level("store eviction") == "ok"


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


async def test_slack_over_http_names_the_request_url(
        doctor: RunDoctor, slack: FakeSlackApi) -> None:
    env = slack_env(slack, SEGUE_SLACK_SIGNING_SECRET=SIGNING_SECRET)
    del env["SEGUE_SLACK_APP_TOKEN"]
    ran = await doctor({**env, **web_chat_env()})
    assert ran.code == 0
    assert ("ok    slack events: HTTP events: the app's Request URL must be "
            "https://bot.example.com/slack/events") in ran.line("slack events")
    assert [c.method for c in slack.calls] == ["auth.test"]


# The clock, the web chat, the configuration and the dialogs.

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


async def test_plain_http_public_url_warns(doctor: RunDoctor) -> None:
    ran = await doctor({"SEGUE_PUBLIC_URL": "http://bot.example.com"})
    assert ran.line("public url").startswith(
        "warn  public url: http://bot.example.com is not https")


async def test_a_config_problem_is_one_failing_check_each(
        doctor: RunDoctor, config_file: Path) -> None:
    config_file.write_text("port: 99999\nno_such_setting: 1\n")
    ran = await doctor({"SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN})
    assert ran.code == 1
    fails = [text for text in ran.lines if text.startswith("FAIL")]
    assert len(fails) == 2, ran.out
    assert f"FAIL  config: {config_file}:1: port: " in ran.out
    assert f"FAIL  config: {config_file}:2: no_such_setting: " in ran.out


async def test_a_dialog_problem_fails(doctor: RunDoctor, tmp_path: Path) -> None:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "flows.yml").write_text("flows: [unclosed\n")
    ran = await doctor({"SEGUE_DIALOGS_DIR": str(dialogs)})
    assert ran.code == 1
    assert re.search(r"^FAIL  dialogs: .*flows\.yml", ran.out, re.MULTILINE)


# The command as a process.

async def test_python_m_bot_doctor_prints_no_secret_and_exits_1_on_failure(
        persistent_redis: str, telegram: FakeTelegram, slack: FakeSlackApi,
        config_file: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEGUE_")}
    env.update({"SEGUE_REDIS_URL": with_password(persistent_redis),
                **webhook_env(telegram, SEGUE_TELEGRAM_BOT_USERNAME="another_bot"),
                **slack_env(slack, SEGUE_SLACK_SIGNING_SECRET=SIGNING_SECRET),
                **web_chat_env()})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "doctor", "--config", str(config_file), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    ran = Doctor(proc.returncode or 0, out.decode())
    assert_well_formed(ran)
    assert ran.code == 1
    assert [text.split(":")[0] for text in ran.lines if not text.startswith("  fix")] == [
        "ok    config", "ok    store", "warn  store persistence", "warn  store eviction",
        "ok    telegram token", "FAIL  telegram username", "warn  telegram webhook",
        "ok    telegram delivery", "ok    slack token", "ok    slack socket mode",
        "ok    web chat secret", "ok    web chat origins", "ok    public url",
        "ok    dialogs", "ok    clock"]
    for secret in SECRETS:
        assert secret not in err.decode()
