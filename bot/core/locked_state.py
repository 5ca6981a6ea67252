"""A customer's lock in the store: taken, kept alive, released, and a change
of their state made under it.

The engine's turns and the agents' actions on the handoff desk both go
through here, so they serialise on the same lock with the same rules; a
change's messages are saved with it, in the customer's outbox.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from bot.core.backoff import poll_until
from bot.core.conversation import ConversationState
from bot.core.delivery import Batch, Reply, encode
from bot.core.errors import CustomerGone, LockLost, LockTimeout
from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.ports import DeliveringStore, LoadResult, Saved

log = logging.getLogger(__name__)

StateChange = Callable[[ConversationState], Awaitable[list[HistoryEntry]]]


@dataclass(frozen=True, slots=True)
class LockOptions:
    ttl_seconds: float = 30.0
    wait_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class Changed:
    """A saved change: the state as saved, and what it left in the outbox."""

    state: ConversationState
    batch: Batch


def new_lock_token() -> str:
    return secrets.token_hex(8)


@contextmanager
def kept_alive(extend: Callable[[], Awaitable[bool]], ttl: float, what: str) -> Iterator[None]:
    """Keep a lease of `ttl` seconds alive while slow work runs under it:
    `extend` every `ttl / 3` until it says the lease is lost. Quick work,
    nearly all of it, only schedules and cancels a timer."""
    loop = asyncio.get_running_loop()
    interval = ttl / 3
    renewing: list[asyncio.Task[None]] = []

    async def renew() -> None:
        while await extend():
            await asyncio.sleep(interval)
        log.warning("lost %s while holding it", what)

    timer = loop.call_later(interval, lambda: renewing.append(loop.create_task(renew())))
    try:
        yield
    finally:
        timer.cancel()
        for task in renewing:
            task.cancel()


class CustomerLocks:
    """One customer at a time, across every worker sharing the store."""

    def __init__(self, store: DeliveringStore, options: LockOptions | None = None) -> None:
        self.store = store
        self.options = options or LockOptions()

    async def take(self, customer_id: str, token: str, *, message_key: str | None,
                   identity: ChannelIdentity | None = None) -> LoadResult:
        """The lock and the state (or a duplicate / moved answer, which take
        no lock); `LockTimeout` if another holder keeps it too long."""

        async def attempt() -> LoadResult | None:
            loaded = await self.store.lock_and_load(
                customer_id, token=token, ttl_seconds=self.options.ttl_seconds,
                message_key=message_key, identity=identity, index_outbox=True)
            return loaded if loaded.locked or loaded.duplicate or loaded.moved else None

        loaded = await poll_until(attempt, within_seconds=self.options.wait_seconds)
        if loaded is None:
            raise LockTimeout(f"customer {customer_id} stayed locked by another worker")
        return loaded

    @contextmanager
    def kept(self, customer_id: str, token: str) -> Iterator[None]:
        """Keep the lock alive while slow work runs under it, so no other
        worker takes it and runs a later message first."""
        ttl = self.options.ttl_seconds

        async def extend() -> bool:
            return await self.store.extend_lock(customer_id, token=token, ttl_seconds=ttl)

        with kept_alive(extend, ttl, f"the lock of customer {customer_id}"):
            yield

    async def release_quietly(self, customer_id: str, token: str) -> None:
        try:
            await self.store.unlock(customer_id, token=token)
        except Exception:  # the lock's TTL frees it anyway
            log.warning("could not release the lock of customer %s", customer_id)

    async def change(self, customer_id: str, apply: StateChange,
                     sends: Callable[[], Sequence[Reply]] = tuple) -> Changed:
        """Load the customer's state under their lock, let `apply` change it
        and return the history entries to append, and save both, with the
        messages `sends()` names (once `apply` ran) in the customer's outbox
        for `Outbox.deliver`. Raises `CustomerGone` if the customer was
        merged away or erased."""
        token = new_lock_token()
        loaded = await self.take(customer_id, token, message_key=None)
        if loaded.moved:
            raise CustomerGone(f"customer {customer_id} was joined into another or erased")
        try:
            state = ConversationState.from_json(loaded.state)
            with self.kept(customer_id, token):
                entries = await apply(state)
            replies = tuple(sends())
            saved = await self.store.save_and_unlock(
                customer_id, token=token, state=state.to_json(), entries=entries,
                message_key=None, identity=None, outbox=[encode(r) for r in replies],
                claim_seconds=self.options.ttl_seconds)
        except BaseException:
            await self.release_quietly(customer_id, token)
            raise
        if not saved:
            raise LockLost(f"lock of customer {customer_id} expired before the change was saved")
        return Changed(state, self.batch(customer_id, token, replies, loaded, saved))

    @staticmethod
    def batch(customer_id: str, token: str, replies: Sequence[Reply], loaded: LoadResult,
              saved: Saved) -> Batch:
        """What a save left in the outbox, for its worker to deliver."""
        return Batch(customer_id=customer_id, token=token, replies=tuple(replies),
                     first_seq=saved.first_seq, claimed=saved.claimed, earlier=saved.earlier,
                     mark=loaded.mark, saved_at=time.monotonic())
