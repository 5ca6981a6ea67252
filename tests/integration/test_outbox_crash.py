"""A worker killed (SIGKILL) while a reply is on its way to Telegram or Slack:
the reply still arrives, exactly once, the turn's replies in order, sent by
the worker started again or by the one still running. Real `segue run`
processes on a real Redis, against the local Bot API and Web API fakes,
which hold the send until the worker is dead and then drop it, as the
platform drops a request whose sender hung up."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import redis.asyncio as aioredis

from tests.fakes.slack_api import FakeSlackApi, signed_headers
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegram
from tests.support.redis_server import free_port
from tests.support.slack_rig import SECRET as SLACK_SECRET
from tests.support.slack_rig import TOKEN as SLACK_TOKEN
from tests.support.slack_rig import dm

ROOT = Path(__file__).resolve().parents[2]
WEBHOOK_SECRET = "outbox-webhook-secret"
# A worker's claim on the replies it saved (the lock's lifetime): a dead
# worker's replies are sent by another this long after it saved them.
CLAIM_SECONDS = 1
# The send the worker dies in is held this long at most (it ends when the
# worker hangs up): time enough to start another worker meanwhile.
HOLD_SECONDS = 30.0

ASKED = "What is your order number? It looks like A1001."
# The two replies of one turn, in this order.
ORDER_REPLIES = ["Order A1001 is shipped. It left our warehouse yesterday and should "
                 "arrive within 2 days.", "Anything else I can help with?"]


class Worker:
    """One `segue run` process; its log is read as it is written."""

    def __init__(self, port: int, proc: asyncio.subprocess.Process) -> None:
        self.port = port
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.serving = asyncio.Event()
        self.log: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := (await self.proc.stderr.readline()).decode():
            self.log.append(line)
            if "is serving on" in line:
                self.serving.set()

    async def started(self) -> None:
        serving = asyncio.create_task(self.serving.wait())
        await asyncio.wait({serving, self._reader}, timeout=30,
                           return_when=asyncio.FIRST_COMPLETED)
        serving.cancel()
        assert self.serving.is_set(), "".join(self.log)

    async def kill(self) -> None:
        """SIGKILL: no clean-up, no last words."""
        os.kill(self.proc.pid, signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL
        await self._reader

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            await asyncio.wait_for(self.proc.wait(), 20)
        await self._reader


def worker_env(redis_url: str, telegram: FakeTelegram, slack: FakeSlackApi,
               port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    env.update({
        "SEGUE_REDIS_URL": redis_url,
        "SEGUE_WEBCHAT_SECRET": "outbox-web-secret",
        "SEGUE_LOCK_TTL_SECONDS": str(CLAIM_SECONDS),
        "SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
        "SEGUE_TELEGRAM_API_URL": telegram.url,
        "SEGUE_TELEGRAM_MODE": "webhook",
        "SEGUE_TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SEGUE_TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram/webhook",
        "SEGUE_SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SEGUE_SLACK_SIGNING_SECRET": SLACK_SECRET,
        "SEGUE_SLACK_API_URL": slack.url,
    })
    return env


@asynccontextmanager
async def running(redis_url: str, telegram: FakeTelegram,
                  slack: FakeSlackApi) -> AsyncIterator[Callable[..., Any]]:
    """Starts workers (`await start()`, or `await start(port)` again after a
    kill); stops whatever still runs at the end."""
    workers: list[Worker] = []

    async def start(port: int | None = None) -> Worker:
        port = port or free_port()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port),
            cwd=ROOT, env=worker_env(redis_url, telegram, slack, port),
            stderr=asyncio.subprocess.PIPE)
        worker = Worker(port, proc)
        workers.append(worker)
        await worker.started()
        return worker

    try:
        yield start
    finally:
        for worker in workers:
            await worker.stop()


class Channel:
    """What the test does on one platform: send the customer's message to a
    worker, and read back what the bot sent."""

    def __init__(self, name: str, http: aiohttp.ClientSession, telegram: FakeTelegram,
                 slack: FakeSlackApi) -> None:
        self.name, self.http, self.telegram, self.slack = name, http, telegram, slack
        self._events = 0

    def message(self, text: str) -> dict[str, Any]:
        if self.name == "telegram":
            return self.telegram.message(text)
        self._events += 1
        return dm(text, event_id=f"Ev0UTB0X{self._events}")

    async def post(self, worker: Worker, message: dict[str, Any]) -> int:
        """The platform delivering `message` to `worker`: the HTTP status."""
        raw = json.dumps(message).encode()
        if self.name == "telegram":
            path = "/telegram/webhook"
            headers = {"X-Telegram-Bot-Api-Secret-Token": WEBHOOK_SECRET}
        else:
            path = "/slack/events"
            headers = signed_headers(SLACK_SECRET, raw)
        headers["Content-Type"] = "application/json"
        async with self.http.post(worker.url + path, data=raw, headers=headers) as response:
            await response.read()
            return response.status

    def hold(self) -> None:
        if self.name == "telegram":
            self.telegram.hold(seconds=HOLD_SECONDS)
        else:
            self.slack.hold(seconds=HOLD_SECONDS)

    async def wait_holding(self) -> None:
        if self.name == "telegram":
            await self.telegram.wait_holding()
        else:
            await self.slack.wait_holding()

    async def wait_abandoned(self) -> None:
        """Until the platform dropped the held send, whose sender hung up."""
        if self.name == "telegram":
            await self.telegram.wait_abandoned()
        else:
            await self.slack.wait_abandoned()

    def abandoned(self) -> int:
        return len(self.telegram.abandoned if self.name == "telegram" else self.slack.abandoned)

    def sent(self) -> list[str]:
        """The text of every message the platform accepted from the bot, in order."""
        if self.name == "telegram":
            return self.telegram.texts_sent()
        return self.slack.texts_posted()

    async def wait_sent(self, count: int, timeout: float = 20.0) -> list[str]:
        async with asyncio.timeout(timeout):
            if self.name == "telegram":
                await self.telegram.wait_for("sendMessage", count, timeout=timeout)
            else:
                await self.slack.wait_posted(count, timeout=timeout)
        return self.sent()


@pytest.fixture
async def fakes() -> AsyncIterator[tuple[FakeTelegram, FakeSlackApi]]:
    async with FakeTelegram() as telegram, FakeSlackApi(token=SLACK_TOKEN) as slack:
        yield telegram, slack


@pytest.fixture(params=["telegram", "slack"])
def channel(request: pytest.FixtureRequest, http: aiohttp.ClientSession,
            fakes: tuple[FakeTelegram, FakeSlackApi]) -> Channel:
    return Channel(request.param, http, *fakes)


async def ask_for_an_order(channel: Channel, worker: Worker) -> None:
    """A first turn, answered as usual: the bot asks for the order number."""
    assert await channel.post(worker, channel.message("where is my order")) == 200
    assert await channel.wait_sent(1) == [ASKED]


async def killed_while_sending(channel: Channel, worker: Worker, message: dict[str, Any],
                               meanwhile: Callable[[], Awaitable[object]] | None = None) -> None:
    """`message` reaches `worker`, whose first reply the platform holds;
    `meanwhile` runs, and the worker is killed while it still waits for the
    platform's answer."""
    channel.hold()
    posting = asyncio.create_task(channel.post(worker, message))
    await channel.wait_holding()
    if meanwhile is not None:
        await meanwhile()
    await worker.kill()
    await channel.wait_abandoned()
    if channel.name == "telegram":
        # Telegram had no answer to its webhook call: it will deliver the update again.
        with pytest.raises(aiohttp.ClientError):
            await posting
    else:
        assert await posting == 200  # Slack's event was queued and acknowledged at once


