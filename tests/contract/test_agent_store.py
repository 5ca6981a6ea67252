"""One contract for both `AgentStore` implementations (memory and Redis), one
class per slice of `bot.handoff.ports` (`WebPresenceStore` is in `bot.core.ports`)."""

from __future__ import annotations

import asyncio
import time
from typing import ClassVar

import redis.asyncio as aioredis

from bot.core.backoff import Backoff
from bot.core.ports import WebPresenceStore
from bot.handoff.ports import (
    AccountStore,
    AgentAccount,
    AgentPresenceStore,
    AgentSession,
    AgentSessionStore,
    AgentStore,
    HandoffQueueStore,
    LoginAttemptStore,
)
from context_store.agents_redis import RedisAgentStore


def account(name: str, role: str = "agent") -> AgentAccount:
    return AgentAccount(username=name, display_name=name.title(), role=role,  # type: ignore[arg-type]
                        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA")


RULE = Backoff(free=2, first_delay=1.0, max_delay=5.0, window_seconds=60)


class TestAccountStore:
    """`AccountStore`: agent accounts."""

    covers: ClassVar[type] = AccountStore

    async def test_accounts_are_kept_replaced_and_listed_by_name(self, agents: AgentStore) -> None:
        assert await agents.get_agent("ann") is None
        await agents.put_agent(account("zed"))
        await agents.put_agent(account("ann"))
        await agents.put_agent(account("ann", "admin"))
        assert (await agents.get_agent("ann")) == account("ann", "admin")
        assert [a.username for a in await agents.agents()] == ["ann", "zed"]


class TestAgentSessionStore:
    """`AgentSessionStore`: logged-in consoles."""

    covers: ClassVar[type] = AgentSessionStore

    async def test_a_session_lives_until_dropped(self, agents: AgentStore) -> None:
        session = AgentSession("ann", time.time() + 60, stamp="pw-stamp")
        await agents.put_session("digest-1", session)
        assert await agents.get_session("digest-1") == session
        assert await agents.get_session("digest-2") is None
        await agents.drop_session("digest-1")
        assert await agents.get_session("digest-1") is None


class TestLoginAttemptStore:
    """`LoginAttemptStore`: login attempts counted per window, and delays that grow."""

    covers: ClassVar[type] = LoginAttemptStore

    async def test_failures_count_up_and_clear(self, agents: AgentStore) -> None:
        assert await agents.failures("user:ann") == 0
        assert [await agents.add_failure("user:ann", 60) for _ in range(3)] == [1, 2, 3]
        assert await agents.failures("user:ann") == 3
        assert await agents.failures("user:bob") == 0
        await agents.clear_failures("user:ann")
        assert await agents.failures("user:ann") == 0

    async def test_a_forgiven_attempt_is_taken_back_but_never_starts_a_count(
        self, agents: AgentStore,
    ) -> None:
        await agents.forgive_failure("addr:10.0.0.1")
        assert await agents.failures("addr:10.0.0.1") == 0
        assert await agents.add_failure("addr:10.0.0.1", 60) == 1
        await agents.forgive_failure("addr:10.0.0.1")
        await agents.forgive_failure("addr:10.0.0.1")
        assert await agents.failures("addr:10.0.0.1") == 0
        assert await agents.add_failure("addr:10.0.0.1", 60) == 1

    async def test_concurrent_attempts_each_get_their_own_count(self, agents: AgentStore) -> None:
        counts = await asyncio.gather(*(agents.add_failure("user:ann", 60) for _ in range(30)))
        assert sorted(counts) == list(range(1, 31))

    async def test_attempts_wait_longer_and_longer_once_the_free_ones_are_used(
        self, agents: AgentStore,
    ) -> None:
        now = float(int(time.time()))  # whole seconds: exact in milliseconds too
        waits = [await agents.add_attempt("pair:ann@a", RULE, now) for _ in range(6)]
        assert waits == [0.0, 0.0, 2.0, 4.0, 5.0, 5.0]  # refused attempts push the wait on
        assert await agents.add_attempt("pair:ann@a", RULE, now + 4.5) == 5.0
        assert await agents.add_attempt("pair:ann@a", RULE, now + 9.5) == 0.0  # waited enough
        assert await agents.add_attempt("pair:ann@b", RULE, now + 9.5) == 0.0  # its own count
        await agents.clear_attempts("pair:ann@a")
        assert [await agents.add_attempt("pair:ann@a", RULE, now + 10) for _ in range(2)] == [0, 0]

    async def test_concurrent_attempts_get_one_go_past_the_free_ones(
        self, agents: AgentStore
    ) -> None:
        now = time.time()
        waits = await asyncio.gather(*(agents.add_attempt("pair:ann@a", RULE, now)
                                       for _ in range(20)))
        assert waits.count(0.0) == 2


class TestHandoffQueueStore:
    """`HandoffQueueStore`: the queue of handed-off conversations and who holds each."""

    covers: ClassVar[type] = HandoffQueueStore

    async def test_the_queue_is_oldest_first_and_claims_leave_it(self, agents: AgentStore) -> None:
        await agents.index_queued("c2", 200.0)
        await agents.index_queued("c1", 100.0)
        await agents.index_queued("c3", 300.0)
        assert [e.customer for e in await agents.queued()] == ["c1", "c2", "c3"]
        assert await agents.queue_length() == 3
        await agents.index_claimed("c1", "ann")
        assert [e.customer for e in await agents.queued()] == ["c2", "c3"]
        assert await agents.claimed() == {"c1": "ann"}
        await agents.index_queued("c1", 400.0)  # released back to the queue
        assert await agents.claimed() == {}
        assert (await agents.queued())[-1].customer == "c1"
        for customer in ("c1", "c2", "c3"):
            await agents.index_closed(customer)
        assert await agents.queued() == [] and await agents.queue_length() == 0

    async def test_the_queue_lists_its_oldest_and_drops_many_at_once(
        self, agents: AgentStore
    ) -> None:
        for n in range(10):
            await agents.index_queued(f"c{n}", 100.0 + n)
        await agents.index_claimed("c9", "ann")
        assert [e.customer for e in await agents.queued(3)] == ["c0", "c1", "c2"]
        assert await agents.queued(0) == []
        await agents.index_closed_all(["c0", "c2", "c9", "unknown"])
        await agents.index_closed_all([])
        assert [e.customer for e in await agents.queued(3)] == ["c1", "c3", "c4"]
        assert await agents.queue_length() == 7 and await agents.claimed() == {}


class TestAgentPresenceStore:
    """`AgentPresenceStore`: which agents have a console open, on which worker."""

    covers: ClassVar[type] = AgentPresenceStore

    async def test_agent_presence_per_worker(self, agents: AgentStore) -> None:
        await agents.touch_agent("ann", "w1", 30)
        await agents.touch_agent("ann", "w2", 30)
        await agents.touch_agent("bob", "w1", 30)
        assert await agents.agents_online() == {"ann", "bob"}
        await agents.drop_agent("ann", "w1")
        assert await agents.agents_online() == {"ann", "bob"}  # still open on w2
        await agents.drop_agent("ann", "w2")
        assert await agents.agents_online() == {"bob"}

    async def test_agent_presence_runs_out(self, agents: AgentStore) -> None:
        await agents.touch_agent("ann", "w1", -1)
        assert await agents.agents_online() == set()


class TestWebPresenceStore:
    """`WebPresenceStore`: which workers hold a web chat session's sockets."""

    covers: ClassVar[type] = WebPresenceStore

    async def test_web_sockets_by_worker(self, agents: AgentStore) -> None:
        await agents.touch_web(["s1", "s2"], "w1", 30)
        await agents.touch_web(["s1"], "w2", 30)
        assert await agents.web_workers("s1") == {"w1", "w2"}
        assert await agents.web_workers("s3") == set()
        await agents.drop_web("s1", "w1")
        assert await agents.web_workers("s1") == {"w2"}
        await agents.touch_web([], "w1", 30)  # nothing to refresh is fine

    async def test_web_presence_runs_out(self, agents: AgentStore) -> None:
        await agents.touch_web(["s1"], "w1", -1)
        assert await agents.web_workers("s1") == set()


# Not a slice: the Redis agent store's own keys.
async def test_redis_keys_expire_where_they_can_be_left_behind(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        agents = RedisAgentStore(client)
        await agents.put_session("digest", AgentSession("ann", time.time() + 120))
        await agents.add_failure("user:ann", 900)
        await agents.add_failure("addr:10.0.0.1", 900)
        await agents.add_failure("addr:10.0.0.1", 900)
        await agents.forgive_failure("addr:10.0.0.1")
        await agents.forgive_failure("addr:10.0.0.2")  # never counted: no key
        for _ in range(3):
            await agents.add_attempt("pair:ann@10.0.0.1", RULE, time.time())
        await agents.touch_web(["s1"], "w1", 60)
        ttls = {key: await client.ttl(key) async for key in client.scan_iter("segue:*")}
        assert 0 < ttls["segue:agent-session:digest"] <= 120
        assert 0 < ttls["segue:agent-login:user:ann"] <= 900
        assert 0 < ttls["segue:agent-login:addr:10.0.0.1"] <= 900
        assert "segue:agent-login:addr:10.0.0.2" not in ttls
        # A pair is forgotten a window after its last delay (here 4 s) ends.
        assert 60 < ttls["segue:agent-attempts:pair:ann@10.0.0.1"] <= 64
        assert 0 < ttls["segue:{w:s1}:sockets"] <= 60
    finally:
        await client.aclose()
