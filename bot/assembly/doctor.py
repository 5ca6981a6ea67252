"""`segue doctor [--config FILE]`: checks a deployment from the inside.

It loads the settings as `segue check` does, then asks Redis, Telegram and
Slack what they hold, and prints one line per check:

    ok|warn|FAIL  <check>: <what it found>
      fix: <what to do>          (warnings and failures only)

It exits 1 if any check failed, 0 otherwise: warnings do not fail. No
secret of the settings is ever printed, not even inside an error message
(`Report.redact`)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.assembly.doctor_checks import (
    Report,
    check_clock,
    check_dialog_files,
    check_web_chat,
    config_problems,
    secrets_in_environment,
    secrets_of,
)
from bot.assembly.doctor_checks_slack import check_slack
from bot.assembly.doctor_checks_store import check_store
from bot.assembly.doctor_checks_telegram import check_telegram
from bot.core.settings import DEFAULT_CONFIG, Settings, check_settings

# `segue doctor --help` lists them; keep in step with the checks below.
CHECKS = """\
checks, in the order printed:
  config              the YAML file and the SEGUE_* environment load
  store               Redis answers (one Redis, Sentinel or a cluster), or the
                      in-memory store is in use
  store persistence   AOF or RDB snapshots on every primary
  store eviction      maxmemory-policy noeviction
  store replicas      with ?replicas=N in the URL: N replicas connected
  telegram token      getMe accepts SEGUE_TELEGRAM_TOKEN
  telegram username   SEGUE_TELEGRAM_BOT_USERNAME is the token's bot
  telegram webhook    getWebhookInfo: the webhook fits the mode
  telegram delivery   webhook mode: updates waiting, the last delivery error
  slack token         auth.test accepts SEGUE_SLACK_BOT_TOKEN
  slack socket mode   apps.connections.open accepts SEGUE_SLACK_APP_TOKEN
  slack events        without an app token: the Request URL to give Slack
  web chat secret     SEGUE_WEBCHAT_SECRET is set
  web chat origins    SEGUE_WEBCHAT_ALLOWED_ORIGINS is set
  public url          SEGUE_PUBLIC_URL is https
  dialogs             the dialog files load and cross-check
  clock               this clock against Redis TIME and the platforms' Date

Telegram and Slack are checked only when their tokens are set. A Telegram
webhook secret and a Slack signing secret cannot be read back from the
platforms, so they are not checked. No secret is ever printed."""


def add_doctor_command(subparsers: Any) -> None:
    """Add `doctor` to the `segue` command's subparsers."""
    doctor = subparsers.add_parser(
        "doctor", help="check a deployment: store, credentials, webhook (one line per check)",
        description="Check a deployment from the inside, one line per check: ok, warn or\n"
        "FAIL, with a fix: line under each warning or failure. Exit 1 if a check failed.",
        epilog=CHECKS, formatter_class=argparse.RawDescriptionHelpFormatter)
    doctor.add_argument("--config", type=Path,
                        help="YAML configuration (default config/segue.yml)")
    doctor.set_defaults(func=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    return doctor(args.config, sys.stdout)


def doctor(config: Path | None, out: TextIO) -> int:
    """Run every check, printing to `out`; the exit code."""
    settings, problems = check_settings(config)
    if settings is None:
        report = Report(out, secrets_in_environment())
        config_problems(report, problems)
    else:
        report = Report(out, secrets_of(settings))
        path = config or DEFAULT_CONFIG
        report.ok("config", f"{path} and the SEGUE_* environment load" if path.exists()
                  else f"no {path}: the SEGUE_* environment loads")
        asyncio.run(_remote_and_local(report, settings))
    return 1 if report.failed else 0


async def _remote_and_local(report: Report, settings: Settings) -> None:
    await check_store(report, settings)
    await check_telegram(report, settings)
    await check_slack(report, settings)
    check_web_chat(report, settings)
    check_dialog_files(report, settings)
    # Last: it compares with what the checks above read.
    check_clock(report)
