"""The bus across workers: Redis pub/sub (see `bot.core.bus` for why at most once is right)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from bot.core.backoff import Doubling
from bot.core.bus import Event, Handler, Handlers

log = logging.getLogger(__name__)

# Subscribing again after the connection to Redis was lost.
RESUBSCRIBE = Doubling(first=0.1, cap=5.0)


class RedisBus:
    """Redis pub/sub on `<prefix>:bus:<topic>`; one subscriber connection per worker."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "segue") -> None:
        self.client = client
        self.prefix = prefix
        self._handlers = Handlers()
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None

    def _channel(self, topic: str) -> str:
        return f"{self.prefix}:bus:{topic}"

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.add(topic, handler)

    async def publish(self, topic: str, event: Event) -> None:
        data = json.dumps(event, separators=(",", ":"))
        try:
            await self.client.publish(self._channel(topic), data)
        except Exception as exc:  # live events are best effort; the history has it
            log.warning("could not publish a %r event: %s", topic, exc)

    async def start(self) -> None:
        if not self._handlers.by_topic:
            return
        try:
            await self._subscribe()
        except Exception as exc:
            # A worker starts while Redis is down (and answers 503 meanwhile);
            # the reader keeps trying to subscribe.
            log.warning("bus not subscribed yet (%s); retrying in the background", exc)
            await self._close_pubsub()
        self._task = asyncio.create_task(self._read(), name="segue-bus")

    async def _subscribe(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=False)
        channels = [self._channel(t) for t in self._handlers.by_topic]
        self._pubsub = pubsub
        await pubsub.subscribe(*channels)
        pending = set(channels)
        # Wait for the confirmations: only then are later publications ours.
        while pending:
            message = await pubsub.get_message(timeout=5.0)
            if message is None:
                raise TimeoutError("Redis did not confirm the bus subscription")
            if message["type"] == "subscribe":
                pending.discard(message["channel"])

    async def _read(self) -> None:
        prefix = f"{self.prefix}:bus:"
        delays = RESUBSCRIBE.delays()
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0)
                delays = RESUBSCRIBE.delays()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus subscription lost (%s); subscribing again", exc)
                await self._close_pubsub()
                await asyncio.sleep(next(delays))
                continue
            if message is None or message.get("type") != "message":
                continue
            topic = str(message["channel"]).removeprefix(prefix)
            try:
                event = json.loads(message["data"])
            except ValueError:
                log.warning("ignored a malformed %r event", topic)
                continue
            await self._handlers.dispatch(topic, event)

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            try:
                await pubsub.aclose()
            except Exception:  # already broken; nothing else to release
                log.debug("closing a broken bus subscription failed", exc_info=True)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self._close_pubsub()
