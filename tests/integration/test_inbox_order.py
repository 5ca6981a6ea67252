"""Each customer's Slack messages are processed, and answered, in the order
Slack sent them, by two worker processes sharing one Redis, one of them
killed mid-burst (`tests/support/slack_worker.py`); and where a lane's items
live in Redis."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import redis.asyncio as aioredis

from bot.core.backoff import poll_until
from bot.core.model import ChannelIdentity
from context_store import RedisContextStore
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi, signed_headers
from tests.support.redis_server import free_port, redis_keys
from tests.support.slack_rig import SECRET, dm

ROOT = Path(__file__).resolve().parents[2]
CUSTOMERS = 6
BURST = 30
# Every customer has had this many messages accepted when a worker is frozen
# and then killed.
KILL_AFTER = 10
# How long a dead worker's items stay its own before another takes them over.
STALE_MS = 1000


@dataclass(slots=True)
class WorkerProcess:
    proc: asyncio.subprocess.Process
    url: str

    async def line(self, starting: str, timeout: float = 20) -> str:
        """The next line the worker prints that starts with `starting`."""
        assert self.proc.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                line = (await self.proc.stdout.readline()).decode()
                assert line, "the worker exited"
                if line.startswith(starting):
                    return line


@asynccontextmanager
async def worker_processes(
    count: int, redis_url: str, api_url: str, logs: Path
) -> AsyncIterator[list[WorkerProcess]]:
    """Worker processes serving Slack's events, each on a free port and
    logging to a file in `logs`; yielded once all of them serve."""
    workers = []
    try:
        for n in range(count):
            port = free_port()
            with (logs / f"worker-{n}.log").open("wb") as log:
                proc = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "tests.support.slack_worker",
                    redis_url, api_url, str(port), str(STALE_MS),
                    cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=log,
                )
            workers.append(WorkerProcess(proc, f"http://127.0.0.1:{port}/slack/events"))
        await asyncio.gather(*(worker.line("serving") for worker in workers))
        yield workers
    finally:
        for worker in workers:
            if worker.proc.returncode is None:
                worker.proc.terminate()
            await asyncio.wait_for(worker.proc.wait(), 20)


def user(customer: int) -> str:
    return f"U0C{customer:04d}"


def channel(customer: int) -> str:
    return f"D0C{customer:04d}"


def text(customer: int, n: int) -> str:
    return f"customer {customer} message {n}"


async def post(http: aiohttp.ClientSession, live: list[WorkerProcess], body: dict[str, object],
               turn: int) -> None:
    """Post one event as Slack does: to one of the live workers, and again
    (a retry, same event id) to another while none answers 200."""
    raw = json.dumps(body).encode()
    for retry in range(10):
        headers = signed_headers(SECRET, raw, retry=retry or None)
        headers["Content-Type"] = "application/json"
        worker = live[(turn + retry) % len(live)]
        try:
            async with http.post(worker.url, data=raw, headers=headers) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass  # the worker died with the request: Slack sends it again
    raise AssertionError(f"no worker accepted {body['event_id']}")


async def drained(client: aioredis.Redis) -> bool | None:
    """True once no inbox stream holds an entry (acknowledged ones are
    deleted), None while one does."""
    async for key in client.scan_iter(match="segue:inbox*"):
        if await client.type(key) == "stream" and await client.xlen(key):
            return None
    return True


async def test_each_customers_messages_and_replies_keep_their_order_when_a_worker_dies(
    redis_url: str, redis_client: aioredis.Redis, slack_api: FakeSlackApi,
    http: aiohttp.ClientSession, tmp_path: Path,
) -> None:
    async with worker_processes(2, redis_url, slack_api.url, tmp_path) as workers:
        victim = workers[0]
        live = list(workers)
        accepted = [0] * CUSTOMERS
        halfway = asyncio.Event()

        async def burst(customer: int) -> None:
            for n in range(BURST):
                body = dm(text(customer, n), event_id=f"Ev{customer:02d}{n:03d}",
                          user=user(customer), channel=channel(customer))
                await post(http, live, body, customer + n)
                accepted[customer] += 1
                if min(accepted) >= KILL_AFTER:
                    halfway.set()

        async def kill_mid_burst() -> None:
            await halfway.wait()
            victim.proc.send_signal(signal.SIGUSR1)
            # Every message it is handling waits in the dialog, not one of
            # them saved: all it took is left for the survivor to take over.
            held = int((await victim.line("quiet")).split()[1])
            assert held >= 1
            live.remove(victim)
            victim.proc.kill()
            await victim.proc.wait()

        await asyncio.gather(*(burst(c) for c in range(CUSTOMERS)), kill_mid_burst())
        assert victim.proc.returncode == -signal.SIGKILL

        await slack_api.wait_posted(CUSTOMERS * BURST, timeout=60)
        # Every queued item acknowledged: nothing is left to answer again.
        assert await poll_until(lambda: drained(redis_client), within_seconds=30)

    store = RedisContextStore.from_url(redis_url)
    try:
        for customer in range(CUSTOMERS):
            sent = [text(customer, n) for n in range(BURST)]
            answered = [p["text"] for p in slack_api.posted() if p["channel"] == channel(customer)]
            assert answered == [f"echo: {t}" for t in sent], customer
            identity = ChannelIdentity("slack", f"{TEAM_ID}:{user(customer)}")
            history = await store.history(await store.resolve_customer(identity, "none"), 100)
            assert [(e.sender, e.text) for e in history] == [
                entry for t in sent for entry in (("customer", t), ("bot", f"echo: {t}"))
            ], customer
    finally:
        await store.close()


async def test_a_lane_lives_in_its_partitions_stream_and_leaves_it_empty(
    redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    item_id = await redis_store.inbox_add("hello", lane="slack:T1:U0")
    assert item_id.startswith("15/")
    assert await redis_keys(redis_client) == ["segue:inbox:15"]
    (item,) = await redis_store.inbox_read("w1", 15, count=1, block_ms=0)
    assert (item.item_id, item.payload) == (item_id, "hello")
    await redis_store.inbox_ack(item.item_id)
    await redis_store.inbox_release("w1")
    # No lease or worker key: the consumer group's pending entry is the lease.
    assert await redis_keys(redis_client) == ["segue:inbox:15"]
    assert await redis_client.xlen("segue:inbox:15") == 0
