"""The gauges of shared facts (the handoff queue, the inbox lag), read from
the store by a task that runs with the app.

These change on any worker, so events here cannot keep them true: the desk
sets the queue length as it changes it, and this task reads both again every
`every_seconds` (two cheap reads: a sorted set's size, and the first entry of
each inbox stream). A scrape never waits for the store.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

from bot.core.errors import StoreError
from bot.core.inbox import refresh_inbox_lag
from bot.handoff.desk import HandoffDesk

log = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0


class GaugeRefresher:
    """Reads the store-backed gauges once every `every_seconds` while started."""

    def __init__(self, *, store: object, desk: HandoffDesk | None,
                 every_seconds: float | None = None) -> None:
        self.store = store
        self.desk = desk
        self.every_seconds = every_seconds if every_seconds is not None else REFRESH_SECONDS
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Read every gauge once; a store that fails leaves the last values."""
        try:
            await refresh_inbox_lag(self.store)
        except StoreError as exc:
            log.warning("could not read the inbox lag: %s", exc)
        if self.desk is not None:
            await self.desk.count_queue()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="gauge-refresher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing the metrics failed, trying again")
            # The pace of the refresh, not a wait for an event: other
            # workers' changes signal nothing here.
            await asyncio.sleep(self.every_seconds)
