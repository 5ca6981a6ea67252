"""The `segue` command: run, check."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path

from bot.assembly.agents_cli import add_agent_commands
from bot.assembly.app import create_app
from bot.assembly.customers_cli import add_customer_commands
from bot.assembly.http_server import start_http_server
from bot.assembly.log_setup import setup_logging
from bot.core.errors import ConfigError, SegueError, StoreUnavailable
from bot.core.settings import Settings, check_settings, load_settings
from dialogs.check import check_dialogs

log = logging.getLogger("segue")


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
    run.set_defaults(func=_run)

    check = sub.add_parser("check", help="validate configuration and dialogs")
    check.add_argument("--config", type=Path, help="YAML configuration (default config/segue.yml)")
    check.set_defaults(func=_check)

    add_agent_commands(sub)
    add_customer_commands(sub)
    return parser


def _run(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"segue: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in (("host", args.host), ("port", args.port)) if v is not None}
    settings = settings.model_copy(update=overrides)
    setup_logging(settings)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(settings))
    except StoreUnavailable as exc:
        log.error("cannot start: %s", exc)
        return 3
    except SegueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    return 0


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (not on Windows): it roughly halves the
    event loop's own cost per WebSocket frame and Redis call."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def serve(settings: Settings) -> None:
    """Serve until SIGINT or SIGTERM, then shut down cleanly."""
    app = await create_app(settings)
    runner = await start_http_server(app, settings, settings.host, settings.port)
    for address in runner.addresses:
        host, port = address[0], address[1]
        log.info("Segue is serving on http://%s:%d/ (web chat at /webchat/)", host, port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopped.set)
    try:
        await stopped.wait()
    finally:
        log.info("shutting down")
        await runner.cleanup()


def _check(args: argparse.Namespace) -> int:
    settings, problems = check_settings(args.config)
    if settings is not None:
        problems.extend(_check_dialogs(settings))
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} error(s)", file=sys.stderr)
        return 1
    print("configuration OK")
    return 0


def _check_dialogs(settings: Settings) -> list:  # type: ignore[type-arg]
    _, problems = check_dialogs(
        settings.dialogs_dir, in_process_actions=settings.action_server_url is None
    )
    return problems
