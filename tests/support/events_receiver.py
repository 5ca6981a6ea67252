"""A business's events endpoint on loopback, for the events-out tests: it
verifies every POST the way docs/api.md tells users to, records it, and
answers as a test scripts it (2xx, an error status, or no answer at all)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

SECRET = "events-tests-signing-secret"
HANG = 0  # an "answer" that never comes: the request waits until released


# The snippet of docs/api.md, "Events", as a receiver runs it.
def verify_signature(secret: str, body: bytes, timestamp: str, signature: str,
                     tolerance: int = 300) -> bool:
    """True if `body` came from Segue: signed with the shared secret within
    the last `tolerance` seconds (5 minutes), so a replayed request fails."""
    try:
        sent_at = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - sent_at) > tolerance:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One POST as it arrived, and what it was answered."""

    event: dict[str, Any]
    headers: dict[str, str]
    valid: bool
    status: int

    @property
    def id(self) -> str:
        return str(self.event["id"])

    @property
    def type(self) -> str:
        return str(self.event["type"])


class EventReceiver:
    """Answers the scripted statuses in turn (`answers`), then `default`."""

    def __init__(self, secret: str = SECRET) -> None:
        self.secret = secret
        self.answers: deque[int] = deque()
        self.default = 200
        # Events answered 500 whatever else is scripted, until it says otherwise.
        self.refusing: Callable[[dict[str, Any]], bool] = lambda event: False
        self.deliveries: list[Delivery] = []  # every POST, answered or not yet
        self.released = asyncio.Event()  # lets the hanging requests go (answered 200)
        self._changed = asyncio.Condition()
        self.url = ""

    @property
    def accepted(self) -> list[dict[str, Any]]:
        """The events answered 2xx, in the order they arrived."""
        return [d.event for d in self.deliveries if 200 <= d.status < 300]

    def of(self, customer: str) -> list[dict[str, Any]]:
        """The accepted events of one customer, in order."""
        return [e for e in self.accepted if e["customer"] == customer]

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = dict(request.headers)
        valid = verify_signature(self.secret, body, headers.get("X-Segue-Timestamp", ""),
                                 headers.get("X-Segue-Signature", ""))
        event = json.loads(body)
        answer = self.answers.popleft() if self.answers else self.default
        if answer == HANG:
            await self._record(event, headers, valid, 0)
            await self.released.wait()
            answer = 200
        if self.refusing(event):
            answer = 500
        await self._record(event, headers, valid, answer)
        return web.Response(status=answer)

    async def _record(self, event: dict[str, Any], headers: dict[str, str], valid: bool,
                      status: int) -> None:
        async with self._changed:
            self.deliveries.append(Delivery(event, headers, valid, status))
            self._changed.notify_all()

    async def wait_for(self, count: int, customer: str | None = None,
                       timeout: float = 20) -> list[dict[str, Any]]:
        """Once `count` events (of `customer`, if named) are accepted: them."""
        got: list[dict[str, Any]] = await self.wait_until(
            lambda: len(self.accepted if customer is None else self.of(customer)) >= count,
            timeout=timeout, then=lambda: (self.accepted if customer is None
                                           else self.of(customer))[:count])
        return got

    async def wait_until(self, done: Any, *, timeout: float = 20, then: Any = None) -> Any:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(done)
            return then() if then is not None else None


@asynccontextmanager
async def receiving(secret: str = SECRET) -> AsyncIterator[EventReceiver]:
    """An `EventReceiver` served on 127.0.0.1 at `.url`."""
    receiver = EventReceiver(secret)
    app = web.Application()
    app.router.add_post("/events", receiver.handle)
    runner = web.AppRunner(app, shutdown_timeout=1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    receiver.url = f"http://{host}:{port}/events"
    try:
        yield receiver
    finally:
        receiver.released.set()
        await runner.cleanup()
