"""A customer's lock in the store: taken, kept alive, released, and a change
of their state made under it.

The engine's turns and the agents' actions on the handoff desk both go
through here, so they serialise on the same lock with the same rules.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from bot.core.backoff import poll_until
from bot.core.conversation import ConversationState
from bot.core.errors import CustomerGone, LockLost, LockTimeout
from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.ports import LoadResult, TurnStore

log = logging.getLogger(__name__)

StateChange = Callable[[ConversationState], Awaitable[list[HistoryEntry]]]


@dataclass(frozen=True, slots=True)
class LockOptions:
    ttl_seconds: float = 30.0
    wait_seconds: float = 10.0


def new_lock_token() -> str:
    return secrets.token_hex(8)


class CustomerLocks:
    """One customer at a time, across every worker sharing the store."""

    def __init__(self, store: TurnStore, options: LockOptions | None = None) -> None:
        self.store = store
        self.options = options or LockOptions()

    async def take(self, customer_id: str, token: str, *, message_key: str | None,
                   identity: ChannelIdentity | None = None) -> LoadResult:
        """The lock and the state (or a duplicate / moved answer, which take
        no lock); `LockTimeout` if another holder keeps it too long."""

        async def attempt() -> LoadResult | None:
            loaded = await self.store.lock_and_load(
                customer_id, token=token, ttl_seconds=self.options.ttl_seconds,
                message_key=message_key, identity=identity)
            return loaded if loaded.locked or loaded.duplicate or loaded.moved else None

        loaded = await poll_until(attempt, within_seconds=self.options.wait_seconds)
        if loaded is None:
            raise LockTimeout(f"customer {customer_id} stayed locked by another worker")
        return loaded

    @contextmanager
    def kept(self, customer_id: str, token: str) -> Iterator[None]:
        """Keep the lock alive while slow work runs under it, so no other
        worker takes it and runs a later message first. Quick work, nearly
        all of it, only schedules and cancels a timer."""
        loop = asyncio.get_running_loop()
        ttl = self.options.ttl_seconds
        interval = ttl / 3
        renewing: list[asyncio.Task[None]] = []

        async def renew() -> None:
            while await self.store.extend_lock(customer_id, token=token, ttl_seconds=ttl):
                await asyncio.sleep(interval)
            log.warning("lost the lock of customer %s while holding it", customer_id)

        timer = loop.call_later(interval, lambda: renewing.append(loop.create_task(renew())))
        try:
            yield
        finally:
            timer.cancel()
            for task in renewing:
                task.cancel()

    async def release_quietly(self, customer_id: str, token: str) -> None:
        try:
            await self.store.unlock(customer_id, token=token)
        except Exception:  # the lock's TTL frees it anyway
            log.warning("could not release the lock of customer %s", customer_id)

    async def change(self, customer_id: str, apply: StateChange) -> ConversationState:
        """Load the customer's state under their lock, let `apply` change it
        and return the history entries to append, and save both. Raises
        `CustomerGone` if the customer was merged away or erased."""
        token = new_lock_token()
        loaded = await self.take(customer_id, token, message_key=None)
        if loaded.moved:
            raise CustomerGone(f"customer {customer_id} was joined into another or erased")
        try:
            state = ConversationState.from_json(loaded.state)
            with self.kept(customer_id, token):
                entries = await apply(state)
            saved = await self.store.save_and_unlock(
                customer_id, token=token, state=state.to_json(), entries=entries,
                message_key=None, identity=None)
        except BaseException:
            await self.release_quietly(customer_id, token)
            raise
        if not saved:
            raise LockLost(f"lock of customer {customer_id} expired before the change was saved")
        return state
