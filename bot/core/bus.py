"""Events between the worker processes of one deployment.

Live events are best effort by design: the customer's history in the store is
the durable record, and a console or web chat that missed an event catches up
by reading it. So Redis pub/sub (at most once, no backlog) is the right tool;
the in-process bus serves the embedded store, which has one worker anyway.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

log = logging.getLogger(__name__)

Event = dict[str, Any]
Handler = Callable[[Event], Awaitable[None]]


def new_worker_id() -> str:
    return secrets.token_hex(6)


@runtime_checkable
class Bus(Protocol):
    """Publish an event to every worker (this one included) subscribed to `topic`."""

    def subscribe(self, topic: str, handler: Handler) -> None:
        """Register before `start`."""

    async def publish(self, topic: str, event: Event) -> None: ...

    async def start(self) -> None:
        """Return once subscribed: events published after this reach us."""

    async def stop(self) -> None: ...


class Handlers:
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
        self._handlers = Handlers()

    def subscribe(self, topic: str, handler: Handler) -> None:
        self._handlers.add(topic, handler)

    async def publish(self, topic: str, event: Event) -> None:
        await self._handlers.dispatch(topic, event)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None
