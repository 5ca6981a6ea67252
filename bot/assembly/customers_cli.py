"""`segue customers export ID` and `segue customers erase ID`: a customer's
data on request, from the configured Redis.

`export` prints one JSON document of everything kept about the customer
(the same as `GET /agent/api/customers/{id}/export`). `erase` removes it all
(see `TurnStore.erase`), takes the customer off the handoff queue and tells
the agents' consoles. Exit status: 0 done, 2 no such customer (or nothing
to read: no Redis configured), 3 the store did not answer.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from bot.assembly.app import SegueStore, open_store
from bot.assembly.handoff import build_desk
from bot.core.delivery import Senders
from bot.core.errors import ConfigError, StoreUnavailable
from bot.core.locked_state import CustomerLocks, LockOptions
from bot.core.privacy import erasable, erase_customer, export_customer, exportable
from bot.core.rate_limits import RateLimiter
from bot.core.settings import Settings, load_settings

UNKNOWN = 2
UNAVAILABLE = 3

Action = Callable[[Settings, SegueStore, str], Awaitable[bool]]


def add_customer_commands(subparsers: Any) -> None:
    """Add `customers export` and `customers erase` to the `segue` command."""
    customers = subparsers.add_parser("customers", help="a customer's data, on their request")
    sub = customers.add_subparsers(dest="customers_command", required=True)
    export = sub.add_parser("export", help="print everything kept about a customer, as JSON")
    erase = sub.add_parser("erase", help="erase everything kept about a customer")
    for command, func in ((export, _export), (erase, _erase)):
        command.add_argument("customer", help="the customer id (as the agent console shows it)")
        command.add_argument("--config", type=Path,
                             help="YAML configuration (default config/segue.yml)")
        command.set_defaults(func=func)


def _export(args: argparse.Namespace) -> int:
    return _with_store(args, _print_export)


def _erase(args: argparse.Namespace) -> int:
    return _with_store(args, _do_erase)


async def _print_export(settings: Settings, store: SegueStore, customer: str) -> bool:
    document = await export_customer(exportable(store), customer, history_max=settings.history_max)
    if document is None:
        return False
    sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.flush()
    return True


async def _do_erase(settings: Settings, store: SegueStore, customer: str) -> bool:
    # The desk takes erased customers off the queue and the claims, and
    # tells every worker's consoles over the bus.
    locks = CustomerLocks(store, LockOptions(ttl_seconds=settings.lock_ttl_seconds,
                                             wait_seconds=settings.lock_wait_seconds))
    desk = build_desk(settings, store=store, locks=locks, senders=Senders(),
                      limiter=RateLimiter(store), agents=store.agent_store(), bus=store.bus())
    if not await erase_customer(erasable(store), customer, forget=desk.forget,
                                events=desk.events):
        return False
    print(f"customer {customer} erased")
    return True


def _with_store(args: argparse.Namespace, action: Action) -> int:
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"segue: invalid configuration:\n{exc}", file=sys.stderr)
        return UNKNOWN
    if settings.redis_url is None:
        print("segue: SEGUE_REDIS_URL is not set: without Redis, Segue keeps customers only "
              "in the memory of `segue run`, which this command cannot read", file=sys.stderr)
        return UNKNOWN
    try:
        found = asyncio.run(_run(settings, action, args.customer))
    except StoreUnavailable as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return UNAVAILABLE
    if not found:
        print(f"segue: no customer {args.customer!r}: nothing is kept under that id (it may "
              "have been erased, or joined into another customer)", file=sys.stderr)
        return UNKNOWN
    return 0


async def _run(settings: Settings, action: Action, customer: str) -> bool:
    store = await open_store(settings)
    try:
        return await action(settings, store, customer)
    finally:
        await store.close()
