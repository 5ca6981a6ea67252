"""A worker for the store's durable inbox: what a connector accepted before
acknowledging it to the platform is processed here, after the acknowledgement.

Items are JSON envelopes `{"source": "<name>", "data": {...}}`; each source
registers one handler. Items queued in a lane (a sender's channel identity,
`lane_of`) are handled in the order they were queued, across workers and
crashes: the store hashes lanes onto partitions and hands out a partition's
next item only once the one before is acknowledged, or gone stale because
its worker stopped keeping it (then that one comes again first). This worker
reads every partition, each in a task of its own, and keeps the item it
handles from going stale. Items without a lane are taken in any order.

A handler that keeps failing is retried a bounded number of times, then the
item is parked for an operator with its error, so one poisoned item cannot
block its lane. An item whose worker died is handed out again; handlers
must therefore be idempotent (the engine's dedup makes a turn so).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.core import metrics
from bot.core.backoff import Doubling
from bot.core.errors import StoreError, StoreUnavailable
from bot.core.model import ChannelIdentity
from bot.core.ports import INBOX_PARTITIONS, InboxItem, InboxStore, ParkingStore

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]

# How often an item being handled is kept, within its stale time.
KEEPS_PER_STALE_TIME = 3


@runtime_checkable
class InboxWorkerStore(InboxStore, ParkingStore, Protocol):
    """The slices of the store the worker uses: the inbox, and parking for
    the items that keep failing."""


@runtime_checkable
class InboxLagStore(Protocol):
    """A store that can tell how long its oldest queued item has waited."""

    async def inbox_oldest_age(self) -> float | None:
        """Seconds since the oldest item not yet acknowledged was queued
        (taken or not); None when nothing is queued."""
        ...


async def refresh_inbox_lag(store: object) -> None:
    """Set the inbox-lag gauge from `store`, if it can tell."""
    if isinstance(store, InboxLagStore):
        age = await store.inbox_oldest_age()
        metrics.INBOX_LAG.set(age if age is not None else 0.0)


class UnknownSource(Exception):
    """No handler is registered for an item's source in this process."""


@dataclass(frozen=True, slots=True)
class InboxOptions:
    """How the worker polls and how hard it tries."""

    max_attempts: int = 3
    batch: int = 10
    block_ms: int = 1000
    retry_delay_seconds: float = 0.05
    store_backoff_max_seconds: float = 0.5
    stop_grace_seconds: float = 5.0


def lane_of(identity: ChannelIdentity) -> str:
    """The lane of a sender's messages: one channel identity's are handled
    in the order they were queued."""
    return f"{identity.channel}:{identity.user_id}"


def encode_item(source: str, data: dict[str, Any]) -> str:
    """The inbox payload for `data`, to be handled by `source`'s handler."""
    return json.dumps({"source": source, "data": data}, separators=(",", ":"))


def decode_item(payload: str) -> tuple[str, dict[str, Any]]:
    """`(source, data)` of an inbox payload; ValueError if it is not one."""
    envelope = json.loads(payload)
    if not isinstance(envelope, dict):
        raise ValueError("an inbox item must be a JSON object")
    source, data = envelope.get("source"), envelope.get("data")
    if not isinstance(source, str) or not isinstance(data, dict):
        raise ValueError("an inbox item needs a string 'source' and an object 'data'")
    return source, data


async def take_in_order(
    store: InboxStore, consumer: str, *, count: int, block_ms: int
) -> list[InboxItem]:
    """`inbox_take` made of a store's `inbox_read`: items without a lane,
    then the next item of each partition; if there are none, a wait for an
    item without a lane."""
    items = await store.inbox_read(consumer, None, count=count, block_ms=0)
    for partition in range(INBOX_PARTITIONS):
        if len(items) >= count:
            break
        items += await store.inbox_read(consumer, partition, count=1, block_ms=0)
    if not items and block_ms > 0:
        items = await store.inbox_read(consumer, None, count=count, block_ms=block_ms)
    return items