async def settled(redis_url: str) -> None:
    """Until no customer is left in the outbox index: every reply is
    delivered and no sweeper has anything left to look at (another
    process's progress in Redis: polled)."""
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        async with asyncio.timeout(20):
            while await client.exists("segue:outbox"):
                await asyncio.sleep(0.05)
        assert [k async for k in client.scan_iter(match="segue:{c:*}:outbox")] == []
    finally:
        await client.aclose()


async def test_the_reply_a_killed_worker_was_sending_arrives_once_after_a_restart(
    redis_url: str, fakes: tuple[FakeTelegram, FakeSlackApi], channel: Channel
) -> None:
    async with running(redis_url, *fakes) as start:
        worker = await start()
        await ask_for_an_order(channel, worker)
        order = channel.message("A1001")
        await killed_while_sending(channel, worker, order)

        again = await start(worker.port)
        if channel.name == "telegram":
            # The update delivered again: the turn is saved, so it is not answered again.
            assert await channel.post(again, order) == 200
        sent = await channel.wait_sent(1 + len(ORDER_REPLIES))
        await settled(redis_url)
        sent = channel.sent()
    assert sent == [ASKED, *ORDER_REPLIES]
    assert channel.abandoned() == 1  # the send the worker died in never arrived


async def test_the_reply_a_killed_worker_was_sending_is_sent_once_by_the_survivor(
    redis_url: str, fakes: tuple[FakeTelegram, FakeSlackApi], channel: Channel
) -> None:
    async with running(redis_url, *fakes) as start:
        doomed = await start()
        await ask_for_an_order(channel, doomed)
        order = channel.message("A1001")
        workers: list[Worker] = []

        async def start_the_survivor() -> None:
            # Started once the doomed worker has taken the message (Slack's
            # queue could hand it to either).
            workers.append(await start())

        await killed_while_sending(channel, doomed, order, start_the_survivor)
        (survivor,) = workers
        if channel.name == "telegram":
            assert await channel.post(survivor, order) == 200
        await channel.wait_sent(1 + len(ORDER_REPLIES))
        await settled(redis_url)
        sent = channel.sent()
        assert survivor.proc.returncode is None
    assert sent == [ASKED, *ORDER_REPLIES]
    assert channel.abandoned() == 1
