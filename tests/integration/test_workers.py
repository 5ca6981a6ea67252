"""`segue run --workers N`: worker processes sharing one port, supervised.

The real `segue run --workers 2` as a process on a loopback port and a real
Redis. Which worker holds a connection is read from /proc (the process that
has the server's end of it open), never from anything Segue says about
itself. Telegram is the local Bot API fake; the slow NLU service is a
loopback server speaking Rasa's `/model/parse`.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from redis.asyncio import Redis

from bot.core.backoff import poll_until
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes.telegram_api import FakeTelegram
from tests.support.redis_server import free_port
from tests.support.webchat_client import WebChatClient
from tests.support.workers_rig import (
    START_SECONDS,
    Supervised,
    alive,
    rig,
    running,
    segue_env,
    supervised,
)

GREETING = "Hi! I'm Segue's demo assistant."
ASKED = "What is your order number? It looks like A1001."
ORDER_REPLIES = ["Order A1001 is shipped. It left our warehouse yesterday and should "
                 "arrive within 2 days.", "Anything else I can help with?"]
# The kernel picks a worker per connection by a hash of its addresses; this
# many connections all landing on one of two workers would take a chance of
# one in 2**63.
MAX_SOCKETS = 64
CAP = 4
# Connections held open while workers start must not time out meanwhile.
CAPPED = {"max_connections_per_address": str(CAP), "http_header_timeout_seconds": "300",
          "http_keepalive_timeout_seconds": "300"}


def port_of(client: WebChatClient) -> int:
    return int(client.ws.get_extra_info("sockname")[1])


async def until_held_by(segue: Supervised, http: aiohttp.ClientSession, pid: int,
                        session: str | None = None) -> WebChatClient:
    """A web chat client (of `session`, if given) whose socket worker `pid`
    holds: sockets are opened until one lands there."""
    for _ in range(MAX_SOCKETS):
        client = await WebChatClient.connect(http, segue.ws_url, session=session)
        if segue.holder(port_of(client)) == pid:
            return client
        await client.close()
    raise AssertionError(f"no socket landed on worker {pid} in {MAX_SOCKETS}")


async def connect_from(address: str, port: int) -> tuple[asyncio.StreamReader,
                                                          asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))


async def admitted(connection: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> bool:
    """Whether a request on the connection is answered (a refused one was
    closed by the server as it came in)."""
    reader, writer = connection
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: segue\r\n\r\n")
        await writer.drain()
        status = await asyncio.wait_for(reader.readline(), 10)
    except ConnectionError:
        return False
    return status.startswith(b"HTTP/1.1 200")


async def close_all(connections: list[tuple[asyncio.StreamReader,
                                            asyncio.StreamWriter]]) -> None:
    for _, writer in connections:
        writer.close()
        try:
            await writer.wait_closed()
        except ConnectionError:
            pass


async def test_sockets_spread_over_both_workers_and_a_customer_carries_on_across_them(
    redis_url: str,
) -> None:
    # No SEGUE_WEBCHAT_SECRET: the supervisor gives every worker the same
    # random one, so each accepts the sessions the others signed.
    env = segue_env(redis_url, web_secret=None)
    async with supervised(env) as segue, aiohttp.ClientSession() as http:
        assert segue.count("the workers share a random secret") == 1
        assert segue.count("using a random secret") == 0
        held = {pid: 0 for pid in segue.pids.values()}
        assert len(held) == 2
        clients: list[WebChatClient] = []
        try:
            while len(clients) < 8 or 0 in held.values():
                assert len(clients) < MAX_SOCKETS, held
                client = await WebChatClient.connect(http, segue.ws_url)
                clients.append(client)
                [reply] = await client.turn("hello")
                assert reply["text"].startswith(GREETING)
                holder = segue.holder(port_of(client))
                assert holder in held, (holder, held)
                held[holder] += 1
        finally:
            for client in clients:
                await client.close()
        print(f"web chat sockets per worker pid: {held}")

        # A customer's next socket lands on the other worker: the
        # conversation, its open question included, is there.
        first = await WebChatClient.connect(http, segue.ws_url)
        [asked] = await first.turn("where is my order")
        assert asked["text"] == ASKED
        [other] = set(held) - {segue.holder(port_of(first))}
        await first.close()
        again = await until_held_by(segue, http, other, session=first.session)
        try:
            assert again.customer == first.customer
            assert [m["text"] for m in again.history] == ["where is my order", ASKED]
            replies = await again.turn("A1001", expect=2)
            assert [r["text"] for r in replies] == ORDER_REPLIES
        finally:
            await again.close()


async def test_a_killed_worker_is_started_again_and_its_customer_carries_on(
    redis_url: str, redis_client: Redis,
) -> None:
    async with supervised(segue_env(redis_url)) as segue, aiohttp.ClientSession() as http:
        before = segue.pids
        victim = before[1]
        client = await until_held_by(segue, http, victim)
        [asked] = await client.turn("where is my order")
        assert asked["text"] == ASKED
        # Killed once the reply is marked sent: killed between the send and
        # that mark, the worker's claim on the outbox would hold the next
        # replies for the claim's 30 s (tests/integration/test_outbox_crash.py).
        outbox = f"segue:{{c:{client.customer}}}:outbox"

        async def delivered() -> bool | None:
            return True if await redis_client.hlen(outbox) == 0 else None  # type: ignore[misc]
        assert await poll_until(delivered, within_seconds=10)

        mark = segue.mark()
        os.kill(victim, signal.SIGKILL)
        await segue.line(rf"WARNING .*worker 1 \(pid {victim}\) exited unexpectedly "
                         r"\(killed by SIGKILL\); starting it again at once", after=mark)
        successor = int((await segue.line(r"worker 1 \(pid (\d+)\) is serving", after=mark))[1])
        assert successor != victim and alive(successor) and not alive(victim)
        assert segue.pids == {0: before[0], 1: successor}
        closed = await client.ws.receive(timeout=10)
        assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                               aiohttp.WSMsgType.ERROR)

        # The customer reconnects, to the new worker: the question is still open.
        again = await until_held_by(segue, http, successor, session=client.session)
        try:
            assert again.customer == client.customer
            replies = await again.turn("A1001", expect=2)
            assert [r["text"] for r in replies] == ORDER_REPLIES
        finally:
            await again.close()


class SlowNlu:
    """Rasa's `/model/parse` on loopback: every text is a greeting, and the
    text `SLOW` is held until `release` is set."""

    SLOW = "hello, slowly"

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.url = ""

    async def parse(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body["text"] == self.SLOW:
            self.arrived.set()
            await self.release.wait()
        return web.json_response({"intent": {"name": "greet", "confidence": 0.99},
                                  "entities": []})

    @asynccontextmanager
    async def serving(self) -> AsyncIterator[SlowNlu]:
        app = web.Application()
        app.router.add_post("/model/parse", self.parse)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}/model/parse"
        try:
            yield self
        finally:
            self.release.set()
            await runner.cleanup()


async def test_sigterm_lets_the_turn_in_flight_finish_then_every_process_exits_0(
    redis_url: str,
) -> None:
    async with SlowNlu().serving() as nlu:
        env = segue_env(redis_url, nlu_url=nlu.url, action_timeout_seconds="60")
        async with supervised(env) as segue, aiohttp.ClientSession() as http:
            client = await WebChatClient.connect(http, segue.ws_url)
            busy = segue.holder(port_of(client))
            [idle] = set(segue.pids.values()) - {busy}
            msg_id = await client.say(nlu.SLOW)
            await asyncio.wait_for(nlu.arrived.wait(), 30)

            mark = segue.mark()
            segue.proc.send_signal(signal.SIGTERM)
            # The idle worker is done; the busy one still drains its turn.
            await segue.line(rf"worker \d \(pid {idle}\) stopped \(exit code 0\)", after=mark)
            assert alive(busy)
            assert segue.proc.returncode is None

            nlu.release.set()
            frames = [await client.next_frame() for _ in range(2)]
            assert frames[0] == {"type": "ack", "id": msg_id}
            assert frames[1]["reply_to"] == msg_id
            assert frames[1]["text"].startswith(GREETING)
            await client.close()

            assert await segue.exited() == 0
        assert not alive(busy) and not alive(idle)
        assert segue.count(r"stopped \(exit code 0\)", after=mark) == 2
        assert segue.count(r"all workers stopped", after=mark) == 1


async def test_the_connection_cap_per_address_holds_across_workers(redis_url: str) -> None:
    env = segue_env(redis_url, **CAPPED)
    async with supervised(env) as segue:
        # From an address of its own, so nothing else the test opens counts.
        opened = [await connect_from("127.0.0.2", segue.port) for _ in range(16)]
        other = await connect_from("127.0.0.3", segue.port)
        try:
            answered = [c for c in opened if await admitted(c)]
            holders = [segue.holder(w.get_extra_info("sockname")[1]) for _, w in answered]
            print(f"admitted {len(answered)} of 16 from one address; held by {holders}")
            # Two workers admitting at the same instant may overshoot by one.
            assert CAP <= len(answered) <= CAP + 1
            assert set(holders) <= set(segue.pids.values())
            # Another address is not held back by this one.
            assert await admitted(other)
        finally:
            await close_all([*opened, other])


async def test_a_dead_workers_connections_stop_counting_once_it_is_replaced(
    redis_url: str,
) -> None:
    async with supervised(segue_env(redis_url, **CAPPED)) as segue:
        opened = [await connect_from("127.0.0.2", segue.port) for _ in range(2 * CAP)]
        answered = [c for c in opened if await admitted(c)]
        holders = [segue.holder(w.get_extra_info("sockname")[1]) for _, w in answered]
        assert len(answered) >= CAP and set(holders) <= set(segue.pids.values())
        # The worker holding most of them (two or more) dies, and they with it.
        victim = max(set(holders), key=holders.count)
        [index] = [i for i, pid in segue.pids.items() if pid == victim]
        survivors = [pid for pid in holders if pid != victim]
        mark = segue.mark()
        os.kill(victim, signal.SIGKILL)
        await segue.line(rf"worker {index} \(pid \d+\) is serving", after=mark)

        more = [await connect_from("127.0.0.2", segue.port) for _ in range(2 * CAP)]
        try:
            let_in = [c for c in more if await admitted(c)]
            # Only the survivors' connections count now: the dead worker's
            # counts were cleared before its successor started.
            assert CAP - len(survivors) <= len(let_in) <= CAP + 1 - len(survivors)
        finally:
            await close_all([*opened, *more])


async def test_workers_stop_by_themselves_when_the_supervisor_is_killed(redis_url: str) -> None:
    async with supervised(segue_env(redis_url)) as segue:
        pids = list(segue.pids.values())
        mark = segue.mark()
        segue.proc.kill()
        # The log ends once the workers, which write to it too, have exited.
        assert await segue.exited() == -signal.SIGKILL
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert segue.count("the supervisor is gone: stopping this worker", after=mark) == 2


@pytest.mark.parametrize("asked_by", ["--workers", "SEGUE_WORKERS"])
async def test_several_workers_on_the_memory_store_are_refused(asked_by: str) -> None:
    env = segue_env(None, **({"workers": "2"} if asked_by == "SEGUE_WORKERS" else {}))
    args = ["--workers", "2"] if asked_by == "--workers" else []
    port = free_port()
    async with running(env, "-m", "bot", "run", "--port", str(port), *args,
                       port=port) as segue:
        assert await segue.exited() == 2
    assert "".join(segue.lines).strip() == (
        "segue: --workers 2 needs a shared store: set SEGUE_REDIS_URL (on the in-memory "
        "store each worker would keep its own conversations)")


async def test_a_port_another_server_shares_out_is_refused_before_any_worker_starts(
    redis_url: str,
) -> None:
    # Another server's workers listen with SO_REUSEPORT too: without the
    # check, these workers would join them and the kernel split the traffic.
    with socket.socket() as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        async with running(segue_env(redis_url), "-m", "bot", "run", "--port", str(port),
                           "--workers", "2", port=port) as segue:
            assert await segue.exited() == 1
    [line] = segue.lines
    assert line.rstrip().endswith(f"ERROR segue: cannot listen on 127.0.0.1:{port}: "
                         "[Errno 98] Address already in use")


async def test_workers_that_cannot_start_are_retried_then_segue_gives_up() -> None:
    # Bound and never listening: every connection is refused, and no server
    # anywhere on this machine can take the port while the test runs.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        nowhere = f"redis://127.0.0.1:{held.getsockname()[1]}/0"
        async with rig(segue_env(nowhere), "impatient") as segue:
            # Four or more worker starts, each importing the whole app.
            assert await segue.exited(timeout=2 * START_SECONDS) == 3
    started = [int(p) for p in segue.matches(r"worker \d started \(pid (\d+)\)")]
    assert len(started) >= 4 and not any(alive(pid) for pid in started)
    assert segue.count(r"cannot start: Redis is unreachable") == len(started)
    assert segue.count(r"WARNING .*exited unexpectedly \(exit code 3\) before serving; "
                       r"starting it again in 0\.[24] s") == len(started) - 1
    assert segue.count(r"ERROR .*every worker failed to start 2 times in a row "
                       r"\(the last: exit code 3\); giving up") == 1
    assert segue.count("is serving") == 0


async def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(
    redis_url: str,
) -> None:
    async with rig(segue_env(redis_url), "stubborn") as segue:
        await segue.line(r"Segue is serving on .* with 2 workers")
        # Each worker's own line, which its process writes to the shared
        # stderr beside the supervisor's: read once both are in.
        for index in (0, 1):
            await segue.line(rf"worker {index} \(pid \d+\) is serving")
        pids = list(segue.pids.values())
        mark = segue.mark()
        segue.proc.send_signal(signal.SIGTERM)
        assert await segue.exited() == 0
    assert len(pids) == 2 and not any(alive(pid) for pid in pids)
    assert segue.count(r"did not stop within 1 s: killing it", after=mark) == 2
    assert segue.count(r"stopped \(killed by SIGKILL\)", after=mark) == 2


async def test_only_worker_0_polls_telegram_and_its_successor_takes_over(
    redis_url: str,
) -> None:
    async with FakeTelegram() as telegram:
        env = segue_env(redis_url, telegram_token=TELEGRAM_TOKEN,
                        telegram_api_url=telegram.url)
        async with supervised(env) as segue:
            # Both workers checked the token; one stopped webhooks to poll.
            assert len(telegram.sent("getMe")) == 2
            assert len(telegram.sent("deleteWebhook")) == 1
            assert segue.count("another worker polls Telegram") == 1
            hello = telegram.message("hello")
            await telegram.queue_update(hello)
            [reply] = await telegram.wait_for("sendMessage", timeout=30)
            assert reply.params["text"].startswith(GREETING)
            # Its turn is over (saved, sent and marked sent) before worker 0 dies.
            await segue.line(rf"Update id={hello['update_id']} is handled")

            mark = segue.mark()
            os.kill(segue.pids[0], signal.SIGKILL)
            await segue.line(r"worker 0 \(pid \d+\) is serving", after=mark)
            assert len(telegram.sent("deleteWebhook")) == 2
            await telegram.queue_update(telegram.message("hello again"))
            replies = await telegram.wait_for("sendMessage", 2, timeout=30)
            assert replies[1].params["text"].startswith(GREETING)
        assert len(telegram.sent("deleteWebhook")) == 2
