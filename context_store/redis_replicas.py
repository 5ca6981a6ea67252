"""Writes acknowledged only once replicas hold them (`?replicas=N` on a
`redis://` or `redis+sentinel://` URL).

Redis replicates asynchronously: a master answers a write before any
replica has it. If the master is then replaced (a Sentinel failover), what
the replica had not received is gone, and so is what the old master accepted
until it was told it is a replica now (Sentinel waits about ten seconds
before telling it). A message Segue acknowledged in that window would be
lost. With `replicas=N`, every write that acknowledges a customer's message
(the turn's save, a Slack event queued, an update parked, and the answer
that a message was processed already) is followed on the same connection by
`WAIT N <ms>`: Redis answers once N replicas hold everything that connection
wrote, or the time is up. Fewer than N is `StoreUnavailable`, so the message
is not acknowledged and the platform (or the web chat client) sends it again;
on the new master it is processed as new, once, since the old master's
attempt is gone with it.

The wait is on the connection that wrote, never on another: `WAIT` counts a
connection's own writes, and another connection may already be talking to a
different master.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.exceptions import NoScriptError

from bot.core.errors import StoreUnavailable
from context_store.redis_client import RedisClient, Script, recheck_master, run_redis

# The query parameters Segue reads itself (redis-py would refuse them).
_OPTIONS = ("replicas", "replica_wait_ms")


@dataclass(frozen=True, slots=True)
class Replication:
    """How many replicas must hold a write before it is acknowledged (0: do
    not wait), and for how long to wait for them."""

    replicas: int = 0
    wait_ms: int = 1000


def replication_of(url: str) -> tuple[str, Replication]:
    """The URL without Segue's own options, and what they say."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    ours = {name: value for name, value in query if name in _OPTIONS}
    if not ours:
        return url, Replication()
    rest = urlencode([(name, value) for name, value in query if name not in _OPTIONS])
    try:
        wanted = Replication(int(ours.get("replicas", 0)), int(ours.get("replica_wait_ms", 1000)))
    except ValueError:
        raise ValueError("replicas and replica_wait_ms take whole numbers") from None
    if wanted.replicas < 0 or wanted.wait_ms <= 0:
        raise ValueError("replicas must be 0 or more, replica_wait_ms more than 0")
    return urlunsplit(parts._replace(query=rest)), wanted


class Replicated:
    """Writes followed by `WAIT` on their own connection (module docstring)."""

    def __init__(self, client: RedisClient, replication: Replication) -> None:
        self.client = client
        self.replication = replication

    @property
    def wanted(self) -> bool:
        return self.replication.replicas > 0

    async def script(self, script: Script, keys: list[str], args: list[Any]) -> Any:
        """Run `script`, then wait for the replicas; its answer."""
        for _ in range(2):
            answers = await self._then_wait(
                lambda pipe: pipe.evalsha(script.sha, len(keys), *keys, *args))
            if not isinstance(answers[0], NoScriptError):
                break
            await run_redis(self.client.script_load(script.script))
        return await self._checked(answers)

    async def commands(self, write: Callable[[Any], Any]) -> Any:
        """`write(pipe)` queues writes; run them, then wait for the replicas;
        the first one's answer."""
        return await self._checked(await self._then_wait(write))

    async def _then_wait(self, write: Callable[[Any], Any]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            write(pipe)
            pipe.execute_command("WAIT", self.replication.replicas, self.replication.wait_ms)
            return list(await run_redis(pipe.execute(raise_on_error=False)))

    async def _checked(self, answers: list[Any]) -> Any:
        *written, held = answers
        for answer in written:
            if isinstance(answer, Exception):
                await run_redis(_raised(answer))
        if isinstance(held, Exception) or int(held) < self.replication.replicas:
            # The replica may be the master now, this connection's server
            # the old one that will be told to follow it.
            await recheck_master(self.client)
            raise StoreUnavailable(
                f"written, but {held if isinstance(held, int) else 'no'} replica(s) of the "
                f"{self.replication.replicas} needed hold it after "
                f"{self.replication.wait_ms} ms")
        return written[0]


async def _raised(exc: Exception) -> None:
    raise exc
