"""Events out: every worker's dispatcher, which POSTs each customer's queued
events (`bot.core.events_queue`) to `SEGUE_EVENTS_URL`, signed.

A customer's events leave one at a time, in the order they were emitted: the
next only once the last was answered 2xx. Any other answer, a timeout or a
failed connection leaves it at the head of the queue, and that customer is
looked at again after a doubling, jittered delay (1 s up to 5 min), whichever
worker looks; other customers' events go on meanwhile, several customers at
once. One worker at a time sends a customer's events, under the queue's
lease. Sending happens only here: emitting is one store write, so a failing
endpoint never slows a conversation.

Each POST carries the event as its JSON body, `X-Segue-Event-Id`,
`X-Segue-Timestamp` (Unix seconds) and `X-Segue-Signature: sha256=<hex>`,
the HMAC-SHA256 with `SEGUE_EVENTS_SECRET` of `<timestamp>.<body>`.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import logging
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

import aiohttp
import orjson

from bot.core import metrics
from bot.core.errors import StoreError
from bot.core.events_queue import MAX_AGE_SECONDS, EventLease, EventQueueStore, type_of

log = logging.getLogger(__name__)

USER_AGENT = "Segue-Events/1"


@dataclass(frozen=True, slots=True)
class EventsOutOptions:
    url: str
    secret: str = field(repr=False)
    # Customers whose events are sent at once, by this worker.
    concurrency: int = 8
    timeout_seconds: float = 10.0
    first_retry_seconds: float = 1.0
    max_retry_seconds: float = 300.0
    max_age_seconds: float = MAX_AGE_SECONDS
    # How long a customer's queue stays this worker's without a word from it
    # (renewed after each event); also how long a customer taken from the
    # index is left to this worker. A worker that dies hands it on after this.
    lease_seconds: float = 60.0
    # How often the index is read without a wake: other workers' events, and
    # retries that came due.
    look_every_seconds: float = 1.0


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-Segue-Signature` of a POST: HMAC-SHA256 of `<timestamp>.<body>`."""
    signed = str(timestamp).encode() + b"." + body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def retry_delay(failures: int, options: EventsOutOptions,
                rand: Callable[[], float] = random.random) -> float:
    """How long a customer waits after `failures` failed sends in a row:
    doubling from the first delay up to the cap, then between half of it and
    all of it, so customers failing together do not come back together."""
    ceiling = min(options.max_retry_seconds,
                  options.first_retry_seconds * 2 ** min(max(failures - 1, 0), 30))
    return float(ceiling / 2 + rand() * ceiling / 2)


Outcome = Literal["sent", "dropped", "status", "timeout", "error"]


