"""A worker for the store's durable inbox: what a connector accepted before
acknowledging it to the platform is processed here, after the acknowledgement.

Items are JSON envelopes `{"source": "<name>", "data": {...}}`; each source
registers one handler. A handler that keeps failing is retried a bounded
number of times, then the item is parked for an operator with its error, so
one poisoned item cannot block the queue. An item whose worker died is
reclaimed by the store after its stale time and handled here again; handlers
must therefore be idempotent (the engine's dedup makes a turn so).
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from bot.core.backoff import Doubling
from bot.core.errors import StoreUnavailable
from bot.core.ports import InboxItem, InboxStore, ParkingStore

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[None]]


@runtime_checkable
class InboxWorkerStore(InboxStore, ParkingStore, Protocol):
    """The slices of the store the worker uses: the inbox, and parking for
    the items that keep failing."""


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


class InboxWorker:
    """Takes items from the inbox and hands each to its source's handler.

    Items are handled one at a time, in the order the store hands them out,
    which keeps one customer's messages in arrival order within a worker.
    `start` and `stop` may be called by several owners (one per connector);
    the loop runs while at least one owner has started it.
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
        self._idle = True

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
        if self._idle:
            # Waiting on the store holds nothing; an item being handled is
            # given time to finish so it is not handled twice after reclaim.
            task.cancel()
        try:
            await asyncio.wait_for(task, self.options.stop_grace_seconds)
        except (asyncio.CancelledError, TimeoutError):
            pass

    async def _run(self) -> None:
        pace = Doubling(first=self.options.retry_delay_seconds,
                        cap=self.options.store_backoff_max_seconds)
        delays = pace.delays()
        while not self._stopping.is_set():
            try:
                items = await self.store.inbox_take(
                    self.consumer, count=self.options.batch, block_ms=self.options.block_ms
                )
            except StoreUnavailable as exc:
                delay = next(delays)
                log.warning("inbox unavailable, retrying in %.2fs: %s", delay, exc)
                await asyncio.sleep(delay)
                continue
            except Exception:
                log.exception("reading the inbox failed")
                await asyncio.sleep(self.options.store_backoff_max_seconds)
                continue
            delays = pace.delays()  # the store answered: start again from the first delay
            self._idle = False
            try:
                for item in items:
                    if self._stopping.is_set():
                        break  # the rest stay pending and are reclaimed
                    await self.handle(item)
            finally:
                self._idle = True

    async def handle(self, item: InboxItem) -> None:
        """Handle one item to its end: acknowledged, parked, or left for
        another worker (when its source is not handled here)."""
        attempt = item.attempts
        if attempt > self.options.max_attempts:
            # Taken this often without an ack: its workers keep dying on it.
            await self._park(item, f"abandoned by workers {attempt - 1} times")
            return
        while True:
            try:
                await self._dispatch(item)
            except UnknownSource as exc:
                # Another process may handle it; the store's reclaim hands it
                # out again, and `attempts` bounds how often.
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
                log.warning("inbox item %s failed (attempt %d): %r", item.item_id, attempt, exc)
                attempt += 1
                await asyncio.sleep(self.options.retry_delay_seconds)
                continue
            await self._ack(item)
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
