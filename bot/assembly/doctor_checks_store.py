"""`segue doctor`'s store checks: Redis answers, keeps what it is given
across a restart, never evicts conversations to make room, and has the
replicas a `?replicas=N` URL waits for.

It talks to Redis through the stores' own client (`connect`: one Redis,
Sentinel or a cluster alike) without opening a store."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    RedisClusterException,
    RedisError,
    ResponseError,
)

from bot.assembly.doctor_checks import ClockReading, Report
from bot.core.settings import Settings
from context_store.redis_client import RedisClient, close_client, connect
from context_store.redis_replicas import Replication, replication_of

# A dead or silent Redis must not hang the command: each step gets this long.
STEP_TIMEOUT_SECONDS = 5.0
_REDIS_ERRORS = (RedisError, RedisClusterException, OSError, TimeoutError)
# Redis answered, with an error of its own (a database it does not have, a
# wrong password, a command the user may not run): its words say what is wrong.
_REDIS_REPLIES = (ResponseError, AuthenticationError, AuthorizationError)


async def check_store(report: Report, settings: Settings) -> None:
    if settings.redis_url is None:
        found = "SEGUE_REDIS_URL is not set: the in-memory store, so data is lost on restart"
        fix = "set SEGUE_REDIS_URL to a Redis with persistence (redis://host:6379/0)"
        if settings.workers > 1:
            report.fail("store", found + f", and {settings.workers} workers cannot share it",
                        fix)
        else:
            report.warn("store", found, fix)
        return
    url = settings.redis_url.get_secret_value()
    where = redis_address(url)
    try:
        # Segue's own options (`?replicas=N`) off, as the store reads them
        # (the settings refuse them on a cluster URL).
        url, replication = replication_of(url)
        client = connect(url)
    except ValueError as exc:
        report.fail("store", f"{where}: {exc}", "correct SEGUE_REDIS_URL")
        return
    try:
        await _check_redis(report, client, where, replication)
    finally:
        try:
            await asyncio.wait_for(close_client(client), STEP_TIMEOUT_SECONDS)
        except _REDIS_ERRORS:
            pass  # already reported as unreachable


async def _check_redis(report: Report, client: RedisClient, where: str,
                       replication: Replication) -> None:
    try:
        await _step(client.ping())
        info = await _step(client.info("server"))
    except _REDIS_REPLIES as exc:
        report.fail("store", f"Redis at {where} answers with an error: {_reason(exc)}",
                    "correct SEGUE_REDIS_URL (database number, user, password) or the "
                    "Redis user's rights")
        return
    except _REDIS_ERRORS as exc:
        report.fail("store", f"Redis at {where} does not answer: {_reason(exc)}",
                    "start Redis, or correct SEGUE_REDIS_URL (host, port, password)")
        return
    server = _one_node(info)
    mode = server.get("redis_mode", "standalone")
    kind = "Redis Cluster" if mode == "cluster" else "Redis"
    report.ok("store", f"{kind} {server.get('redis_version', '?')} at {where} answers")
    await _check_persistence(report, client)
    await _check_eviction(report, client)
    if replication.replicas:
        await _check_replicas(report, client, replication.replicas)
    await _read_clock(report, client)


async def _check_persistence(report: Report, client: RedisClient) -> None:
    try:
        aof = await _config(client, "appendonly")
        save = await _config(client, "save")
    except ResponseError as exc:
        report.warn("store persistence", f"cannot read (CONFIG GET refused: {_reason(exc)})",
                    "make sure the Redis service keeps AOF or RDB snapshots (managed Redis: "
                    "its persistence or backup setting)")
        return
    except _REDIS_ERRORS as exc:
        report.warn("store persistence", f"cannot read: {_reason(exc)}",
                    "make sure Redis keeps AOF or RDB snapshots")
        return
    forgetful = sorted(node for node in aof
                       if aof[node] != "yes" and not save.get(node, "").strip())
    if forgetful:
        on = f" on {', '.join(forgetful)}" if isinstance(client, RedisCluster) else ""
        report.warn("store persistence", f"neither AOF nor RDB snapshots{on}: a Redis "
                    "restart loses every conversation kept there",
                    "CONFIG SET appendonly yes (and in redis.conf: appendonly yes), or "
                    "configure `save` snapshots")
        return
    kept = []
    if all(v == "yes" for v in aof.values()):
        kept.append("AOF on")
    if all(v.strip() for v in save.values()):
        kept.append("RDB snapshots (save " + " | ".join(sorted(set(save.values()))) + ")")
    report.ok("store persistence", ", ".join(kept) or "AOF or RDB snapshots on every node")


async def _check_eviction(report: Report, client: RedisClient) -> None:
    try:
        policies = set((await _config(client, "maxmemory-policy")).values())
    except _REDIS_ERRORS as exc:
        report.warn("store eviction", f"cannot read maxmemory-policy: {_reason(exc)}",
                    "make sure the Redis service's eviction policy is noeviction")
        return
    if policies == {"noeviction"}:
        report.ok("store eviction", "maxmemory-policy noeviction")
        return
    report.warn("store eviction", "maxmemory-policy " + ", ".join(sorted(policies))
                + ": when memory is full Redis deletes keys, losing conversations",
                "CONFIG SET maxmemory-policy noeviction (and in redis.conf), and give "
                "Redis enough memory")


async def _check_replicas(report: Report, client: RedisClient, wanted: int) -> None:
    # Every acknowledged write waits (WAIT) for `wanted` replicas of the
    # master it went to: with fewer connected, every one is refused.
    try:
        info = await _step(client.info("replication"))
    except _REDIS_ERRORS as exc:
        report.warn("store replicas", f"cannot read INFO replication: {_reason(exc)}; the "
                    f"URL asks for {wanted}", f"make sure the master has at least {wanted} "
                    "replica(s) connected, or every message is refused")
        return
    connected = int(info.get("connected_slaves", 0))
    if connected >= wanted:
        report.ok("store replicas", f"{connected} connected to the master; the URL asks for "
                  f"{wanted} to hold each acknowledged write")
        return
    report.fail("store replicas", f"every message would be refused: Redis has {connected} "
                f"replica(s), the URL asks for {wanted}", "add replicas to the master, or "
                "lower ?replicas in SEGUE_REDIS_URL")


async def _read_clock(report: Report, client: RedisClient) -> None:
    try:
        before = time.time()
        seconds, micros = _one_node(await _step(client.time()))
        after = time.time()
    except _REDIS_ERRORS:
        return  # the clock is compared with what else answers
    remote = int(seconds) + int(micros) / 1e6
    report.clocks.append(ClockReading("Redis TIME", remote - (before + after) / 2))


async def _config(client: RedisClient, name: str) -> dict[str, str]:
    """The setting on every primary by its host:port (one value, under "",
    on a single Redis)."""
    if isinstance(client, RedisCluster):
        answers = await _step(client.config_get(name, target_nodes=RedisCluster.PRIMARIES))
        values = {node: str(a.get(name, "")) for node, a in answers.items()}
    else:
        values = {"": str((await _step(client.config_get(name))).get(name, ""))}
    if not values:
        raise ResponseError(f"no value for {name}")
    return values


async def _step(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, STEP_TIMEOUT_SECONDS)


def _one_node(answer: Any) -> Any:
    # A cluster client answers a node-wide command with one answer per node
    # when it was sent to several; a single node's answer otherwise.
    if isinstance(answer, dict) and answer and all(isinstance(v, dict | list | tuple)
                                                    for v in answer.values()):
        if "redis_version" not in answer:
            return next(iter(answer.values()))
    return answer


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {STEP_TIMEOUT_SECONDS:.0f} s"
    return str(exc) or type(exc).__name__


def redis_address(url: str) -> str:
    """The URL without its user and password, nor its options (a password
    may be one of them: `?password=...`)."""
    scheme, sep, rest = url.partition("://")
    where = rest.rpartition("@")[2].partition("?")[0]
    return f"{scheme}{sep}{where}"