class EventDispatcher:
    """Reads the index of customers with events due and sends each one's
    events in order; started and stopped with the app, one per worker."""

    def __init__(self, store: EventQueueStore, options: EventsOutOptions, *,
                 clock: Callable[[], float] = time.time,
                 rand: Callable[[], float] = random.random) -> None:
        self.store = store
        self.options = options
        self.clock = clock
        self.rand = rand
        self._wakeup = asyncio.Event()
        self._serving: dict[str, asyncio.Task[None]] = {}
        # Customers taken from the index while their last look was ending.
        self._again: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    def wake(self) -> None:
        """An event was queued here: look at the index now."""
        self._wakeup.set()

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.options.timeout_seconds),
            connector=aiohttp.TCPConnector(limit=self.options.concurrency),
            headers={"User-Agent": USER_AGENT})
        self._task = asyncio.create_task(self._run(), name="events-out")
        # The host only: a URL may carry a token of its own.
        log.info("sending events to %s", urlsplit(self.options.url).netloc)

    async def stop(self) -> None:
        """Stop looking; what is being sent is given back at once, for the
        next worker (or the next start) to send."""
        tasks = [t for t in (self._task, *self._serving.values()) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for customer, mark in self._again.items():
            await self._give_back(customer, mark, token="")
        self._again.clear()
        self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run(self) -> None:
        while True:
            self._wakeup.clear()
            free = self.options.concurrency - len(self._serving)
            if free > 0 and await self._take(free) == free:
                continue  # more may be due
            try:
                async with asyncio.timeout(self.options.look_every_seconds):
                    await self._wakeup.wait()
            except TimeoutError:
                pass

    async def _take(self, free: int) -> int:
        """Start sending for up to `free` due customers; how many."""
        try:
            due = await self.store.events_due(free, hold_seconds=self.options.lease_seconds)
        except StoreError as exc:
            log.warning("could not read which customers have events to send: %s",
                        type_of(exc))
            return 0
        for customer, mark in due:
            if customer in self._serving:
                # Its last look is ending (an event came as it finished): the
                # entry just taken is served right after, not left held.
                self._again[customer] = mark
            else:
                self._begin(customer, mark)
        return len(due)

    def _begin(self, customer: str, mark: int) -> None:
        task = asyncio.create_task(self._serve(customer, mark), name="events-out-customer")
        self._serving[customer] = task
        task.add_done_callback(functools.partial(self._finished, customer))

    def _finished(self, customer: str, task: asyncio.Task[None]) -> None:
        self._serving.pop(customer, None)
        mark = self._again.pop(customer, None)
        if mark is not None and not task.cancelled():
            self._begin(customer, mark)
        self._wakeup.set()  # a place is free

    async def _serve(self, customer: str, mark: int) -> None:
        """Send the customer's events in order until none is left, one fails,
        or the lease is lost."""
        token = secrets.token_hex(8)
        ttl = self.options.lease_seconds
        try:
            lease = await self.store.events_lease(customer, token=token, ttl_seconds=ttl)
            if lease.status == "busy":
                # Another worker sends them: look again once its lease may end.
                await self.store.events_retry(customer, mark, token=token,
                                              after_seconds=lease.retry_in, failed=False)
                return
            await self._send_all(customer, mark, token, lease)
        except StoreError as exc:
            # The lease runs out and the customer comes due again by itself.
            log.warning("could not send the events of customer %s: %s", customer, type_of(exc))
        except asyncio.CancelledError:
            await self._give_back(customer, mark, token)
            raise

    async def _send_all(self, customer: str, mark: int, token: str, lease: EventLease) -> None:
        ttl = self.options.lease_seconds
        failed_before = lease.failures
        while lease.status == "held":
            if lease.head is None:
                if await self.store.events_done(customer, mark, token=token):
                    return
                lease = await self.store.events_lease(customer, token=token, ttl_seconds=ttl)
                continue
            outcome, detail = await self._send(customer, lease.head)
            if outcome in ("sent", "dropped"):
                if outcome == "sent" and failed_before:
                    log.info("events of customer %s are accepted again after %d failed "
                             "attempts", customer, failed_before)
                    failed_before = 0
                lease = await self.store.events_pop(customer, lease.head, token=token,
                                                    ttl_seconds=ttl, sent=outcome == "sent")
                continue
            delay = retry_delay(lease.failures + 1, self.options, self.rand)
            log.warning("an event of customer %s was not accepted (%s, %d in a row); "
                        "trying again in %.1f s", customer, detail, lease.failures + 1, delay)
            await self.store.events_retry(customer, mark, token=token, after_seconds=delay,
                                          failed=True)
            # Looked at when due, not at the next regular look.
            asyncio.get_running_loop().call_later(delay, self.wake)
            return

    async def _give_back(self, customer: str, mark: int, token: str) -> None:
        try:
            await self.store.events_retry(customer, mark, token=token, after_seconds=0,
                                          failed=False)
        except StoreError as exc:
            log.warning("could not give back the events of customer %s: %s", customer,
                        type_of(exc))

    async def _send(self, customer: str, raw: str) -> tuple[Outcome, str]:
        """POST one event; what came of it (`dropped`: too old or unreadable),
        and in words for the log."""
        try:
            event = orjson.loads(raw)
            event_id, kind = str(event["id"]), str(event["type"])
            age = self.clock() - float(event["created_at"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            log.error("an unreadable event of customer %s was dropped", customer)
            metrics.events_dropped("unreadable").inc()
            return "dropped", "unreadable"
        if age > self.options.max_age_seconds:
            log.error("event %s (%s) of customer %s was dropped: not accepted within %d "
                      "hours", event_id, kind, customer, self.options.max_age_seconds // 3600)
            metrics.events_dropped("expired").inc()
            return "dropped", "expired"
        outcome, detail = await self._post(event_id, raw.encode())
        if outcome == "sent":
            metrics.EVENTS_SENT.inc()
            log.debug("event %s (%s) of customer %s sent", event_id, kind, customer)
        else:
            metrics.events_failed(outcome).inc()
        return outcome, detail

    async def _post(self, event_id: str, body: bytes) -> tuple[Outcome, str]:
        assert self._session is not None, "the dispatcher is not started"
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "X-Segue-Event-Id": event_id,
            "X-Segue-Timestamp": str(timestamp),
            "X-Segue-Signature": signature(self.options.secret, timestamp, body),
        }
        try:
            # A redirect is no acceptance: the body would not follow it.
            async with self._session.post(self.options.url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                status = response.status
        except TimeoutError:
            return "timeout", f"no answer within {self.options.timeout_seconds:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            # The kind only: a message could quote the URL, and a token in it.
            return "error", type(exc).__name__
        return ("sent" if 200 <= status < 300 else "status"), f"HTTP {status}"
