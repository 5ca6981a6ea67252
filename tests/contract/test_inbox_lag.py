"""`InboxLagStore` on every store: the age of the oldest inbox item not yet
acknowledged, taken or not, with or without a lane (the inbox-lag gauge)."""

from __future__ import annotations

import asyncio

from bot.core.inbox import InboxLagStore
from bot.core.ports import ContextStore
from context_store.keys import lane_partition

LANE = "slack:T1:U0"
WAIT = 0.2  # time passing is what is measured


async def test_the_oldest_unacknowledged_item_gives_the_inbox_its_age(
    store: ContextStore,
) -> None:
    assert isinstance(store, InboxLagStore)
    assert await store.inbox_oldest_age() is None

    loose = await store.inbox_add("first")
    await asyncio.sleep(WAIT)
    laned = await store.inbox_add("second", lane=LANE)
    await asyncio.sleep(WAIT)
    age = await store.inbox_oldest_age()
    assert age is not None and 2 * WAIT - 0.002 <= age < 5  # the first one's, ms resolution

    # Taken is not handled: the first still counts until acknowledged.
    [taken] = await store.inbox_read("c1", None, count=5, block_ms=0)
    assert taken.item_id == loose
    first = await store.inbox_oldest_age()
    assert first is not None and first >= 2 * WAIT - 0.002
    await store.inbox_ack(loose)
    second = await store.inbox_oldest_age()
    # The second one's now, queued WAIT later.
    assert second is not None and WAIT - 0.002 <= second < first

    [held] = await store.inbox_read("c1", lane_partition(LANE), count=1, block_ms=0)
    assert held.item_id == laned
    assert await store.inbox_oldest_age() is not None
    await store.inbox_ack(laned)
    assert await store.inbox_oldest_age() is None