class InboxWorker:
    """Takes items from the inbox and hands each to its source's handler.

    One task per partition handles its items one at a time, in order; one
    more takes the items without a lane, a batch at a time. `start` and
    `stop` may be called by several owners (one per connector); the worker
    runs while at least one owner has started it.
    """

    def __init__(
        self,
        *,
        store: InboxWorkerStore,
        options: InboxOptions | None = None,
        consumer: str | None = None,
    ) -> None:
        self.store = store
        self.options = options or InboxOptions()
        self.consumer = consumer or f"worker-{secrets.token_hex(6)}"
        self._handlers: dict[str, Handler] = {}
        self._task: asyncio.Task[None] | None = None
        self._owners = 0
        self._stopping = asyncio.Event()
        # The reading tasks, and whether each is between items (so may be
        # cancelled on stop without losing work in hand).
        self._readers: dict[asyncio.Task[None], bool] = {}
        # Items without a lane were queued before lanes existed (or by hand):
        # those this worker holds are finished before it starts a lane's
        # next item, so that an old backlog drains before newer messages.
        self._loose_done = asyncio.Event()
        self._loose_done.set()
        self._looked = asyncio.Event()  # the items without a lane were looked at once
        self._pace = Doubling(first=self.options.retry_delay_seconds,
                              cap=self.options.store_backoff_max_seconds)

    def register(self, source: str, handler: Handler) -> None:
        self._handlers[source] = handler

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._owners += 1
        if self._task is None:
            self._stopping = asyncio.Event()
            self._task = asyncio.create_task(self._run(), name=f"inbox {self.consumer}")

    async def stop(self) -> None:
        self._owners = max(0, self._owners - 1)
        if self._owners or self._task is None:
            return
        task, self._task = self._task, None
        _forget(self)
        self._stopping.set()
        # Waiting on the store holds nothing; an item being handled is given
        # time to finish so that it is not handled twice after it goes stale.
        in_hand = 0
        for reader, idle in self._readers.items():
            if idle:
                reader.cancel()
            else:
                in_hand += 1
        done, _ = await asyncio.wait([task], timeout=self.options.stop_grace_seconds)
        cut = 0
        if not done:
            cut = sum(1 for idle in self._readers.values() if not idle)
            log.warning("%d inbox items in hand cut off after %.0f s: they come again", cut,
                        self.options.stop_grace_seconds)
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        log.info("inbox stopped: %d items in hand finished", max(in_hand - cut, 0))
        # What a reader was cancelled with or never finished goes to another
        # worker now, not once stale: a lane waits for its item in hand.
        try:
            await self.store.inbox_release(self.consumer)
        except StoreError as exc:
            log.warning("could not give back the inbox items in hand: %s", exc)

    async def _run(self) -> None:
        self._looked = asyncio.Event()
        loose = asyncio.create_task(self._read(None), name=f"inbox {self.consumer}")
        self._readers = {loose: True}
        try:
            # The items without a lane are looked at before any lane (see
            # `_loose_done`), so an item already queued is held by then.
            await self._looked.wait()
            if not self._stopping.is_set():
                self._readers.update(dict.fromkeys((
                    asyncio.create_task(self._read(p), name=f"inbox {self.consumer} lane {p}")
                    for p in range(INBOX_PARTITIONS)), True))
            # Each reader ends when the worker stops (or is cancelled, idle).
            await asyncio.gather(*self._readers, return_exceptions=True)
        finally:
            readers, self._readers = list(self._readers), {}
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)

    async def _read(self, partition: int | None) -> None:
        """Read one partition (None: the items without a lane) until stopped;
        a partition's items one at a time."""
        reader = asyncio.current_task()
        assert reader is not None
        count = 1 if partition is not None else self.options.batch
        delays = self._pace.delays()
        while not self._stopping.is_set():
            try:
                items = await self.store.inbox_read(
                    self.consumer, partition, count=count,
                    block_ms=self.options.block_ms if self._looked.is_set() else 0,
                )
            except StoreUnavailable as exc:
                delay = next(delays)
                log.warning("inbox unavailable, retrying in %.2fs: %s", delay, exc)
                await self._pause(delay)
                continue
            except StoreError as exc:
                # A Redis that lost its data lost the consumer groups too:
                # the store makes them again on the next read.
                log.warning("reading the inbox failed, retrying: %s", exc)
                await self._pause(self.options.store_backoff_max_seconds)
                continue
            except Exception:
                log.exception("reading the inbox failed")
                await self._pause(self.options.store_backoff_max_seconds)
                continue
            finally:
                self._looked.set()
            delays = self._pace.delays()  # the store answered: start again from the first delay
            self._readers[reader] = False
            if partition is None and items:
                self._loose_done.clear()
            try:
                for item in items:
                    if partition is None:
                        if self._stopping.is_set():
                            break  # the rest stay pending and are reclaimed
                    else:
                        await self._loose_done.wait()
                    # A lane's item is handled even when stopping: left, it
                    # would hold up its lane until it went stale.
                    await self.handle(item)
            finally:
                self._readers[reader] = True
                if partition is None:
                    self._loose_done.set()

    async def _pause(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the worker stops meanwhile."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass

    # One item.

    async def handle(self, item: InboxItem) -> None:
        """Handle one item to its end: acknowledged, parked, or left for
        another worker (when its source is not handled here). Kept from
        going stale meanwhile, however long its handler takes."""
        async with self._kept(item):
            await self._handle(item)

    async def _handle(self, item: InboxItem) -> None:
        attempt = item.attempts
        if attempt > self.options.max_attempts:
            # Taken this often without an ack: its workers keep dying on it.
            await self._park(item, f"abandoned by workers {attempt - 1} times")
            return
        while True:
            try:
                await self._dispatch(item)
            except UnknownSource as exc:
                # Another process may handle it; the store hands it out again
                # once stale, and `attempts` bounds how often.
                log.warning("inbox item %s left for another worker: %s", item.item_id, exc)
                return
            except StoreUnavailable as exc:
                # Not the item's fault: wait for the store, do not count it.
                log.warning("store unavailable while handling %s: %s", item.item_id, exc)
                if self._stopping.is_set():
                    return
                await asyncio.sleep(self.options.store_backoff_max_seconds)
                continue
            except Exception as exc:
                if attempt >= self.options.max_attempts:
                    log.error("inbox item %s failed %d times; parking it", item.item_id, attempt)
                    await self._park(item, f"{type(exc).__name__}: {exc}")
                    return
                # The exception's message may quote the customer's text.
                log.warning("inbox item %s failed (attempt %d): %s", item.item_id, attempt,
                            type(exc).__name__)
                log.debug("inbox item %s failed", item.item_id, exc_info=True)
                attempt += 1
                await asyncio.sleep(self.options.retry_delay_seconds)
                continue
            await self._ack(item)
            return

    @asynccontextmanager
    async def _kept(self, item: InboxItem) -> AsyncIterator[None]:
        """While the body runs, keep `item` this worker's in the store, so
        that a slow handler does not see its item handed to another worker."""
        if item.stale_ms <= 0:
            yield
            return
        keeper = asyncio.create_task(self._keep(item), name=f"keep {item.item_id}")
        try:
            yield
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)

    async def _keep(self, item: InboxItem) -> None:
        every = item.stale_ms / 1000 / KEEPS_PER_STALE_TIME
        while True:
            await asyncio.sleep(every)
            try:
                kept = await self.store.inbox_keep(self.consumer, item.item_id)
            except StoreUnavailable as exc:
                log.warning("could not keep inbox item %s: %s", item.item_id, exc)
                continue
            if not kept:
                # Taken over after all (this worker stalled): the engine's
                # dedup makes the second run of its turn harmless.
                log.warning("inbox item %s was handed to another worker", item.item_id)
                return

    async def _dispatch(self, item: InboxItem) -> None:
        source, data = decode_item(item.payload)
        handler = self._handlers.get(source)
        if handler is None:
            raise UnknownSource(f"no handler for source {source!r}")
        await handler(data)

    async def _ack(self, item: InboxItem) -> None:
        await self._with_store(lambda: self.store.inbox_ack(item.item_id))

    async def _park(self, item: InboxItem, error: str) -> None:
        record = json.dumps(
            {
                "kind": "inbox",
                "item_id": item.item_id,
                "payload": item.payload,
                "error": error,
                "attempts": item.attempts,
                "parked_at": time.time(),
            }
        )
        await self._with_store(lambda: self.store.park(record))
        await self._ack(item)

    async def _with_store(self, call: Callable[[], Awaitable[None]]) -> None:
        # An ack or park lost to an outage would make the item run again.
        while True:
            try:
                await call()
                return
            except StoreUnavailable as exc:
                if self._stopping.is_set():
                    raise
                log.warning("store unavailable, retrying: %s", exc)
                await asyncio.sleep(self.options.store_backoff_max_seconds)


_shared: dict[int, tuple[InboxWorkerStore, InboxWorker]] = {}


def shared_worker(store: InboxWorkerStore, options: InboxOptions | None = None) -> InboxWorker:
    """The one worker of `store` in this process, shared by every connector
    that queues into it (one inbox, so one consumer that knows every source).
    Get it when starting: a worker forgets its store once its last owner stops."""
    entry = _shared.get(id(store))
    if entry is None or entry[0] is not store:
        entry = _shared[id(store)] = (store, InboxWorker(store=store, options=options))
    return entry[1]


def _forget(worker: InboxWorker) -> None:
    entry = _shared.get(id(worker.store))
    if entry is not None and entry[1] is worker:
        del _shared[id(worker.store)]
