"""`segue apikeys add NAME [--scope notify|read|admin]`, `segue apikeys list`,
`segue apikeys revoke NAME`: the public API's keys.

A new key is printed once, as the last line of the output; only its digest
is kept. Keys live in the configured Redis. With no Redis configured (the
embedded store), `add` prints a new key with the `SEGUE_API_KEYS` line to
give `segue run`, and `list` and `revoke` refuse (exit 2). Exit 3: the store
is unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.core.errors import BadInput, ConfigError, StoreUnavailable
from bot.core.settings import load_settings
from bot.outreach.keys import ApiKeys, check_name, new_secret
from bot.outreach.ports import SCOPES
from context_store import RedisContextStore


def add_apikey_commands(subparsers: Any) -> None:
    """Add `apikeys add|list|revoke` to the `segue` command's subparsers."""
    keys = subparsers.add_parser("apikeys", help="manage the public API's keys")
    keys_sub = keys.add_subparsers(dest="apikeys_command", required=True)
    add = keys_sub.add_parser("add", help="make a key; it is printed once, as the last line")
    add.add_argument("name", help="the key's name: letters, digits, _ . - (at most 64)")
    add.add_argument("--scope", choices=SCOPES, default="notify",
                     help="read: find customers; notify: also send and start flows "
                          "(default); admin: everything")
    listing = keys_sub.add_parser("list", help="the keys: name, scope, start of the key, made")
    revoke = keys_sub.add_parser("revoke", help="revoke a key at once")
    revoke.add_argument("name")
    for parser, run in ((add, _add), (listing, _list), (revoke, _revoke)):
        parser.add_argument("--config", type=Path,
                            help="YAML configuration (default config/segue.yml)")
        parser.set_defaults(func=run)


def _add(args: argparse.Namespace) -> int:
    async def run(keys: ApiKeys) -> int:
        key, secret = await keys.add(args.name, args.scope)
        print(f"API key {key.name!r} ({key.scope}) made; it is shown only now:")
        print(secret)
        return 0
    return _with_keys(args, run, without_redis=_add_for_the_configuration)


def _add_for_the_configuration(args: argparse.Namespace) -> int:
    """No Redis to keep the key: a key for the configuration instead."""
    check_name(args.name)
    secret = new_secret()
    print("SEGUE_REDIS_URL is not set, so this key is kept nowhere: give it to "
          "`segue run` in SEGUE_API_KEYS (name:key:scope, comma-separated):")
    print(f"SEGUE_API_KEYS={args.name}:{secret}:{args.scope}")
    print(f"API key {args.name!r} ({args.scope}); it is shown only now:")
    print(secret)
    return 0


def _list(args: argparse.Namespace) -> int:
    async def run(keys: ApiKeys) -> int:
        for key in await keys.list():
            made = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(key.created_at))
            print(f"{key.name}\t{key.scope}\t{key.hint}…\t{made}")
        return 0
    return _with_keys(args, run)


def _revoke(args: argparse.Namespace) -> int:
    async def run(keys: ApiKeys) -> int:
        if not await keys.revoke(args.name):
            print(f"segue: there is no key named {args.name!r} kept in Redis (a key given in "
                  "SEGUE_API_KEYS ends when it is taken out of that setting)", file=sys.stderr)
            return 2
        print(f"API key {args.name!r} revoked")
        return 0
    return _with_keys(args, run)


def _nothing_kept(args: argparse.Namespace) -> int:
    print("segue: SEGUE_REDIS_URL is not set: the embedded store keeps only the keys "
          "`segue run` is given in SEGUE_API_KEYS=name:key[:scope],... (see the "
          "configuration), so there is nothing here to list or revoke", file=sys.stderr)
    return 2


def _with_keys(args: argparse.Namespace, run: Callable[[ApiKeys], Awaitable[int]], *,
               without_redis: Callable[[argparse.Namespace], int] = _nothing_kept) -> int:
    """`run` on the keys in the configured Redis, or `without_redis`; a bad
    configuration or name exits 2, an unreachable Redis 3."""
    try:
        settings = load_settings(args.config)
        if settings.redis_url is None:
            return without_redis(args)
        url = settings.redis_url.get_secret_value()

        async def opened() -> int:
            store = RedisContextStore.from_url(url)
            try:
                return await run(ApiKeys(store.agent_store()))
            finally:
                await store.close()
        return asyncio.run(opened())
    except ConfigError as exc:
        print(f"segue: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except BadInput as exc:
        print(f"segue: {exc.message}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"segue: {exc}", file=sys.stderr)
        return 3
