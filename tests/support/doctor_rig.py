"""`segue doctor` under test: running it in process with a given
environment, reading its lines back, the Redis servers and platform fakes
it is pointed at, and secrets distinctive enough that none can hide in the
output."""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.assembly.cli import main
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.telegram_api import BOT_USER, FakeTelegram
from tests.support.redis_server import redis_server

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
# Every line the command prints: a check, or the fix under it.
LINE = re.compile(r"(ok   |warn |FAIL ) [a-z][a-z ]*: \S.*|  fix: \S.*")


@dataclass(frozen=True, slots=True)
class Doctor:
    """What one run of `segue doctor` printed and returned."""

    code: int
    out: str

    def line(self, check: str) -> str:
        """The line of `check` (and its fix, if any); it must be there once."""
        found = [i for i, text in enumerate(self.lines)
                 if re.match(rf"\S+ +{re.escape(check)}: ", text)]
        assert len(found) == 1, f"{check!r} in:\n{self.out}"
        i = found[0]
        has_fix = i + 1 < len(self.lines) and self.lines[i + 1].startswith("  fix:")
        return self.lines[i] + ("\n" + self.lines[i + 1] if has_fix else "")

    def level(self, check: str) -> str:
        return self.line(check).split(" ", 1)[0]

    @property
    def lines(self) -> list[str]:
        return self.out.splitlines()


# Runs the command with exactly this SEGUE_* environment.
RunDoctor = Callable[[dict[str, str]], Awaitable[Doctor]]


def assert_well_formed(ran: Doctor) -> None:
    """Every line a check or a fix, no secret anywhere, exit 1 exactly when
    a check failed."""
    assert ran.lines, "nothing printed"
    for text in ran.lines:
        assert LINE.fullmatch(text), f"not a doctor line: {text!r}"
    for secret in SECRETS:
        assert secret not in ran.out, f"a secret was printed:\n{ran.out}"
    failed = any(text.startswith("FAIL") for text in ran.lines)
    assert ran.code == (1 if failed else 0)


def empty_config(folder: Path) -> Path:
    """An empty configuration file: the environment says everything."""
    path = folder / "segue.yml"
    path.write_text("{}\n")
    return path


def doctor_runner(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                  config_file: Path) -> RunDoctor:
    """`main(["doctor", "--config", config_file])` in process."""
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


@contextmanager
def persistent_redis_server() -> Iterator[str]:
    """A Redis with AOF on, and a user `doctor` (REDIS_PASSWORD) that may
    not run CONFIG, as on a managed Redis."""
    with redis_server() as url:
        with redis.Redis.from_url(url) as client:
            client.config_set("appendonly", "yes")
            client.acl_setuser("doctor", enabled=True, passwords=[f"+{REDIS_PASSWORD}"],
                               keys=["*"], commands=["+@all", "-config"])
        yield url


def with_password(url: str) -> str:
    """The URL of the persistent Redis as its user `doctor`."""
    return url.replace("redis://", f"redis://doctor:{REDIS_PASSWORD}@")


def telegram_fake() -> FakeTelegram:
    return FakeTelegram(token=TELEGRAM_TOKEN)


def slack_fake() -> FakeSlackApi:
    return FakeSlackApi(token=SLACK_BOT_TOKEN, app_token=SLACK_APP_TOKEN)


def web_chat_env() -> dict[str, str]:
    return {"SEGUE_WEBCHAT_SECRET": WEBCHAT_SECRET,
            "SEGUE_WEBCHAT_IDENTITY_SECRET": IDENTITY_SECRET,
            "SEGUE_WEBCHAT_ALLOWED_ORIGINS": "https://shop.example.com",
            "SEGUE_PUBLIC_URL": "https://bot.example.com"}


def telegram_env(fake: FakeTelegram, **extra: str) -> dict[str, str]:
    """Polling with the right token and username."""
    return {"SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN, "SEGUE_TELEGRAM_API_URL": fake.url,
            "SEGUE_TELEGRAM_BOT_USERNAME": str(BOT_USER["username"]), **extra}


def webhook_env(fake: FakeTelegram, **extra: str) -> dict[str, str]:
    """Webhook mode, registering WEBHOOK_URL at start."""
    return telegram_env(fake, SEGUE_TELEGRAM_MODE="webhook",
                        SEGUE_TELEGRAM_WEBHOOK_SECRET=WEBHOOK_SECRET,
                        SEGUE_TELEGRAM_WEBHOOK_URL=WEBHOOK_URL, **extra)


def slack_env(fake: FakeSlackApi, **extra: str) -> dict[str, str]:
    """Socket Mode with the right tokens."""
    return {"SEGUE_SLACK_BOT_TOKEN": SLACK_BOT_TOKEN, "SEGUE_SLACK_API_URL": fake.url,
            "SEGUE_SLACK_APP_TOKEN": SLACK_APP_TOKEN, **extra}
