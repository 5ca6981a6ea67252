"""Web chat throughput and latency: `segue run` on a real Redis against a bare
aiohttp WebSocket server doing one Redis GET and SET per message.

Both servers run as separate processes on loopback, driven by the same client
load from this process, alternately, several rounds; the figures printed are
medians over the rounds, and the ratio compares the two in the same run.

Usage: python bench/webchat_turns.py [--clients 50] [--messages 100] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.redis_server import free_port, redis_server  # noqa: E402

TEXTS = ("hello", "where is my order", "A1001", "what can you do")


@dataclass(frozen=True, slots=True)
class Result:
    turns_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float


@contextmanager
def server(cmd: list[str], env: dict[str, str], port: int) -> Any:
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        asyncio.run(wait_for_port(port))
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=20)


async def wait_for_port(port: int, within_seconds: float = 30) -> None:
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            await asyncio.sleep(0.05)  # a starting process offers nothing to await
    raise RuntimeError(f"nothing listens on port {port}")


async def one_client(http: aiohttp.ClientSession, url: str, n: int, messages: int,
                     latencies: list[float], start: asyncio.Event) -> None:
    ws = await http.ws_connect(url)
    await ws.send_str('{"type":"hello"}')
    await start.wait()
    for i in range(messages):
        msg_id = f"{n}-{i}"
        sent = time.perf_counter()
        message = json.dumps({"type": "message", "text": TEXTS[i % len(TEXTS)], "id": msg_id})
        await ws.send_str(message)
        while True:
            frame = json.loads((await ws.receive()).data)
            if frame.get("reply_to") == msg_id:
                break
            if frame.get("type") == "error":
                # Refused for a passing reason (one message is out at a
                # time, so it is this one): sent again, as the widget does.
                await asyncio.sleep(float(frame.get("retry_after") or 0.05))
                await ws.send_str(message)
        latencies.append(time.perf_counter() - sent)
    await ws.close()


async def drive(url: str, clients: int, messages: int) -> Result:
    latencies: list[float] = []
    start = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as http:
        tasks = [asyncio.create_task(one_client(http, url, n, messages, latencies, start))
                 for n in range(clients)]
        await asyncio.sleep(0.5)  # let every client connect and say hello before timing
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    return summary(latencies, elapsed)


def summary(latencies: list[float], elapsed: float) -> Result:
    """Throughput and percentiles (ms) of answers that took `latencies` seconds."""
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    return Result(len(ordered) / elapsed, pct(0.50), pct(0.95), pct(0.99))


def median(results: list[Result]) -> Result:
    return Result(*(statistics.median(getattr(r, f) for r in results)
                    for f in ("turns_per_s", "p50_ms", "p95_ms", "p99_ms")))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    runs: dict[str, list[Result]] = {"baseline": [], "segue": []}
    with redis_server() as redis_url:
        seg_port, base_port = free_port(), free_port()
        segue_cmd = [sys.executable, "-m", "bot", "run", "--port", str(seg_port)]
        # One address sending as fast as it can is what the per-client limits
        # stop; the benchmark measures the turn, as a trusted gateway would.
        segue_env = {"SEGUE_REDIS_URL": redis_url, "SEGUE_LOG_LEVEL": "WARNING",
                     "SEGUE_WEBCHAT_SECRET": "bench-secret-0123456789", "SEGUE_RATE_LIMITS": "off"}
        base_cmd = [sys.executable, str(ROOT / "bench" / "baseline_server.py"),
                    str(base_port), redis_url]
        with server(segue_cmd, segue_env, seg_port), server(base_cmd, {}, base_port):
            for port in (base_port, seg_port):
                asyncio.run(drive(f"http://127.0.0.1:{port}/webchat/ws", 10, 20))  # warm-up
            for _ in range(args.rounds):
                for name, port in (("baseline", base_port), ("segue", seg_port)):
                    url = f"http://127.0.0.1:{port}/webchat/ws"
                    runs[name].append(asyncio.run(drive(url, args.clients, args.messages)))
    print(f"web chat turns: {args.clients} clients x {args.messages} messages, "
          f"{args.rounds} rounds, medians")
    for name in ("baseline", "segue"):
        r = median(runs[name])
        print(f"  {name:9s} {r.turns_per_s:8.0f} turns/s   p50 {r.p50_ms:6.2f} ms   "
              f"p95 {r.p95_ms:6.2f} ms   p99 {r.p99_ms:6.2f} ms")
    ratio = median(runs["segue"]).turns_per_s / median(runs["baseline"]).turns_per_s
    print(f"  ratio segue/baseline: {ratio:.2f}")


if __name__ == "__main__":
    main()
