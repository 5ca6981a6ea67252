"""Events between the worker processes of one deployment.

Live events are best effort by design: the customer's history in the store is
the durable record, and a console or web chat that missed an event catches up
by reading it. So Redis pub/sub (at most once, no backlog) is the right tool;
the in-process bus serves the embedded store, which has one worker anyway.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis

from context_store.agents import AgentStore

log = logging.getLogger(__name__)

Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]


def new_worker_id() -> str:
    return secrets.token_hex(6)


class Bus(Protocol):
    """Publish an event to every worker (this one included) subscribed to `topic`."""

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Register before `start`."""

    async def publish(self, topic: str, event: Event) -> None: ...

    async def start(self) -> None:
        """Return once subscribed: events published after this reach us."""

    async def stop(self) -> None: ...


class _Handlers:
    def __init__(self) -> None:
        self.by_topic: dict[str, list[Handler]] = {}

    def add(self, topic: str, handler: Handler) -> None:
        self.by_topic.setdefault(topic, []).append(handler)

    async def dispatch(self, topic: str, event: Event) -> None:
        for handler in self.by_topic.get(topic, ()):
            try:
                await handler(event)
            except Exception:  # one failing console must not stop the others
                log.exception("handler of %r events failed", topic)


class LocalBus:
    """The bus of a single process: handlers run when the event is published."""

    def __init__(self) -> None:
        self._handlers = _Handlers()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.add(topic, handler)

    async def publish(self, topic: str, event: Event) -> None:
        await self._handlers.dispatch(topic, event)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class RedisBus:
    """Redis pub/sub on `<prefix>:bus:<topic>`; one subscriber connection per worker."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "segue") -> None:
        self.client = client
        self.prefix = prefix
        self._handlers = _Handlers()
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
        delay = 0.1
        while True:
            try:
                if self._pubsub is None:
                    await self._subscribe()
                message = await self._pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=1.0)
                delay = 0.1
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("bus subscription lost (%s); subscribing again", exc)
                await self._close_pubsub()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
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


class WebPresence:
    """Where web chat sockets are: which workers hold a session's sockets.

    Each worker refreshes its sessions every `ttl_seconds / 3`; the entries of
    a worker that died run out after `ttl_seconds`.
    """

    def __init__(self, store: AgentStore, *, worker: str, ttl_seconds: float = 60.0) -> None:
        self.store = store
        self.worker = worker
        self.ttl_seconds = ttl_seconds

    async def opened(self, sessions: list[str]) -> None:
        await self.store.touch_web(sessions, self.worker, self.ttl_seconds)

    async def closed(self, session: str) -> None:
        await self.store.drop_web(session, self.worker)

    async def elsewhere(self, session: str) -> bool:
        """Whether another worker holds a socket of `session`."""
        return bool(await self.store.web_workers(session) - {self.worker})
