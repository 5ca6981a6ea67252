"""Web chat load against several running servers in alternating rounds, with
the CPU time each server (and Redis) spent per turn: what the web chat, worker
and cluster rows share. The load itself is `bench.webchat_turns.drive`.
"""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass

from bench.cpu import cpu_seconds
from bench.table import Row
from bench.webchat_turns import Result, drive, median


@dataclass(frozen=True, slots=True)
class Target:
    """A server to drive: a name for the table, its port, its process, and
    the Redis server processes it uses (whose CPU time is read too)."""

    name: str
    port: int
    pid: int
    redis_pids: tuple[int, ...] = ()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webchat/ws"


@dataclass(frozen=True, slots=True)
class Measured:
    """Medians over the rounds of one server."""

    result: Result
    cpu_us_per_turn: float  # the server's process tree
    redis_cpu_us_per_turn: float | None


@dataclass(slots=True)
class _Rounds:
    results: list[Result]
    cpu: list[float]
    redis_cpu: list[float]


def warm_up(targets: list[Target]) -> None:
    """A few turns on each server first: imports, caches and Redis scripts
    are loaded before anything is timed."""
    for target in targets:
        asyncio.run(drive(target.url, 10, 20))


def run_round(target: Target, clients: int,
              messages: int) -> tuple[Result, float, float | None]:
    """One round against one server: its result and the CPU microseconds per
    turn of the server and of Redis. The CPU counted includes each client's
    hello, one per `messages` turns."""
    turns = clients * messages

    def redis_cpu() -> float:
        return sum(cpu_seconds(pid) for pid in target.redis_pids)

    cpu_before, redis_before = cpu_seconds(target.pid), redis_cpu()
    result = asyncio.run(drive(target.url, clients, messages))
    server_us = (cpu_seconds(target.pid) - cpu_before) / turns * 1e6
    redis_us = (redis_cpu() - redis_before) / turns * 1e6 if target.redis_pids else None
    return result, server_us, redis_us


def measure(targets: list[Target], clients: int, messages: int,
            rounds: int) -> dict[str, Measured]:
    """Each round drives every target once, one after another, so a noisy
    moment of the shared machine falls on all of them alike; medians over
    the rounds."""
    warm_up(targets)
    runs = {t.name: _Rounds([], [], []) for t in targets}
    for _ in range(rounds):
        for target in targets:
            result, server_us, redis_us = run_round(target, clients, messages)
            runs[target.name].results.append(result)
            runs[target.name].cpu.append(server_us)
            if redis_us is not None:
                runs[target.name].redis_cpu.append(redis_us)
    return {
        name: Measured(median(r.results), statistics.median(r.cpu),
                       statistics.median(r.redis_cpu) if r.redis_cpu else None)
        for name, r in runs.items()
    }


def turn_rows(label: str, segue: Measured, baseline: Measured, notes: str = "") -> list[Row]:
    """Throughput, latency and CPU per turn of Segue against a baseline."""
    redis_note = ""
    if segue.redis_cpu_us_per_turn is not None and baseline.redis_cpu_us_per_turn is not None:
        redis_note = (f"Redis CPU {segue.redis_cpu_us_per_turn:.0f} µs/turn "
                      f"(baseline {baseline.redis_cpu_us_per_turn:.0f})")
    return [
        Row(f"{label}: throughput", "turns/s", segue.result.turns_per_s,
            baseline.result.turns_per_s, notes),
        Row(f"{label}: latency p50", "ms", segue.result.p50_ms, baseline.result.p50_ms),
        Row(f"{label}: latency p99", "ms", segue.result.p99_ms, baseline.result.p99_ms),
        Row(f"{label}: server CPU per turn", "µs", segue.cpu_us_per_turn,
            baseline.cpu_us_per_turn, redis_note),
    ]
