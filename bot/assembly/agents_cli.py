"""`segue agents add NAME [--role agent|admin] [--name DISPLAY] [--capacity N]`:
creates or replaces a console account; the password comes from stdin.
`--capacity` is how many open conversations automatic assignment gives the
agent (over `SEGUE_AGENT_CAPACITY`); without it an account keeps its own.

Accounts are kept in the configured Redis. With no Redis configured the
command refuses (exit 2): an account written to this command's own memory
would vanish when it exits, which would only look like success. Consoles on
the embedded store get their accounts from SEGUE_AGENTS at start-up instead.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from pathlib import Path
from typing import Any, TextIO

from bot.core.errors import ConfigError, StoreUnavailable
from bot.core.settings import load_settings
from bot.handoff.accounts import AgentAuth, AgentError
from bot.handoff.ports import ROLES
from context_store import RedisContextStore


def add_agent_commands(subparsers: Any) -> None:
    """Add `agents add` to the `segue` command's subparsers."""
    agents = subparsers.add_parser("agents", help="manage agent console accounts")
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    add = agents_sub.add_parser("add", help="create or replace an account (password on stdin)")
    add.add_argument("username", help="login name: a-z, 0-9, _ . - (at most 64)")
    add.add_argument("--role", choices=ROLES, default="agent")
    add.add_argument("--name", dest="display_name", help="name shown to customers")
    add.add_argument("--capacity", type=_capacity, default=None,
                     help="open conversations automatic assignment gives this agent "
                          "(0: none; default: SEGUE_AGENT_CAPACITY)")
    add.add_argument("--config", type=Path, help="YAML configuration (default config/segue.yml)")
    add.set_defaults(func=_add)


def _capacity(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if not 0 <= value <= 1000:
        raise argparse.ArgumentTypeError("a capacity is 0 to 1000")
    return value


def read_password(stdin: TextIO) -> str:
    """No echo on a terminal; otherwise the first line (for scripts and pipes)."""
    if stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != first:
            raise AgentError("bad_password", "the passwords differ")
        return first
    return stdin.readline().rstrip("\r\n")


def _add(args: argparse.Namespace) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"segue: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    if settings.redis_url is None:
        print("segue: SEGUE_REDIS_URL is not set, so there is nowhere lasting to keep the "
              "account (the in-memory store ends with this command). Set SEGUE_REDIS_URL, or "
              "give accounts to `segue run` with SEGUE_AGENTS=name:password[:role],...",
              file=sys.stderr)
        return 2
    try:
        password = read_password(sys.stdin)
    except (AgentError, EOFError) as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return 2
    url = settings.redis_url.get_secret_value()
    try:
        asyncio.run(_store_account(url, args.username, password, args.role, args.display_name,
                                   args.capacity))
    except AgentError as exc:
        print(f"segue: {exc.message}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return 3
    capacity = "" if args.capacity is None else f", capacity {args.capacity}"
    print(f"agent {args.username!r} ({args.role}{capacity}) saved")
    return 0


async def _store_account(url: str, username: str, password: str, role: Any,
                         display_name: str | None, capacity: int | None) -> None:
    store = RedisContextStore.from_url(url)
    try:
        auth = AgentAuth(store.agent_store())
        await auth.add(username, password, role=role, display_name=display_name,
                       capacity=capacity)
    finally:
        await store.close()
