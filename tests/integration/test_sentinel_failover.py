"""Segue on Redis Sentinel (`redis+sentinel://…?replicas=1`) while the master
is replaced: a web chat conversation goes on across `SENTINEL FAILOVER`, no
message that was acknowledged is lost, none is answered twice, and the
history holds each once, in order.

Messages sent while the master changes may get an error frame; the client
sends them again with the same id, as the widget does. What holds is
"accepted once": an acknowledged message survives the failover, because
`replicas=1` acknowledges a write only once the replica holds it (see
`context_store.redis_replicas`, which also says what asynchronous replication
loses without it).

One master, one replica, three sentinels (quorum 2), real processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.core.errors import StoreUnavailable
from context_store import RedisContextStore
from context_store.redis_replicas import Replication, replication_of
from tests.support.app_server import RunningApp, serve_echo
from tests.support.redis_sentinel import SentinelSet, redis_sentinel_set
from tests.support.webchat_client import WebChatClient

# What the web chat asks a client to send again.
SEND_AGAIN = {"store_unavailable", "store_error", "busy"}


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    with redis_sentinel_set() as found:
        yield found


@pytest.fixture
async def app(sentinels: SentinelSet) -> AsyncIterator[RunningApp]:
    sentinels.flush()
    # A short lock: one taken on the old master just before the switch, and
    # replicated, would otherwise hold its customer for 30 s.
    async with serve_echo(f"{sentinels.url}?replicas=1&replica_wait_ms=500",
                          lock_ttl_seconds=2.0, lock_wait_seconds=3.0,
                          rate_limits="off") as running:
        yield running


class Conversation:
    """One web chat visitor who sends each message until it is acknowledged,
    with the same id, and keeps every frame the server sends."""

    def __init__(self, client: WebChatClient) -> None:
        self.client = client
        self.frames: list[dict[str, Any]] = []
        self.sent: list[tuple[str, str]] = []  # (id, text), acknowledged
        self.refused = 0

    async def send(self, text: str) -> None:
        msg_id = f"m-{len(self.sent) + 1}"
        async with asyncio.timeout(60):
            while not await self._accepted(msg_id, text):
                self.refused += 1
        self.sent.append((msg_id, text))
        await self.reply_to(msg_id)

    async def _accepted(self, msg_id: str, text: str) -> bool:
        await self.client.say(text, msg_id=msg_id)
        while True:
            frame = await self._next()
            if frame["type"] == "ack" and frame["id"] == msg_id:
                return True
            if frame["type"] == "error":
                assert frame["code"] in SEND_AGAIN, frame
                return False

    async def reply_to(self, msg_id: str) -> None:
        while not any(f.get("reply_to") == msg_id for f in self.frames):
            await self._next()

    async def _next(self) -> dict[str, Any]:
        frame = await self.client.receive(timeout=30)
        self.frames.append(frame)
        return frame

    def replies(self, msg_id: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == "message" and f.get("reply_to") == msg_id]


async def test_a_conversation_goes_on_across_a_failover_and_keeps_every_accepted_message(
    app: RunningApp, sentinels: SentinelSet, http: aiohttp.ClientSession,
) -> None:
    talk = Conversation(await WebChatClient.connect(http, app.ws_url))
    for n in range(5):
        await talk.send(f"before {n}")
    old_master = sentinels.master_port()
    failover = asyncio.create_task(asyncio.to_thread(sentinels.failover))
    n = 0
    while not failover.done() or n < 3:
        await talk.send(f"during {n}")
        n += 1
    new_master = await failover
    assert new_master != old_master
    for n in range(5):
        await talk.send(f"after {n}")

    # Processed once each: the history on the new master holds every
    # acknowledged message once, in order, each with its one answer.
    history = await app.segue.store.history(talk.client.customer or "", 1000)
    assert [e.text for e in history] == [
        t for _, text in talk.sent for t in (text, f"You said: {text}")]
    # Every acknowledged message was answered, and with that answer only.
    again = {}
    for msg_id, text in talk.sent:
        answers = [r["text"] for r in talk.replies(msg_id)]
        assert answers[:1] == [f"You said: {text}"], (msg_id, answers)
        if len(answers) > 1:
            again[msg_id] = answers
    # Delivery is at least once, twice only within one send: the answer on
    # its way as the replica took over was marked delivered on the old master
    # only, and is sent again from the new one (the same answer, not a
    # second turn). At most that one.
    assert len(again) <= 1, again
    assert all(len(answers) == 2 and answers[0] == answers[1] for answers in again.values())
    assert talk.refused > 0  # the failover was felt
    await talk.client.close()
    assert sentinels.master_port() == new_master


def test_segue_reads_its_own_options_off_the_url() -> None:
    url = "redis+sentinel://:pw@s1:26379,s2:26379/segue/0?replicas=1&replica_wait_ms=250"
    assert replication_of(url) == ("redis+sentinel://:pw@s1:26379,s2:26379/segue/0",
                                   Replication(1, 250))
    assert replication_of("redis://h:6379/0?socket_timeout=3&replicas=2") == (
        "redis://h:6379/0?socket_timeout=3", Replication(2, 1000))
    assert replication_of("redis://h:6379/0") == ("redis://h:6379/0", Replication())
    for bad in ("redis://h/0?replicas=one", "redis://h/0?replicas=-1",
                "redis://h/0?replicas=1&replica_wait_ms=0"):
        with pytest.raises(ValueError, match="replica"):
            replication_of(bad)
    with pytest.raises(ValueError, match="not a cluster"):
        RedisContextStore.from_url("redis+cluster://h:7000?replicas=1")


async def test_without_a_replica_in_time_a_write_is_not_acknowledged(
    redis_url: str, redis_client: aioredis.Redis,
) -> None:
    """One Redis with no replica: every acknowledging write is refused."""
    store = RedisContextStore.from_url(f"{redis_url}?replicas=1&replica_wait_ms=50")
    try:
        with pytest.raises(StoreUnavailable, match="replica"):
            await store.inbox_add("queued")
        loaded = await store.lock_and_load("c1", token="t", ttl_seconds=5, message_key="m1")
        assert loaded.locked
        with pytest.raises(StoreUnavailable, match="replica"):
            await store.save_and_unlock("c1", token="t", state="{}", entries=[],
                                        message_key="m1", identity=None)
        # The write itself happened: sent again, it is a duplicate, which is
        # answered only once the replicas hold it too.
        assert await redis_client.exists("segue:{c:c1}:seen:m1")
        with pytest.raises(StoreUnavailable, match="replica"):
            await store.lock_and_load("c1", token="u", ttl_seconds=5, message_key="m1")
    finally:
        await store.close()
