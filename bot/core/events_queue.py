"""The durable queue behind events out: `EventQueueStore`, the store slice
that keeps each customer's events in order until they are sent, and
`Events`, the `EventSink` that writes to it.

A customer's events wait in a list of their own; an index of customers
(when to look at each) lets every worker's dispatcher find who has events
due without a scan, and a lease lets one worker at a time send a customer's
events, so they leave in the order they were emitted. The dispatcher itself
(the HTTP side) is `connectors.events_out`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

from bot.core import metrics
from bot.core.errors import StoreError

log = logging.getLogger(__name__)

# At most this many events wait per customer; beyond it the oldest go.
MAX_QUEUED = 10_000
# An event not sent within this long is dropped: an endpoint down for days
# must not make Redis grow without end.
MAX_AGE_SECONDS = 3 * 86400
# A customer's queue keys expire a day after the last event emitted, so a
# deployment that stopped sending leaves nothing behind for good.
KEEP_SECONDS = MAX_AGE_SECONDS + 86400


@dataclass(frozen=True, slots=True)
class EventLease:
    """What a look at a customer's queue found.

    `held`: this worker holds the queue; `head` is the oldest event (None:
    the queue is empty) and `failures` how many sends of it failed in a row.
    `busy`: another worker holds it for `retry_in` seconds more. `lost`: the
    lease ran out or was taken (the holder must stop)."""

    status: Literal["held", "busy", "lost"]
    head: str | None = None
    failures: int = 0
    retry_in: float = 0.0


@runtime_checkable
class EventQueueStore(Protocol):
    """Each customer's events in order, the index of customers with events
    to send, and the lease of one sender per customer."""

    async def events_push(self, customer_id: str, event: str, *, max_queued: int,
                          keep_seconds: int) -> int:
        """Append `event` to the customer's queue and index them (due now
        unless the index already says when); how many of their oldest events
        were dropped to keep at most `max_queued`."""
        ...

    async def events_due(self, limit: int, *, hold_seconds: float) -> list[tuple[str, int]]:
        """Up to `limit` customers whose time has come, earliest first, each
        with the entry's new mark: each is moved `hold_seconds` on, so other
        workers leave them alone while this one looks."""
        ...

    async def events_lease(self, customer_id: str, *, token: str,
                           ttl_seconds: float) -> EventLease:
        """Take (or keep) the customer's lease for `token`: `held` with the
        oldest event, or `busy`."""
        ...

    async def events_pop(self, customer_id: str, event: str, *, token: str,
                         ttl_seconds: float, sent: bool) -> EventLease:
        """`event` is done with (`sent`: and its failures are forgotten):
        removed if it is still the oldest, the lease renewed; the next
        oldest, or `lost` if `token` no longer holds the lease."""
        ...

    async def events_done(self, customer_id: str, mark: int, *, token: str) -> bool:
        """Give the lease back if the queue is empty and drop the index entry
        if it still carries `mark`; False (lease kept) if an event came."""
        ...

    async def events_retry(self, customer_id: str, mark: int, *, token: str,
                           after_seconds: float, failed: bool) -> None:
        """Give the lease back and look at the customer again `after_seconds`
        from now (if the entry still carries `mark`); `failed`: one more
        failure of the oldest event."""
        ...


def new_event(customer_id: str, type: str, data: Mapping[str, Any], *, now: float) -> bytes:
    """One event as it is queued and sent: the exact bytes of the POST body."""
    return orjson.dumps({"id": uuid.uuid4().hex, "type": type, "created_at": now,
                         "customer": customer_id, "data": dict(data)})


class Events:
    """The `EventSink` of a deployment with an events URL: each event is one
    store write; sending is the dispatcher's. `wake` tells this worker's
    dispatcher at once, so an event does not wait for its next look."""

    def __init__(self, store: EventQueueStore, *, wake: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time,
                 max_queued: int = MAX_QUEUED, keep_seconds: int = KEEP_SECONDS) -> None:
        self.store = store
        self.wake = wake
        self.clock = clock
        self.max_queued = max_queued
        self.keep_seconds = keep_seconds

    async def emit(self, customer_id: str, type: str, data: Mapping[str, Any]) -> None:
        body = new_event(customer_id, type, data, now=self.clock())
        try:
            dropped = await self.store.events_push(customer_id, body.decode(),
                                                   max_queued=self.max_queued,
                                                   keep_seconds=self.keep_seconds)
        except StoreError as exc:
            # The conversation goes on; the event is lost. The error names
            # no customer text (events hold it, errors of the store do not).
            log.warning("could not queue a %s event of customer %s: %s", type, customer_id,
                        type_of(exc))
            metrics.events_dropped("store_error").inc()
            return
        if dropped:
            log.warning("customer %s had over %d events waiting: the oldest %d dropped",
                        customer_id, self.max_queued, dropped)
            metrics.events_dropped("overflow").inc(dropped)
        if self.wake is not None:
            self.wake()


def type_of(exc: BaseException) -> str:
    """An error by its kind and message, as logged."""
    return f"{type(exc).__name__}: {exc}"
