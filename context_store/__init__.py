"""Where conversations live: the `ContextStore` protocol and its two stores."""

from context_store.base import ContextStore, LoadResult, StoreLimits
from context_store.memory import MemoryContextStore
from context_store.redis import RedisContextStore

__all__ = ["ContextStore", "LoadResult", "MemoryContextStore", "RedisContextStore", "StoreLimits"]
