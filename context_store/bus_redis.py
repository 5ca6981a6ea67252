"""The bus across workers: Redis pub/sub (see `bot.core.bus` for why at most once is right).

On one Redis, `PUBLISH` and one subscriber connection per worker for every
topic. On a Redis Cluster, sharded pub/sub (`SPUBLISH` / `SSUBSCRIBE`): a
message goes only to the nodes serving its channel's slot, not to every
node. redis-py's cluster pub/sub polls its nodes' connections one after
another, so an event on one node can wait out the read timeout on another;
instead each channel here has its own reader on a connection to the node
that serves it (`context_store.bus_sharded`), subscribing again there when
the slot moves (Redis takes the subscription away) or the node is lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from bot.core.backoff import Doubling
from bot.core.bus import Event, Handler, Handlers
from context_store.bus_sharded import CONFIRM_SECONDS, ShardReader
from context_store.redis_client import RedisClient

log = logging.getLogger(__name__)

# Subscribing again after the connection to Redis was lost.
RESUBSCRIBE = Doubling(first=0.1, cap=5.0)


class Reader(Protocol):
    """One subscriber connection: subscribed, read from, closed after a failure."""

    @property
    def subscribed(self) -> bool: ...

    async def subscribe(self) -> None:
        """Subscribe and wait for Redis to confirm (raise if it does not)."""

    async def next_message(self) -> tuple[str, str] | None:
        """(channel, data) of the next message, None after a second without
        one; raise if the subscription is lost."""

    async def close(self) -> None: ...


class _PlainReader:
    """Every channel on one connection to the one Redis."""

    def __init__(self, client: aioredis.Redis, channels: list[str]) -> None:
        self.client = client
        self.channels = channels
        self._pubsub: Any = None

    @property
    def subscribed(self) -> bool:
        return self._pubsub is not None

    async def subscribe(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=False)
        self._pubsub = pubsub
        await pubsub.subscribe(*self.channels)
        pending = set(self.channels)
        # Wait for the confirmations: only then are later publications ours.
        while pending:
            message = await pubsub.get_message(timeout=CONFIRM_SECONDS)
            if message is None:
                raise TimeoutError("Redis did not confirm the bus subscription")
            if message["type"] == "subscribe":
                pending.discard(message["channel"])

    async def next_message(self) -> tuple[str, str] | None:
        message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
        if message is None or message.get("type") != "message":
            return None
        return str(message["channel"]), str(message["data"])

    async def close(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:  # already broken; nothing else to release
                log.debug("closing a broken bus subscription failed", exc_info=True)


class RedisBus:
    """Redis pub/sub on `<prefix>:bus:<topic>`: per worker, one subscriber
    connection (on a cluster, one per topic, to the node serving it)."""

    def __init__(self, client: RedisClient, *, prefix: str = "segue") -> None:
        self.client = client
        self.prefix = prefix
        self._handlers = Handlers()
        self._readers: list[Reader] = []
        self._tasks: list[asyncio.Task[None]] = []

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}:bus:{topic}"

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.add(topic, handler)

    async def publish(self, topic: str, event: Event) -> None:
        data = json.dumps(event, separators=(",", ":"))
        try:
            if isinstance(self.client, RedisCluster):
                await self.client.spublish(self._channel(topic), data)
            else:
                await self.client.publish(self._channel(topic), data)
        except Exception as exc:  # live events are best effort; the history has it
            log.warning("could not publish a %r event: %s", topic, exc)

    async def start(self) -> None:
        if not self._handlers.by_topic:
            return
        channels = [self._channel(t) for t in self._handlers.by_topic]
        if isinstance(self.client, RedisCluster):
            self._readers = [ShardReader(self.client, channel) for channel in channels]
        else:
            self._readers = [_PlainReader(self.client, channels)]
        for reader in self._readers:
            try:
                await reader.subscribe()
            except Exception as exc:
                # A worker starts while Redis is down (and answers 503
                # meanwhile); the reader keeps trying to subscribe.
                log.warning("bus not subscribed yet (%s); retrying in the background", exc)
                await reader.close()
        self._tasks = [asyncio.create_task(self._read(reader), name="segue-bus")
                       for reader in self._readers]

    async def _read(self, reader: Reader) -> None:
        prefix = f"{self.prefix}:bus:"
        delays = RESUBSCRIBE.delays()
        while True:
            try:
                if not reader.subscribed:
                    await reader.subscribe()
                message = await reader.next_message()
                delays = RESUBSCRIBE.delays()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus subscription lost (%s); subscribing again", exc)
                await reader.close()
                await asyncio.sleep(next(delays))
                continue
            if message is None:
                continue
            channel, data = message
            topic = channel.removeprefix(prefix)
            try:
                event = json.loads(data)
            except ValueError:
                log.warning("ignored a malformed %r event", topic)
                continue
            await self._handlers.dispatch(topic, event)

    async def stop(self) -> None:
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        for reader in self._readers:
            await reader.close()
        self._readers = []
