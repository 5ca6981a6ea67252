"""Helpers for the export and erase tests (no tests here): `segue customers`
as an operator runs it, and the whole Redis keyspace read back as text."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Ran:
    status: int
    out: str
    err: str


async def segue_customers(*args: str, redis_url: str | None) -> Ran:
    """`segue customers ARGS` in a process of its own, on `redis_url` (or,
    with None, with no Redis configured)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    if redis_url is not None:
        env["SEGUE_REDIS_URL"] = redis_url
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "customers", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())


async def keyspace(client: aioredis.Redis, match: str = "*") -> dict[str, str]:
    """Every key matching `match` and everything in it, as JSON text."""
    found: dict[str, str] = {}
    async for key in client.scan_iter(match=match, count=1000):
        kind = await client.type(key)
        if kind == "string":
            value: object = await client.get(key)
        elif kind == "hash":
            value = await client.hgetall(key)
        elif kind == "list":
            value = await client.lrange(key, 0, -1)
        elif kind == "set":
            value = sorted(await client.smembers(key))
        elif kind == "zset":
            value = await client.zrange(key, 0, -1, withscores=True)
        elif kind == "stream":
            value = await client.xrange(key)
        else:
            raise AssertionError(f"{key} is a {kind}")
        found[key] = json.dumps(value)
    return found
