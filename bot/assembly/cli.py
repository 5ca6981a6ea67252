"""The `segue` command: run, check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bot.assembly.agents_cli import add_agent_commands
from bot.assembly.apikeys_cli import add_apikey_commands
from bot.assembly.customers_cli import add_customer_commands
from bot.assembly.doctor import add_doctor_command

# Importable from here as before (benchmarks build their loop with it).
from bot.assembly.serving import event_loop_factory as event_loop_factory
from bot.assembly.serving import run_until_stopped
from bot.assembly.workers import run_workers, workers_refused
from bot.core.errors import ConfigError
from bot.core.settings import MAX_WORKERS, Settings, check_settings, load_settings
from dialogs.check import check_dialogs


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    return int(args.func(args))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="segue", description="Omnichannel conversation bot.")
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="serve every enabled connector")
    run.add_argument("--host", help="address to listen on (default from config: 127.0.0.1)")
    run.add_argument("--port", type=int, help="port to listen on (default from config: 8080)")
    run.add_argument("--config", type=Path, help="YAML configuration (default config/segue.yml)")
    run.add_argument("--workers", type=_worker_count, metavar="N",
                     help="worker processes sharing the port, supervised (default from "
                          "config: 1); more than one needs SEGUE_REDIS_URL")
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="validate configuration and dialogs")
    check.add_argument("--config", type=Path, help="YAML configuration (default config/segue.yml)")
    check.set_defaults(func=_check)

    add_agent_commands(sub)
    add_customer_commands(sub)
    add_apikey_commands(sub)
    add_doctor_command(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"segue: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port),
                                   ("workers", args.workers)) if v is not None}
    settings = settings.model_copy(update=overrides)
    if settings.workers == 1:
        # One process, no supervisor: exactly `segue run` as it always was.
        return run_until_stopped(settings)
    refusal = workers_refused(settings)
    if refusal is not None:
        print(f"segue: {refusal}", file=sys.stderr)
        return 2
    return run_workers(settings)


def _worker_count(text: str) -> int:
    count = int(text)
    if not 1 <= count <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_WORKERS}")
    return count


def _check(args: argparse.Namespace) -> int:
    settings, problems = check_settings(args.config)
    if settings is not None:
        problems.extend(_check_dialogs(settings))
    for problem in problems:
        print(problem, file=sys.stderr)
    errors = [p for p in problems if not getattr(p, "warning", False)]
    warnings = len(problems) - len(errors)
    if errors:
        also = f" and {warnings} warning(s)" if warnings else ""
        print(f"{len(errors)} error(s){also}", file=sys.stderr)
        return 1
    print(f"configuration OK, {warnings} warning(s)" if warnings else "configuration OK")
    return 0


def _check_dialogs(settings: Settings) -> list:  # type: ignore[type-arg]
    _, problems = check_dialogs(
        settings.dialogs_dir, in_process_actions=settings.action_server_url is None
    )
    return problems
