"""The events-out dispatcher and sink on the memory store, against a real
receiver on loopback: the signature, the retry delays, what is dropped (too
old, too many) with a log line and a count, timeouts and connection errors
as failures, a store error swallowed, and never a customer's words or the
secret in the log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from prometheus_client import REGISTRY

from bot.core.errors import StoreUnavailable
from bot.core.events import MESSAGE_CREATED
from bot.core.events_queue import MAX_AGE_SECONDS, EventQueueStore, Events, new_event
from connectors.events_out import EventDispatcher, EventsOutOptions, retry_delay, signature
from context_store import MemoryContextStore
from tests.contract.slices import narrowed
from tests.support.events_receiver import HANG, SECRET, receiving, verify_signature

WORDS = "my secret order is A1001"


class Failures(logging.Handler):
    """Sets `enough` once the dispatcher has logged `wanted` failed sends."""

    def __init__(self, wanted: int) -> None:
        super().__init__(logging.WARNING)
        self.wanted = wanted
        self.enough = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "was not accepted" in record.getMessage():
            self.wanted -= 1
            if self.wanted <= 0:
                self.enough.set()


def count(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@asynccontextmanager
async def dispatching(url: str, store: object, **options: float) -> AsyncIterator[Events]:
    """A started dispatcher sending `store`'s events to `url`, and the sink
    that wakes it."""
    dispatcher = EventDispatcher(narrowed(store, EventQueueStore), EventsOutOptions(
        url=url, secret=SECRET, first_retry_seconds=0.01, max_retry_seconds=0.02,
        **options))  # type: ignore[arg-type]
    await dispatcher.start()
    try:
        yield Events(narrowed(store, EventQueueStore), wake=dispatcher.wake)
    finally:
        await dispatcher.stop()


def test_the_signature_is_hmac_sha256_of_the_timestamp_a_dot_and_the_body() -> None:
    body = b'{"id":"e1","type":"message.created"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature(SECRET, 1700000000, body) == f"sha256={expected}"


def test_the_docs_check_accepts_a_fresh_signature_and_nothing_else() -> None:
    body = b'{"id":"e1"}'
    now = int(time.time())
    assert verify_signature(SECRET, body, str(now), signature(SECRET, now, body))
    assert not verify_signature(SECRET, body + b" ", str(now), signature(SECRET, now, body))
    assert not verify_signature("another-secret-value", body, str(now),
                                signature(SECRET, now, body))
    stale = now - 301
    assert not verify_signature(SECRET, body, str(stale), signature(SECRET, stale, body))
    assert not verify_signature(SECRET, body, "soon", signature(SECRET, now, body))


def test_retry_delays_double_from_a_second_up_to_five_minutes_with_jitter() -> None:
    options = EventsOutOptions(url="http://127.0.0.1:9/e", secret=SECRET)
    assert [retry_delay(n, options, rand=lambda: 1.0) for n in range(1, 6)] == [1, 2, 4, 8, 16]
    assert [retry_delay(n, options, rand=lambda: 0.0) for n in range(1, 4)] == [0.5, 1, 2]
    assert retry_delay(10, options, rand=lambda: 1.0) == 300
    assert retry_delay(1000, options, rand=lambda: 0.0) == 150


async def test_events_are_sent_in_order_with_their_headers() -> None:
    store = MemoryContextStore()
    async with receiving() as receiver, dispatching(receiver.url, store) as events:
        for n in range(3):
            await events.emit("c1", MESSAGE_CREATED, {"text": f"m{n}"})
        got = await receiver.wait_for(3)
    assert [e["data"]["text"] for e in got] == ["m0", "m1", "m2"]
    assert {e["customer"] for e in got} == {"c1"}
    for delivery in receiver.deliveries:
        assert delivery.valid
        assert delivery.headers["X-Segue-Event-Id"] == delivery.id
        assert delivery.headers["Content-Type"] == "application/json"
        assert abs(int(delivery.headers["X-Segue-Timestamp"]) - time.time()) < 60


async def test_an_event_older_than_three_days_is_dropped_logged_and_counted(
    caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryContextStore()
    old = new_event("c1", MESSAGE_CREATED, {"text": WORDS},
                    now=time.time() - MAX_AGE_SECONDS - 60).decode()
    await store.events_push("c1", old, max_queued=10, keep_seconds=3600)
    before = count("segue_events_dropped_total", reason="expired")
    with caplog.at_level(logging.DEBUG):
        async with receiving() as receiver, dispatching(receiver.url, store) as events:
            await events.emit("c1", MESSAGE_CREATED, {"text": "fresh"})
            [got] = await receiver.wait_for(1)
    assert got["data"]["text"] == "fresh"
    assert [d.event["data"]["text"] for d in receiver.deliveries] == ["fresh"]
    assert count("segue_events_dropped_total", reason="expired") == before + 1
    [dropped] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "not accepted within 72 hours" in dropped.getMessage()
    assert WORDS not in caplog.text and SECRET not in caplog.text


async def test_beyond_ten_thousand_the_oldest_go_with_a_warning_and_a_count(
    caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryContextStore()
    events = Events(store, max_queued=2)
    before = count("segue_events_dropped_total", reason="overflow")
    with caplog.at_level(logging.WARNING):
        for n in range(3):
            await events.emit("c1", MESSAGE_CREATED, {"text": f"{WORDS} {n}"})
    assert count("segue_events_dropped_total", reason="overflow") == before + 1
    [warning] = caplog.records
    assert warning.levelno == logging.WARNING and "the oldest 1 dropped" in warning.getMessage()
    assert WORDS not in caplog.text
    async with receiving() as receiver, dispatching(receiver.url, store):
        got = await receiver.wait_for(2)
    assert [e["data"]["text"] for e in got] == [f"{WORDS} 1", f"{WORDS} 2"]


async def test_a_store_error_is_logged_and_swallowed(caplog: pytest.LogCaptureFixture) -> None:
    class Down(MemoryContextStore):
        async def events_push(self, customer_id: str, event: str, *, max_queued: int,
                              keep_seconds: int) -> int:
            raise StoreUnavailable("Redis is unreachable: connection refused")

    woken: list[bool] = []
    before = count("segue_events_dropped_total", reason="store_error")
    with caplog.at_level(logging.WARNING):
        await Events(Down(), wake=lambda: woken.append(True)).emit(
            "c1", MESSAGE_CREATED, {"text": WORDS})
    assert count("segue_events_dropped_total", reason="store_error") == before + 1
    assert "could not queue a message.created event of customer c1" in caplog.text
    assert WORDS not in caplog.text and woken == []


async def test_a_timeout_is_a_failure_and_the_event_comes_again(
    caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryContextStore()
    before = count("segue_events_failed_total", reason="timeout")
    with caplog.at_level(logging.WARNING):
        async with receiving() as receiver, \
                dispatching(receiver.url, store, timeout_seconds=0.2) as events:
            receiver.answers.append(HANG)
            await events.emit("c1", MESSAGE_CREATED, {"text": WORDS})
            await events.emit("c1", MESSAGE_CREATED, {"text": "second"})
            got = await receiver.wait_for(2)
    assert [e["data"]["text"] for e in got] == [WORDS, "second"]
    assert receiver.deliveries[0].id == got[0]["id"]
    assert count("segue_events_failed_total", reason="timeout") >= before + 1
    assert "no answer within 0.2 s" in caplog.text
    assert WORDS not in caplog.text and SECRET not in caplog.text


async def test_a_refused_connection_is_a_failure_and_names_no_url(
    caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/hook?token=url-token-value"
    store = MemoryContextStore()
    before = count("segue_events_failed_total", reason="error")
    with caplog.at_level(logging.WARNING):
        async with dispatching(url, store) as events:
            failures = Failures(2)
            logging.getLogger("connectors.events_out").addHandler(failures)
            try:
                await events.emit("c1", MESSAGE_CREATED, {"text": WORDS})
                async with asyncio.timeout(10):
                    await failures.enough.wait()
            finally:
                logging.getLogger("connectors.events_out").removeHandler(failures)
    assert count("segue_events_failed_total", reason="error") >= before + 2
    assert "ClientConnectorError" in caplog.text
    assert "url-token-value" not in caplog.text and WORDS not in caplog.text
    # Still queued, for when the endpoint is back.
    lease = await store.events_lease("c1", token="t", ttl_seconds=5)
    assert lease.head is not None and WORDS in lease.head and lease.failures >= 2
