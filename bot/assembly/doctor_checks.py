"""What `segue doctor` finds, how it is told, and the checks that need no
network: the configuration, the web chat settings, the dialogs, and the
clock compared with what the remote checks read."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Literal, TextIO
from urllib.parse import unquote

from bot.core.settings import ConfigProblem, Settings
from dialogs.check import check_dialogs

Level = Literal["ok", "warn", "FAIL"]

# Past this a warning: signed links and resume tokens are checked against
# this clock, and Slack refuses request signatures older than five minutes.
CLOCK_WARN_SECONDS = 5.0
CLOCK_FAIL_SECONDS = 300.0
REDACTED = "[secret]"
# Shorter values are not worth hunting for in the output: they would mask
# ordinary words while adding no protection.
_MIN_SECRET_LENGTH = 4


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report, and for a warning or failure what to do."""

    level: Level
    check: str
    found: str
    fix: str | None = None


@dataclass(frozen=True, slots=True)
class ClockReading:
    """How far a remote clock is from this one (remote minus local)."""

    source: str
    offset_seconds: float


@dataclass(slots=True)
class Report:
    """The findings so far, printed as they come (a slow check shows what
    was already found), with every secret of the settings masked."""

    out: TextIO
    secrets: tuple[str, ...] = ()
    findings: list[Finding] = field(default_factory=list)
    clocks: list[ClockReading] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)
        line = f"{finding.level:<5} {finding.check}: {finding.found}"
        if finding.level != "ok" and finding.fix:
            line += f"\n  fix: {finding.fix}"
        print(self.redact(line), file=self.out, flush=True)

    def ok(self, check: str, found: str) -> None:
        self.add(Finding("ok", check, found))

    def warn(self, check: str, found: str, fix: str) -> None:
        self.add(Finding("warn", check, found, fix))

    def fail(self, check: str, found: str, fix: str) -> None:
        self.add(Finding("FAIL", check, found, fix))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    @property
    def failed(self) -> bool:
        return any(f.level == "FAIL" for f in self.findings)


def secrets_of(settings: Settings) -> tuple[str, ...]:
    """Every secret value the output must never show, longest first (so a
    secret holding another is masked whole): each secret setting, the
    password inside the Redis URL, and the part of the bot token after the
    bot's id (the id itself is public)."""
    found: set[str] = set()
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        # The Redis URL is shown, but never its password (below).
        if hasattr(value, "get_secret_value") and name != "redis_url":
            found.add(value.get_secret_value())
    if settings.redis_url is not None:
        password = url_password(settings.redis_url.get_secret_value())
        if password:
            found.update({password, unquote(password)})
    if settings.telegram_token is not None:
        found.add(settings.telegram_token.get_secret_value().partition(":")[2])
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET_LENGTH),
                        key=len, reverse=True))


def secrets_in_environment() -> tuple[str, ...]:
    """The secret settings as the environment gives them, for when the
    settings do not load (a problem's message may quote a value)."""
    found = set()
    for name, spec in Settings.model_fields.items():
        value = os.environ.get(f"SEGUE_{name.upper()}")
        if value is not None and "SecretStr" in str(spec.annotation):
            found.add(value)
            found.add(url_password(value) or "")
    return tuple(sorted((s for s in found if len(s) >= _MIN_SECRET_LENGTH),
                        key=len, reverse=True))


def url_password(url: str) -> str | None:
    """The password of `scheme://[user]:password@host...` or of a
    `?password=...` option, as written."""
    option = re.search(r"[?&]password=([^&#]+)", url)
    if option is not None:
        return option.group(1)
    rest = url.partition("://")[2]
    auth, at, _ = rest.rpartition("@")
    if not at or ":" not in auth:
        return None
    return auth.partition(":")[2] or None


def config_problems(report: Report, problems: list[ConfigProblem]) -> None:
    for problem in problems:
        report.fail("config", str(problem),
                    "correct that setting (`segue check` lists the same problems)")


def check_web_chat(report: Report, settings: Settings) -> None:
    if settings.webchat_secret is not None:
        report.ok("web chat secret", "set: sessions outlive a restart and every worker "
                  "verifies them")
    else:
        # `segue run` makes one up at start and gives it to all its workers
        # (bot.assembly.workers): they verify each other's sessions, but a
        # restart makes a new one.
        workers = (f"`segue run` gives its {settings.workers} workers one" if settings.workers > 1
                   else "`segue run` makes one up")
        report.warn("web chat secret", f"SEGUE_WEBCHAT_SECRET is not set: {workers} at "
                    "random, so web chat sessions and resume links end when it restarts",
                    "set SEGUE_WEBCHAT_SECRET to a long random value "
                    "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if settings.webchat_allowed_origins:
        origins = [o.strip() for o in settings.webchat_allowed_origins.split(",") if o.strip()]
        report.ok("web chat origins", "only " + ", ".join(origins))
    else:
        report.warn("web chat origins", "SEGUE_WEBCHAT_ALLOWED_ORIGINS is not set: any site "
                    "may embed the web chat", "set SEGUE_WEBCHAT_ALLOWED_ORIGINS to the "
                    "origins of the pages that embed it (https://www.example.com,...)")
    check_public_url(report, settings)


def check_public_url(report: Report, settings: Settings) -> None:
    url = settings.public_url
    if url is None:
        report.ok("public url", "SEGUE_PUBLIC_URL is not set: links to continue on the web "
                  "chat are only shown in the web chat itself")
    elif url.startswith("https://"):
        report.ok("public url", url)
    else:
        report.warn("public url", f"{url} is not https: links and the chat travel "
                    "unencrypted, and browsers refuse secure cookies on it",
                    "serve Segue behind TLS and set SEGUE_PUBLIC_URL to its https:// address")


def check_dialog_files(report: Report, settings: Settings) -> None:
    # The same validation as `segue check`.
    _, problems = check_dialogs(
        settings.dialogs_dir, in_process_actions=settings.action_server_url is None)
    if not problems:
        report.ok("dialogs", f"the files in {settings.dialogs_dir}/ load and cross-check "
                  "cleanly")
    for problem in problems:
        if problem.warning:
            report.warn("dialogs", str(problem),
                        "complete the dialog files (`segue check` lists the same)")
        else:
            report.fail("dialogs", str(problem),
                        "correct the dialog file at that line (`segue check` lists the same)")


def check_clock(report: Report) -> None:
    """One line for every clock compared: the worst decides the level."""
    if not report.clocks:
        report.ok("clock", "nothing to compare with (no Redis, Telegram or Slack answered)")
        return
    worst = max(abs(r.offset_seconds) for r in report.clocks)
    found = "this clock is " + ", ".join(
        f"{_seconds(r.offset_seconds)} {r.source}" for r in report.clocks)
    fix = ("synchronise this machine's clock (NTP: systemd-timesyncd or chrony); signed "
           "links and resume tokens expire by it, and Slack refuses signatures older than "
           "5 minutes")
    if worst > CLOCK_FAIL_SECONDS:
        report.fail("clock", found, fix)
    elif worst > CLOCK_WARN_SECONDS:
        report.warn("clock", found, fix)
    else:
        report.ok("clock", found)


def _seconds(offset: float) -> str:
    # Remote minus local: positive means this clock is behind.
    if abs(offset) < 0.1:
        return "within 0.1 s of"
    side = "behind" if offset > 0 else "ahead of"
    return f"{abs(offset):.1f} s {side}"
