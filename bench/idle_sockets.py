"""Memory per idle web chat socket: the resident memory of `segue run`, and
of the bare baseline server, before and after many sockets have connected
and said hello (and got their answer), divided by the number of sockets.
Each round starts both servers afresh, so no round reuses memory an earlier
one freed.

Usage: python -m bench.idle_sockets [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

import asyncio
import json
import statistics
from dataclasses import dataclass, field

import aiohttp
import redis

from bench.cpu import rss_kib
from bench.procs import SEGUE_ENV, segue_command, started, webchat_baseline_command
from bench.table import Row, Sizes, count, row_main
from bench.webchat_turns import drive
from tests.support.redis_server import free_port, redis_server

# Sockets opened at once: more would only queue in the listen backlog.
OPENING_BATCH = 100
RETRIED = ("store_unavailable", "store_error", "busy")
HELLO_TRIES = 5


@dataclass(frozen=True, slots=True)
class Held:
    server_kib: float  # per socket
    redis_kib: float  # per socket
    hellos_again: int  # hellos answered with an error and sent again


@dataclass(slots=True)
class _Opened:
    sockets: list[aiohttp.ClientWebSocketResponse] = field(default_factory=list)
    hellos_again: int = 0


async def _open(http: aiohttp.ClientSession, url: str, opened: _Opened) -> None:
    """One socket that said hello and got its answer. A hello refused for a
    passing reason (store_unavailable, busy) is tried again on a new socket,
    as the widget reconnects: a socket whose hello failed half way may be
    left unable to say hello again."""
    for _ in range(HELLO_TRIES):
        ws = await http.ws_connect(url)
        await ws.send_str('{"type":"hello"}')
        while True:
            frame = json.loads((await ws.receive()).data)
            # Segue answers `session` then `history`; the baseline one `message`.
            if frame.get("type") in ("history", "message", "error"):
                break
        if frame["type"] != "error":
            opened.sockets.append(ws)
            return
        await ws.close()
        if frame.get("code") not in RETRIED:
            raise RuntimeError(f"hello refused: {frame}")
        opened.hellos_again += 1
    raise RuntimeError(f"hello refused {HELLO_TRIES} times: {frame}")


async def hold(url: str, pid: int, redis_url: str, sockets: int) -> Held:
    """Open `sockets` sockets that said hello; memory added per socket."""
    await drive(url, 10, 20)  # what the first turns load is not the sockets' memory
    stats = redis.Redis.from_url(redis_url)
    redis_before = int(stats.info("memory")["used_memory"])
    before = rss_kib(pid)
    opened = _Opened()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        try:
            while len(opened.sockets) < sockets:
                batch = min(OPENING_BATCH, sockets - len(opened.sockets))
                await asyncio.gather(*(_open(http, url, opened) for _ in range(batch)))
            after = rss_kib(pid)
            redis_after = int(stats.info("memory")["used_memory"])
        finally:
            await asyncio.gather(*(ws.close() for ws in opened.sockets))
            stats.close()
    return Held((after - before) / sockets, (redis_after - redis_before) / 1024 / sockets,
                opened.hellos_again)


def run(sizes: Sizes) -> list[Row]:
    held: dict[str, list[Held]] = {"baseline": [], "segue": []}
    with redis_server() as redis_url:
        for _ in range(sizes.idle_rounds):
            seg_port, base_port = free_port(), free_port()
            commands = {
                "baseline": (webchat_baseline_command(base_port, redis_url), {}, base_port),
                "segue": (segue_command(seg_port), {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url},
                          seg_port),
            }
            for name, (cmd, env, port) in commands.items():
                with started(cmd, env, port) as proc:
                    url = f"http://127.0.0.1:{port}/webchat/ws"
                    held[name].append(asyncio.run(hold(url, proc.pid, redis_url,
                                                       sizes.idle_sockets)))

    def med(name: str, field: str) -> float:
        return float(statistics.median(getattr(h, field) for h in held[name]))

    return [
        Row(f"idle web chat sockets ({sizes.idle_sockets:,}): server memory per socket", "KiB",
            med("segue", "server_kib"), med("baseline", "server_kib"),
            f"RSS after minus before, {count(sizes.idle_rounds, 'round')}; Redis "
            f"{med('segue', 'redis_kib'):.2f} KiB/socket "
            f"(baseline {med('baseline', 'redis_kib'):.2f})" + _again(held["segue"])),
    ]


def _again(held: list[Held]) -> str:
    again = sum(h.hellos_again for h in held)
    return f"; {again} hellos refused for a moment and sent again" if again else ""


if __name__ == "__main__":
    row_main(run, __doc__)
