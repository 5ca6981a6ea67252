"""Webhook load: many platform users at once, each posting its updates one
after another (as a platform delivers one user's updates in order), to a
server whose replies reach a platform fake served from this process. What the
Telegram and Slack benchmarks share.

A round's figures: requests answered 2xx per second, the latency of each
request (POST to answer), how long until the last reply reached the fake,
and the CPU time the server spent per update.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from bench.cpu import cpu_seconds
from bench.table import Row

# The demo bot's answers to the web chat benchmark's texts (TEXTS): the order
# status comes with a follow-up question. A reply count that does not arrive
# is reported, not waited for for ever.
REPLIES_PER_TEXT = {"hello": 1, "where is my order": 1, "A1001": 2, "what can you do": 1}
REPLY_WAIT_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Replies:
    """How a platform fake is read: wait for a number of replies (from the
    start of the round), the monotonic times of those received, and
    forgetting them before the next round."""

    wait: Callable[[int, float], Awaitable[object]]
    times: Callable[[], list[float]]
    clear: Callable[[], None]


@dataclass(frozen=True, slots=True)
class HookRound:
    accepted_per_s: float
    p50_ms: float
    p99_ms: float
    replied_per_s: float | None  # None: not every reply arrived
    cpu_us: float  # the server's, per update
    refused: int  # requests not answered 2xx
    missing: int  # replies that did not arrive


Request = tuple[bytes, dict[str, str]]


async def _sender(http: aiohttp.ClientSession, url: str, requests: list[Callable[[], Request]],
                  latencies: list[float], refused: list[int]) -> None:
    for make in requests:
        body, headers = make()
        sent = time.perf_counter()
        async with http.post(url, data=body, headers=headers) as resp:
            await resp.read()
            if resp.status >= 300:
                refused.append(resp.status)
        latencies.append(time.perf_counter() - sent)


async def hook_round(url: str, pid: int, senders: list[list[Callable[[], Request]]],
                     replies: Replies, expected: int) -> HookRound:
    """Every sender posts its requests in order, all senders at once; then
    wait for `expected` replies at the fake."""
    replies.clear()
    latencies: list[float] = []
    refused: list[int] = []
    updates = sum(len(s) for s in senders)
    cpu_before = cpu_seconds(pid)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        began, began_perf = time.monotonic(), time.perf_counter()
        await asyncio.gather(*(_sender(http, url, s, latencies, refused) for s in senders))
        accepted_s = time.perf_counter() - began_perf
    missing = 0
    try:
        await replies.wait(expected, REPLY_WAIT_SECONDS)
    except TimeoutError:
        missing = expected - len(replies.times())
    cpu_us = (cpu_seconds(pid) - cpu_before) / updates * 1e6
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    replied = None if missing else updates / (max(replies.times()) - began)
    return HookRound(updates / accepted_s, pct(0.50), pct(0.99), replied, cpu_us,
                     len(refused), missing)


def hook_rows(label: str, unit: str, segue: list[HookRound], baseline: list[HookRound],
              notes: str) -> list[Row]:
    """Medians over the rounds of Segue against its baseline."""

    def med(rounds: list[HookRound], field: str) -> float | None:
        values = [getattr(r, field) for r in rounds]
        return None if None in values else float(statistics.median(values))

    def trouble(rounds: list[HookRound]) -> str:
        refused, missing = sum(r.refused for r in rounds), sum(r.missing for r in rounds)
        said = [f"{refused} requests not answered 2xx"] if refused else []
        said += [f"{missing} replies never arrived"] if missing else []
        return "; ".join(said)

    problems = "; ".join(p for p in (trouble(segue), "baseline: " + trouble(baseline)
                                     if trouble(baseline) else "") if p)
    return [
        Row(f"{label}: accepted", f"{unit}/s", med(segue, "accepted_per_s"),
            med(baseline, "accepted_per_s"), "; ".join(p for p in (notes, problems) if p)),
        Row(f"{label}: latency p50 (POST to answer)", "ms", med(segue, "p50_ms"),
            med(baseline, "p50_ms")),
        Row(f"{label}: latency p99 (POST to answer)", "ms", med(segue, "p99_ms"),
            med(baseline, "p99_ms")),
        Row(f"{label}: until the last reply reached the fake API", f"{unit}/s",
            med(segue, "replied_per_s"), med(baseline, "replied_per_s")),
        Row(f"{label}: server CPU per {unit.removesuffix('s')}", "µs", med(segue, "cpu_us"),
            med(baseline, "cpu_us")),
    ]
