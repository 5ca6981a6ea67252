"""A clean stop on SIGTERM: `segue run` (alone, and each of `--workers 2`)
stops listening, lets the turns in flight finish and answer, closes web chat
sockets with 1012 (service restart), confirms the Telegram updates it
handled, and exits 0.

A turn is held in flight by the NLU server below: every text that starts
with `HeldNlu.HELD` waits there until the test releases it."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from yarl import URL

from bot.assembly.serving import SHUTDOWN_GRACE_SECONDS
from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi, signed_headers
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegram
from tests.support.handoff_rig import ACCOUNTS, AgentClient
from tests.support.redis_server import free_port
from tests.support.slack_rig import SECRET as SLACK_SECRET
from tests.support.slack_rig import TOKEN as SLACK_TOKEN
from tests.support.slack_rig import dm
from tests.support.webchat_client import WebChatClient
from tests.support.workers_rig import Supervised, running, segue_env, supervised

GREETING = "Hi! I'm Segue's demo assistant."
SERVICE_RESTART = 1012
STOPPING = r"stopping: no new connections"


class HeldNlu:
    """Rasa's `/model/parse` on loopback: every text is a greeting; a text
    starting with `HELD` is held until it is released (`release`), or all
    are (`release_all`)."""

    HELD = "hello, held"

    def __init__(self) -> None:
        self.released = asyncio.Event()
        self.held: list[str] = []
        self._releases: dict[str, asyncio.Event] = {}
        self._changed = asyncio.Condition()
        self.url = ""

    def release(self, text: str) -> None:
        self._releases.setdefault(text, asyncio.Event()).set()

    def release_all(self) -> None:
        self.released.set()

    async def parse(self, request: web.Request) -> web.Response:
        text = (await request.json())["text"]
        if text.startswith(self.HELD):
            async with self._changed:
                self.held.append(text)
                self._changed.notify_all()
            mine = asyncio.ensure_future(self._releases.setdefault(text, asyncio.Event()).wait())
            every = asyncio.ensure_future(self.released.wait())
            await asyncio.wait([mine, every], return_when=asyncio.FIRST_COMPLETED)
            mine.cancel()
            every.cancel()
        return web.json_response({"intent": {"name": "greet", "confidence": 0.99},
                                  "entities": []})

    async def holding(self, count: int = 1) -> None:
        """Wait until `count` texts are held."""
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(lambda: len(self.held) >= count)

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[HeldNlu]:
        app = web.Application()
        app.router.add_post("/model/parse", self.parse)
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/model/parse"
        try:
            yield self
        finally:
            self.release_all()
            await runner.cleanup()


@asynccontextmanager
async def segue_alone(env: dict[str, str]) -> AsyncIterator[Supervised]:
    """`segue run` (one process) on a free loopback port, once it serves."""
    port = free_port()
    async with running(env, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port),
                       port=port) as segue:
        await segue.line(r"Segue is serving on")
        yield segue


async def with_accounts(redis_url: str) -> None:
    """The console accounts ann, bob and root, in the store `segue run` uses."""
    store = RedisContextStore.from_url(redis_url)
    try:
        for account in ACCOUNTS:
            await store.agent_store().put_agent(account)
    finally:
        await store.close()


async def closed_with(client: WebChatClient | AgentClient, *,
                      timeout: float = 10) -> list[dict[str, object]]:
    """The frames `client` receives until its socket closes; asserts that it
    closes with 1012."""
    frames: list[dict[str, object]] = []
    assert client.ws is not None
    async with asyncio.timeout(timeout):
        while True:
            msg = await client.ws.receive()
            if msg.type == aiohttp.WSMsgType.TEXT:
                frames.append(msg.json())
                continue
            assert msg.type == aiohttp.WSMsgType.CLOSE, (msg.type, frames)
            assert msg.data == SERVICE_RESTART, (msg.data, msg.extra, frames)
            return frames


def answered(frames: list[dict[str, object]], msg_id: str) -> list[str]:
    """The texts of the replies to `msg_id` among `frames`, once acked."""
    assert {"type": "ack", "id": msg_id} in frames, frames
    return [str(f["text"]) for f in frames
            if f["type"] == "message" and f.get("reply_to") == msg_id]


async def logged(segue: Supervised, pattern: str, *, times: int, after: int) -> None:
    """Wait until `pattern` is logged `times` times from position `after` on."""
    position = after
    for _ in range(times):
        await segue.line(pattern, after=position)
        position = next(i for i, line in enumerate(segue.lines) if i >= position
                        and re.search(pattern, line)) + 1


async def refused(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url):
            return False
    except aiohttp.ClientConnectorError:
        return True


async def test_sigterm_finishes_the_turns_in_flight_then_closes_sockets_with_1012(
    redis_url: str,
) -> None:
    async with HeldNlu().serving() as nlu, FakeTelegram() as telegram:
        env = segue_env(redis_url, nlu_url=nlu.url, action_timeout_seconds="60",
                        telegram_token=TELEGRAM_TOKEN, telegram_api_url=telegram.url)
        await with_accounts(redis_url)
        async with segue_alone(env) as segue, aiohttp.ClientSession() as http:
            console = await AgentClient(http, segue.url).login("ann")
            await console.listen()
            busy = await WebChatClient.connect(http, segue.ws_url)
            idle = await WebChatClient.connect(http, segue.ws_url)
            on_the_web, on_telegram = f"{nlu.HELD} on the web", f"{nlu.HELD} on Telegram"
            msg_id = await busy.say(on_the_web)
            await nlu.holding(1)
            update = telegram.message(on_telegram)
            await telegram.queue_update(update)
            await nlu.holding(2)

            mark = segue.mark()
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            segue.proc.send_signal(signal.SIGTERM)
            await segue.line(STOPPING, after=mark)
            assert await refused(http, f"{segue.url}/healthz")
            # The idle socket does not wait for the turns in flight.
            assert await closed_with(idle) == []

            nlu.release(on_the_web)
            frames = await closed_with(busy)
            assert [t[:len(GREETING)] for t in answered(frames, msg_id)] == [GREETING]
            # Consoles close after the turns in flight, whose events they show.
            await closed_with(console)
            # Polling stops once the update in hand is answered.
            await segue.line(r"outbox sweeper stopped", after=mark)
            assert segue.proc.returncode is None and not telegram.sent()
            nlu.release(on_telegram)
            assert await segue.exited(SHUTDOWN_GRACE_SECONDS) == 0
            assert loop.time() - signalled < SHUTDOWN_GRACE_SECONDS

        # The Telegram update in hand was answered once, and confirmed.
        chat = str(update["message"]["chat"]["id"])
        replies = [c for c in telegram.sent() if c.params["chat_id"] == chat]
        assert len(replies) == 1 and replies[0].params["text"].startswith(GREETING)
        confirmed = str(update["update_id"] + 1)
        last_poll = telegram.sent("getUpdates")[-1]
        assert last_poll.params["offset"] == confirmed
        assert float(last_poll.params["timeout"]) == 0
    for line in (STOPPING, r"1 turns in flight finished",
                 r"closed 2 web chat sockets \(1012\)", r"closed 1 agent consoles \(1012\)",
                 rf"Telegram polling stopped; updates before {confirmed} confirmed",
                 r"outbox sweeper stopped", r"store closed", r"segue: stopped$"):
        assert segue.count(line, after=mark) == 1, "".join(segue.lines[mark:])


async def test_a_telegram_webhook_in_flight_is_answered_once_before_the_exit(
    redis_url: str,
) -> None:
    async with HeldNlu().serving() as nlu, FakeTelegram() as telegram:
        port = free_port()
        env = segue_env(redis_url, nlu_url=nlu.url, action_timeout_seconds="60",
                        telegram_token=TELEGRAM_TOKEN, telegram_api_url=telegram.url,
                        telegram_mode="webhook", telegram_webhook_secret="shutdown-secret",
                        telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook")
        async with running(env, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port),
                           port=port) as segue:
            await segue.line(r"Segue is serving on")
            update = telegram.message(f"{nlu.HELD} by webhook")
            delivery = asyncio.create_task(telegram.post_update(update))
            await nlu.holding(1)

            mark = segue.mark()
            segue.proc.send_signal(signal.SIGTERM)
            await segue.line(STOPPING, after=mark)
            nlu.release_all()
            assert await delivery == 200
            assert await segue.exited(SHUTDOWN_GRACE_SECONDS) == 0
        [reply] = telegram.sent()
        assert reply.params["text"].startswith(GREETING)
    assert segue.count(r"1 turns in flight finished", after=mark) == 1


async def test_a_slack_message_in_the_inbox_is_answered_once_before_the_store_closes(
    redis_url: str,
) -> None:
    async with HeldNlu().serving() as nlu, FakeSlackApi(token=SLACK_TOKEN) as slack:
        env = segue_env(redis_url, nlu_url=nlu.url, action_timeout_seconds="60",
                        slack_bot_token=SLACK_TOKEN, slack_signing_secret=SLACK_SECRET,
                        slack_api_url=slack.url)
        async with segue_alone(env) as segue, aiohttp.ClientSession() as http:
            raw = json.dumps(dm(f"{nlu.HELD} on Slack", event_id="Ev0SHUTDOWN")).encode()
            headers = {**signed_headers(SLACK_SECRET, raw), "Content-Type": "application/json"}
            async with http.post(URL(segue.url) / "slack/events", data=raw,
                                 headers=headers) as answer:
                assert answer.status == 200  # queued: Slack has its acknowledgement
            await nlu.holding(1)

            mark = segue.mark()
            segue.proc.send_signal(signal.SIGTERM)
            # The inbox is stopped after the sweeper: its item is still in hand.
            await segue.line(r"outbox sweeper stopped", after=mark)
            nlu.release_all()
            assert await segue.exited(SHUTDOWN_GRACE_SECONDS) == 0
        [reply] = slack.texts_posted()
        assert reply.startswith(GREETING)
    for line in (r"inbox stopped: 1 items in hand finished", r"store closed"):
        assert segue.count(line, after=mark) == 1, "".join(segue.lines[mark:])


async def test_each_of_two_workers_closes_its_idle_sockets_at_once_and_drains_its_turn(
    redis_url: str,
) -> None:
    async with HeldNlu().serving() as nlu:
        env = segue_env(redis_url, nlu_url=nlu.url, action_timeout_seconds="60")
        async with supervised(env) as segue, aiohttp.ClientSession() as http:
            workers = set(segue.pids.values())
            # Sockets until each worker holds at least two: one turn in
            # flight on each, and an idle socket beside it.
            by_worker: dict[int, list[WebChatClient]] = {pid: [] for pid in workers}
            for _ in range(64):
                if all(len(held) >= 2 for held in by_worker.values()):
                    break
                client = await WebChatClient.connect(http, segue.ws_url)
                port = int(client.ws.get_extra_info("sockname")[1])
                by_worker[segue.holder(port)].append(client)
            assert all(len(held) >= 2 for held in by_worker.values()), by_worker
            asked = {}
            for pid, (busy, *_) in by_worker.items():
                asked[pid] = await busy.say(f"{nlu.HELD} on worker {pid}")
            await nlu.holding(2)

            mark = segue.mark()
            loop = asyncio.get_running_loop()
            signalled = loop.time()
            segue.proc.send_signal(signal.SIGTERM)
            await logged(segue, STOPPING, times=2, after=mark)
            assert await refused(http, f"{segue.url}/healthz")
            for _, *idle in by_worker.values():
                for client in idle:
                    assert await closed_with(client) == []

            nlu.release_all()
            for pid, (busy, *_) in by_worker.items():
                replies = answered(await closed_with(busy), asked[pid])
                assert [t[:len(GREETING)] for t in replies] == [GREETING]
            assert await segue.exited(SHUTDOWN_GRACE_SECONDS) == 0
            assert loop.time() - signalled < SHUTDOWN_GRACE_SECONDS
    assert segue.count(STOPPING, after=mark) == 2
    assert segue.count(r"1 turns in flight finished", after=mark) == 2
    assert segue.count(r"stopped \(exit code 0\)", after=mark) == 2


async def test_a_sigterm_while_segue_is_starting_is_a_clean_stop_once_it_has_started(
    redis_url: str,
) -> None:
    # The Bot API holds getMe, which the Telegram connector calls as the
    # server starts: SIGTERM arrives before Segue serves.
    async with FakeTelegram() as telegram:
        telegram.hold("getMe", seconds=2)
        port = free_port()
        env = segue_env(redis_url, telegram_token=TELEGRAM_TOKEN,
                        telegram_api_url=telegram.url)
        async with running(env, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port),
                           port=port) as segue:
            await telegram.wait_holding("getMe", timeout=30)
            segue.proc.send_signal(signal.SIGTERM)
            assert await segue.exited(SHUTDOWN_GRACE_SECONDS) == 0, "".join(segue.lines)
    assert segue.count(r"segue: stopped$") == 1
