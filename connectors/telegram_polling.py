"""Long polling of Telegram's `getUpdates`, for the Telegram connector.

An update is confirmed (by the next `getUpdates` offset) only once the
connector accepted it; the first one that is not is fetched again, and those
after it too. On stop an update in hand is finished, the updates handled are
confirmed with one `getUpdates` at the next offset and no wait, and the rest
stay with Telegram for the next poller: none is lost, none answered twice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol

from aiogram import Bot
from aiogram.exceptions import AiogramError

from connectors.telegram_render import TOKEN_FILTER, describe
from connectors.telegram_updates import RawUpdates, update_id_of

log = logging.getLogger(__name__)
log.addFilter(TOKEN_FILTER)


class PollingOptions(Protocol):
    @property
    def poll_timeout_seconds(self) -> int: ...
    @property
    def retry_delay_seconds(self) -> float: ...
    @property
    def retry_delay_max_seconds(self) -> float: ...


class TelegramPoller:
    """Fetches updates and hands each to `accept`, which says whether it was
    accepted (must not come again)."""

    def __init__(self, *, bot: Bot, accept: Callable[[dict[str, Any]], Awaitable[bool]],
                 options: Callable[[], PollingOptions], allowed_updates: list[str]) -> None:
        self.bot = bot
        self.accept = accept
        self.options = options
        self.allowed_updates = allowed_updates
        self._task: asyncio.Task[None] | None = None
        # The next getUpdates offset (it confirms every update before it),
        # whether updates are being handled, and whether to stop.
        self._offset: int | None = None
        self._updates_in_hand = False
        self._stopping = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="telegram-polling")

    async def stop(self, grace_seconds: float) -> None:
        """Finish the update in hand (up to `grace_seconds`), then confirm
        the updates handled."""
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        if not self._updates_in_hand:
            task.cancel()  # waiting for updates: nothing in hand
        done, _ = await asyncio.wait([task], timeout=grace_seconds)
        if not done:
            log.warning("Telegram update in hand cut off after %.0f s: it comes again",
                        grace_seconds)
            task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        await self._confirm_handled()

    async def _confirm_handled(self) -> None:
        """getUpdates with the next offset and no wait: Telegram forgets the
        updates handled; those it returns are left for the next poller."""
        if self._offset is None:
            log.info("Telegram polling stopped")
            return
        try:
            await self.bot(RawUpdates(offset=self._offset, timeout=0,
                                      allowed_updates=self.allowed_updates))
        except AiogramError as exc:
            # Handled again after a restart, where the engine's dedup
            # keeps its turn from running twice.
            log.warning("Telegram updates handled could not be confirmed: %s",
                        describe(exc, self.bot.token))
            return
        log.info("Telegram polling stopped; updates before %d confirmed", self._offset)

    async def _poll(self) -> None:
        failures = 0
        while not self._stopping:
            options = self.options()
            try:
                updates = await self.bot(
                    RawUpdates(
                        offset=self._offset,
                        timeout=options.poll_timeout_seconds,
                        allowed_updates=self.allowed_updates,
                    ),
                    request_timeout=options.poll_timeout_seconds + 10,
                )
            except AiogramError as exc:
                log.warning("getUpdates failed: %s", describe(exc, self.bot.token))
                failures += 1
            else:
                self._updates_in_hand = True
                try:
                    self._offset, accepted_all = await self._accept_in_order(
                        updates, self._offset)
                finally:
                    self._updates_in_hand = False
                failures = 0 if accepted_all else failures + 1
            if failures and not self._stopping:
                delay = options.retry_delay_seconds * 2 ** min(failures - 1, 10)
                await asyncio.sleep(min(delay, options.retry_delay_max_seconds))

    async def _accept_in_order(
        self, updates: list[Any], offset: int | None
    ) -> tuple[int | None, bool]:
        """The next offset, and whether every update was accepted."""
        for data in updates:
            if self._stopping:
                break  # stopping: the rest are fetched by the next poller
            update_id = update_id_of(data)
            if update_id is None:
                # Telegram numbers every update; without a number there is
                # nothing to confirm it by, so back off as after a failure.
                log.warning("getUpdates returned something that is not an update")
                return offset, False
            if not await self.accept(data):
                return offset, False
            offset = update_id + 1
        return offset, True
