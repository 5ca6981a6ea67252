"""Which customer a channel identity belongs to."""

from __future__ import annotations

import secrets
import time

from bot.core.model import ChannelIdentity
from bot.core.ports import TurnStore


def new_customer_id() -> str:
    return secrets.token_hex(8)


class IdentityCache:
    """Channel identity -> customer id, kept in process to save a Redis round
    trip per turn. An entry can go stale when customers are merged or erased;
    the store then answers `moved` and the engine resolves again. Entries
    expire well before the store's `moved` markers do."""

    def __init__(self, *, max_entries: int = 100_000, max_age_seconds: float = 3600) -> None:
        self.max_entries = max_entries
        self.max_age_seconds = max_age_seconds
        self._entries: dict[ChannelIdentity, tuple[str, float]] = {}

    def get(self, identity: ChannelIdentity) -> str | None:
        entry = self._entries.get(identity)
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def put(self, identity: ChannelIdentity, customer_id: str) -> None:
        if len(self._entries) >= self.max_entries:
            # Dicts keep insertion order: drop the oldest tenth at once.
            for stale in list(self._entries)[: self.max_entries // 10 + 1]:
                del self._entries[stale]
        self._entries[identity] = (customer_id, time.monotonic() + self.max_age_seconds)

    def drop(self, identity: ChannelIdentity) -> None:
        self._entries.pop(identity, None)


class Customers:
    """Resolves channel identities to customers, through the cache."""

    def __init__(self, store: TurnStore, cache: IdentityCache | None = None) -> None:
        self.store = store
        self.cache = cache if cache is not None else IdentityCache()

    async def customer_of(self, identity: ChannelIdentity) -> str:
        """The customer an identity belongs to, creating one if it is new."""
        customer_id = self.cache.get(identity)
        if customer_id is None:
            customer_id = await self.store.resolve_customer(identity, new_customer_id())
            self.cache.put(identity, customer_id)
        return customer_id

    def forget(self, identity: ChannelIdentity) -> None:
        """The identity's customer changed (merged, unlinked, erased)."""
        self.cache.drop(identity)
