"""History independence: web chat turns of customers whose history is short
against customers with ~10,000 history entries, on one `segue run` and one
Redis, in alternating rounds. A turn reads and writes the same few keys
whatever the history's length, so the ratio should be about 1.

The long histories are written through the store's own `append` (the same
encoding and key as a turn's save) into the Redis the running Segue uses,
for customers whose web chat sessions the product made; the clients then
resume those sessions. `SEGUE_HISTORY_MAX` is raised so that no save trims
the seeded entries.

Usage: python -m bench.history [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass

import aiohttp

from bench.cpu import cpu_seconds
from bench.procs import SEGUE_ENV, segue_command, started
from bench.table import Row, Sizes, count, row_main
from bench.webchat_turns import TEXTS, Result, median, summary
from bot.core.model import HistoryEntry
from bot.core.ports import StoreLimits
from context_store.redis import RedisContextStore
from tests.support.redis_server import free_port, redis_server

SEED_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    customer: str


@dataclass(frozen=True, slots=True)
class GroupRound:
    result: Result
    hello_ms: float  # median time from a resuming hello to its history frame
    cpu_us_per_turn: float


async def new_sessions(url: str, count: int) -> list[Session]:
    """`count` web chat customers, made by the product: a hello each."""
    sessions = []
    async with aiohttp.ClientSession() as http:
        for _ in range(count):
            async with http.ws_connect(url) as ws:
                await ws.send_str('{"type":"hello"}')
                frame = json.loads((await ws.receive()).data)
                sessions.append(Session(frame["session"], frame["customer"]))
    return sessions


async def seed(redis_url: str, customers: list[str], events: int, history_max: int) -> int:
    """Append `events` entries to each customer's history; the length of the
    first one's afterwards."""
    store = RedisContextStore.from_url(redis_url, limits=StoreLimits(history_max=history_max))
    start = time.time() - events  # a second apart, ending now
    try:
        for customer in customers:
            for first in range(0, events, SEED_BATCH):
                await store.append(customer, [
                    HistoryEntry("customer" if i % 2 == 0 else "bot", "web",
                                 f"seeded message {i}: where is my order A100{i % 4}?",
                                 start + i)
                    for i in range(first, min(first + SEED_BATCH, events))
                ])
        return len(await store.history(customers[0], history_max))
    finally:
        await store.close()


async def resuming_client(http: aiohttp.ClientSession, url: str, session: Session, n: int,
                          messages: int, latencies: list[float], hellos: list[float],
                          ready: asyncio.Event, start: asyncio.Event) -> None:
    """`bench.webchat_turns.one_client`, resuming a session: its hello is
    timed up to the history frame, and the turns only after every client's."""
    ws = await http.ws_connect(url)
    sent = time.perf_counter()
    await ws.send_str(json.dumps({"type": "hello", "session": session.token}))
    while json.loads((await ws.receive()).data).get("type") != "history":
        pass
    hellos.append(time.perf_counter() - sent)
    ready.set()
    await start.wait()
    for i in range(messages):
        msg_id = f"{n}-{i}-{time.monotonic_ns()}"
        message = json.dumps({"type": "message", "text": TEXTS[i % len(TEXTS)], "id": msg_id})
        sent = time.perf_counter()
        await ws.send_str(message)
        while (frame := json.loads((await ws.receive()).data)).get("reply_to") != msg_id:
            if frame.get("type") == "error":
                # Refused for a passing reason (store_unavailable, busy):
                # the protocol says send it again, and the widget does.
                await ws.send_str(message)
        latencies.append(time.perf_counter() - sent)
    await ws.close()


async def drive_sessions(url: str, sessions: list[Session],
                         messages: int) -> tuple[Result, float]:
    """`bench.webchat_turns.drive` for resumed sessions; and the median hello."""
    latencies: list[float] = []
    hellos: list[float] = []
    start = asyncio.Event()
    readies = [asyncio.Event() for _ in sessions]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        tasks = [asyncio.create_task(resuming_client(http, url, s, n, messages, latencies,
                                                     hellos, readies[n], start))
                 for n, s in enumerate(sessions)]
        await asyncio.gather(*(r.wait() for r in readies))
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return summary(latencies, elapsed), statistics.median(hellos) * 1000


def one_round(url: str, pid: int, sessions: list[Session], messages: int) -> GroupRound:
    before = cpu_seconds(pid)
    result, hello_ms = asyncio.run(drive_sessions(url, sessions, messages))
    cpu = (cpu_seconds(pid) - before) / (len(sessions) * messages) * 1e6
    return GroupRound(result, hello_ms, cpu)


def run(sizes: Sizes) -> list[Row]:
    groups: dict[str, list[GroupRound]] = {"short": [], "long": []}
    # Room for the seeded entries and every turn's, so nothing is trimmed.
    history_max = sizes.history_events + 10 * sizes.rounds * sizes.messages + 1000
    with redis_server() as redis_url:
        port = free_port()
        url = f"http://127.0.0.1:{port}/webchat/ws"
        env = {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url, "SEGUE_HISTORY_MAX": str(history_max)}
        with started(segue_command(port), env, port) as segue:
            made = asyncio.run(new_sessions(url, 2 * sizes.history_clients))
            short, long = made[:sizes.history_clients], made[sizes.history_clients:]
            length = asyncio.run(seed(redis_url, [s.customer for s in long],
                                      sizes.history_events, history_max))
            for group in (short, long):  # warm-up, and the short ones' first turns
                asyncio.run(drive_sessions(url, group, 4))
            for _ in range(sizes.rounds):
                groups["short"].append(one_round(url, segue.pid, short, sizes.messages))
                groups["long"].append(one_round(url, segue.pid, long, sizes.messages))
    short_r, long_r = median([g.result for g in groups["short"]]), median(
        [g.result for g in groups["long"]])

    def med(name: str, field: str) -> float:
        return float(statistics.median(getattr(g, field) for g in groups[name]))

    label = f"history {length:,} entries vs short"
    notes = (f"{sizes.history_clients} customers per group, {sizes.messages} messages each, "
             f"{count(sizes.rounds, 'round')}; baseline: the same server, short histories")
    return [
        Row(f"{label}: throughput", "turns/s", long_r.turns_per_s, short_r.turns_per_s, notes),
        Row(f"{label}: latency p50", "ms", long_r.p50_ms, short_r.p50_ms),
        Row(f"{label}: latency p99", "ms", long_r.p99_ms, short_r.p99_ms),
        Row(f"{label}: server CPU per turn", "µs", med("long", "cpu_us_per_turn"),
            med("short", "cpu_us_per_turn")),
        Row(f"{label}: reconnect (hello to history)", "ms", med("long", "hello_ms"),
            med("short", "hello_ms"), "the replay is the last SEGUE_HISTORY_REPLAY entries"),
    ]


if __name__ == "__main__":
    row_main(run, __doc__)
