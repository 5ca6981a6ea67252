"""The contract suite runs on every store: in memory, on one Redis, and on a
Redis Cluster of three masters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

import pytest

from bot.core.ports import ContextStore


@pytest.fixture(params=["memory", "redis", "cluster"])
async def store(
    request: pytest.FixtureRequest,
    store_of: Callable[[str], AbstractAsyncContextManager[ContextStore]],
) -> AsyncIterator[ContextStore]:
    async with store_of(request.param) as opened:
        yield opened
