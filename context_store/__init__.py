"""Where conversations live: the two implementations of the store protocols in `bot.core.ports`."""

from context_store.memory import MemoryContextStore
from context_store.redis import RedisContextStore

__all__ = ["MemoryContextStore", "RedisContextStore"]
