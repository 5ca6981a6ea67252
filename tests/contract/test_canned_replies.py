"""The contract of `CannedReplyStore` (a slice of `AgentStore`) on every agent
store: in memory, on one Redis, and on a Redis Cluster of three masters."""

from __future__ import annotations

import asyncio
from typing import ClassVar

import pytest
import redis.asyncio as aioredis

from bot.handoff.ports import AgentStore, CannedReply, CannedReplyStore
from context_store.agents_redis import RedisAgentStore

GREET = CannedReply("greet", "Hi {customer_name}, I'm {agent_name}.")


@pytest.fixture
def canned(agents: AgentStore) -> CannedReplyStore:
    """The agent store (`agents`, tests/contract/conftest.py), as its canned-reply slice."""
    return agents


class TestCannedReplyStore:
    """`CannedReplyStore`: canned replies by shortcut."""

    covers: ClassVar[type] = CannedReplyStore

    async def test_replies_are_kept_replaced_listed_by_shortcut_and_dropped(
        self, canned: CannedReplyStore
    ) -> None:
        assert await canned.get_canned("greet") is None
        assert await canned.canned_replies() == []
        assert await canned.put_canned(CannedReply("ship", "It ships today."), 10)
        assert await canned.put_canned(CannedReply("greet", "Hello."), 10)
        assert await canned.put_canned(GREET, 10)
        assert await canned.put_canned(CannedReply("bye-2", "Bye!"), 10)
        assert await canned.get_canned("greet") == GREET
        assert [r.shortcut for r in await canned.canned_replies()] == ["bye-2", "greet", "ship"]
        assert (await canned.canned_replies())[1] == GREET
        assert await canned.drop_canned("greet") is True
        assert await canned.drop_canned("greet") is False
        assert await canned.get_canned("greet") is None
        assert [r.shortcut for r in await canned.canned_replies()] == ["bye-2", "ship"]

    async def test_a_new_shortcut_past_the_limit_is_refused_and_not_kept(
        self, canned: CannedReplyStore
    ) -> None:
        for name in ("a", "b", "c"):
            assert await canned.put_canned(CannedReply(name, name.upper()), 3)
        assert await canned.put_canned(CannedReply("d", "D"), 3) is False
        assert await canned.get_canned("d") is None
        # Replacing one at the limit is no new one.
        assert await canned.put_canned(CannedReply("b", "B again"), 3)
        assert [(r.shortcut, r.text) for r in await canned.canned_replies()] == [
            ("a", "A"), ("b", "B again"), ("c", "C")]
        await canned.drop_canned("a")
        assert await canned.put_canned(CannedReply("d", "D"), 3)
        assert [r.shortcut for r in await canned.canned_replies()] == ["b", "c", "d"]

    async def test_saves_at_once_never_pass_the_limit(self, canned: CannedReplyStore) -> None:
        kept = await asyncio.gather(*(canned.put_canned(CannedReply(f"r{n}", "text"), 5)
                                      for n in range(20)))
        assert kept.count(True) == 5
        assert len(await canned.canned_replies()) == 5

    async def test_text_is_kept_as_written(self, canned: CannedReplyStore) -> None:
        text = 'Grüße 👋 <b>"quoted"</b>\nline two {agent_name}'
        assert await canned.put_canned(CannedReply("unicode", text), 10)
        assert await canned.get_canned("unicode") == CannedReply("unicode", text)


# Not a slice: where the Redis agent store keeps them.
async def test_redis_keeps_them_in_one_hash_under_the_prefix(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        await RedisAgentStore(client, prefix="tenant").put_canned(GREET, 10)
        assert [k async for k in client.scan_iter("*")] == ["tenant:canned"]
        assert await client.hgetall("tenant:canned") == {"greet": GREET.text}
    finally:
        await client.aclose()
