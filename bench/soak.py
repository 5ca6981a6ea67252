"""Soak test of Segue's delivery guarantees, under load, while workers die.

Starts its own redis-server (append-only file on), the local Telegram Bot
API and Slack Web API (`tests/fakes/`, in this process, on loopback) and two
Segue workers (`python -m bot run`, configured by `SEGUE_*` variables) that
answer "soak message N" with "got N". For the given minutes it drives steady
load on the web chat, Telegram and Slack at once (`bench/soak_load.py`),
SIGKILLs a random worker at random intervals and starts it again, and
restarts Redis once. Then it lets the system settle (bounded) and audits
every customer (`bench/soak_audit.py`): each message sent has exactly one
history entry and exactly one reply, both in the order sent. It prints the
figures and exits 1 if any audit fails.

Usage: .venv/bin/python bench/soak.py --minutes 3
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.soak_audit import ChannelAudit, activity, audit  # noqa: E402
from bench.soak_load import (  # noqa: E402
    Balancer,
    Customer,
    Load,
    Sender,
    SlackSender,
    TelegramSender,
    run_customer,
)
from bench.soak_procs import (  # noqa: E402
    REDIS_FSYNC,
    RedisProcess,
    RedisRestart,
    Worker,
    worker_env,
    write_dialogs,
)
from bench.soak_web import WebSender  # noqa: E402
from context_store import RedisContextStore  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi  # noqa: E402
from tests.fakes.telegram_api import TOKEN as TELEGRAM_TOKEN  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.support.redis_server import ensure_redis_server, free_port  # noqa: E402

SLACK_TOKEN = "xoxb-17653672481-19874698323-soakSoakSoakSoak"
SLACK_SECRET = "soak-slack-signing-secret-0123456789"
TELEGRAM_SECRET = "soak-telegram-secret_1"
CHANNELS = ("web", "telegram", "slack")


class Chaos:
    """Kills a random worker now and then (and starts it again), and
    restarts Redis once."""

    def __init__(self, workers: list[Worker], redis: RedisProcess, balancer: Balancer,
                 http: aiohttp.ClientSession, rng: random.Random,
                 kill_every: tuple[float, float]) -> None:
        self.workers = workers
        self.redis = redis
        self.balancer = balancer
        self.http = http
        self.rng = rng
        self.kill_every = kill_every
        self.back_in: list[float] = []  # seconds from a kill to the worker being ready
        self.redis_restarts: list[RedisRestart] = []

    async def run(self, stop: asyncio.Event, redis_after: float) -> None:
        redis_due = time.monotonic() + redis_after
        while True:
            next_kill = time.monotonic() + self.rng.uniform(*self.kill_every)
            restart_redis = not self.redis_restarts and redis_due < next_kill
            at = redis_due if restart_redis else next_kill
            # Random moments are the point here: nothing to await but time.
            if await _stopped(stop, at - time.monotonic()):
                return
            for worker in self.workers:
                if not worker.up:  # it exited unasked: counted, and started again
                    await worker.start(self.http)
                    await self.balancer.changed()
            if restart_redis:
                self.redis_restarts.append(await self.redis.restart())
            else:
                await self._kill_one()

    async def _kill_one(self) -> None:
        victim = self.rng.choice(self.workers)
        began = time.monotonic()
        await victim.kill()
        await victim.start(self.http)
        self.back_in.append(time.monotonic() - began)
        await self.balancer.changed()


async def _stopped(stop: asyncio.Event, seconds: float) -> bool:
    try:
        await asyncio.wait_for(stop.wait(), max(0.0, seconds))
    except TimeoutError:
        return False
    return True


def customers_for(args: argparse.Namespace, load: Load) -> list[tuple[Customer, Sender]]:
    """Each customer with the sender that speaks its platform."""
    update_ids = itertools.count(872310001)
    event_ids = itertools.count(1)
    made: list[tuple[Customer, Sender]] = []
    for i in range(1, args.web + 1):
        web = Customer("web", f"web{i:03d}")
        made.append((web, WebSender(web, load)))
    for i in range(1, args.telegram + 1):
        user = str(7_100_000 + i)
        tg = Customer("telegram", f"tg{i:03d}", chat=user, user=user)
        made.append((tg, TelegramSender(tg, load, TELEGRAM_SECRET, update_ids)))
    for i in range(1, args.slack + 1):
        sl = Customer("slack", f"sl{i:03d}", chat=f"D0SOAK{i:03d}", user=f"U0SOAK{i:03d}")
        made.append((sl, SlackSender(sl, load, SLACK_SECRET, event_ids)))
    return made


async def settle(customers: list[Customer], tasks: list[asyncio.Task[None]], load: Load,
                 store: RedisContextStore, telegram: FakeTelegram, slack: FakeSlackApi,
                 args: argparse.Namespace) -> tuple[dict[str, ChannelAudit], float]:
    """Wait (bounded) until every message is accepted and answered and
    nothing has arrived for `args.quiet` seconds (a late duplicate would);
    the final audit and how long settling took."""
    began = time.monotonic()
    deadline = began + args.settle
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=args.settle)
        for task in pending:
            task.cancel()  # still not accepted at the deadline: counted as such
        await asyncio.gather(*tasks, return_exceptions=True)
    last, changed_at = None, time.monotonic()
    while True:
        results = await audit(customers, store, telegram, slack)
        now = time.monotonic()
        fingerprint = (*activity(results, telegram, slack), load.last_frame_at)
        if fingerprint != last:
            last, changed_at = fingerprint, now
        missing = sum(r.unaccepted + r.history.lost + r.replies.lost + r.history_replies.lost
                      for r in results.values())
        if (missing == 0 and now - changed_at >= args.quiet) or now >= deadline:
            return results, now - began
        # The state is spread over Redis and three servers: polled, not awaited.
        await asyncio.sleep(1.0)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f}"


def report(results: dict[str, ChannelAudit], chaos: Chaos, workers: list[Worker],
           tally: Counter[str], args: argparse.Namespace, load_seconds: float,
           settled: float) -> int:
    """Print the figures; the number of failed checks."""
    rows = [results[c] for c in CHANNELS]
    every: list[float] = [v for r in rows for v in r.latencies]

    def line(label: str, values: list[Any], total: Any) -> None:
        print(f"  {label:37s}" + "".join(f"{v!s:>10s}" for v in [*values, total]))

    def counts(label: str, get: Any) -> None:
        values = [get(r) for r in rows]
        line(label, values, sum(values))

    print(f"Segue soak: {load_seconds / 60:.1f} min of load on 2 workers, "
          f"{sum(r.customers for r in rows)} customers, Redis AOF "
          f"(appendfsync {REDIS_FSYNC})")
    kills = ", ".join(f"{w.name} {w.kills}" for w in workers)
    back = f"{statistics.median(chaos.back_in):.1f} s" if chaos.back_in else "-"
    print(f"chaos: {len(chaos.back_in)} worker kills with SIGKILL ({kills}), each started "
          f"again (ready again in {back} median)")
    exits = sum(w.unexpected_exits for w in workers)
    failed_starts = sum(w.failed_starts for w in workers)
    if exits or failed_starts:
        print(f"       workers that exited unasked: {exits}; starts that failed: "
              f"{failed_starts}")
    for restart in chaos.redis_restarts:
        print(f"       1 Redis restart (SIGTERM): down {restart.down_seconds:.2f} s, "
              f"{restart.keys_before} keys before, {restart.keys_after} after, last write "
              f"{'kept' if restart.marker_kept else 'LOST'}")
    if not chaos.redis_restarts:
        print("       no Redis restart (the run was too short)")
    line("", list(CHANNELS), "all")
    counts("customers", lambda r: r.customers)
    counts("messages sent", lambda r: r.sent)
    line("messages per second", [f"{r.sent / load_seconds:.1f}" for r in rows],
         f"{sum(r.sent for r in rows) / load_seconds:.1f}")
    counts("not accepted in the end", lambda r: r.unaccepted)
    counts("attempts (retries included)", lambda r: r.attempts)
    counts("history: duplicates", lambda r: r.history.duplicates)
    counts("history: losses", lambda r: r.history.lost)
    counts("history: order violations", lambda r: r.history.out_of_order)
    counts("replies delivered: duplicates", lambda r: r.replies.duplicates)
    counts("replies delivered: losses", lambda r: r.replies.lost)
    counts("replies delivered: order violations", lambda r: r.replies.out_of_order)
    counts("replies in history: duplicates", lambda r: r.history_replies.duplicates)
    counts("replies in history: losses", lambda r: r.history_replies.lost)
    counts("replies in history: order violations", lambda r: r.history_replies.out_of_order)
    counts("unexpected entries or replies",
           lambda r: r.history.unexpected + r.replies.unexpected
           + (0 if r.channel == "web" else r.history_replies.unexpected))
    line("send to reply p50 ms", [_ms(r.percentile(0.5)) for r in rows],
         _ms(statistics.median(every) if every else None))
    line("send to reply p95 ms", [_ms(r.percentile(0.95)) for r in rows],
         _ms(sorted(every)[int(0.95 * len(every))] if every else None))
    line("send to reply max ms", [_ms(r.percentile(1.0)) for r in rows],
         _ms(max(every) if every else None))
    if tally:
        print("on the way (each retried as its platform does):")
        for what, count in sorted(tally.items()):
            print(f"  {what:50s}{count:>8d}")
    examples = [e for r in rows for e in r.examples]
    if examples:
        print("examples:")
        for example in examples:
            print(f"  {example}")
    print(f"settled in {settled:.1f} s (at most {args.settle:.0f} s, "
          f"{args.quiet:.0f} s without news)")
    failed = sum(r.failures() for r in rows) + tally["customer stopped"] + exits
    failed += sum(1 for r in chaos.redis_restarts if not r.marker_kept)
    print("PASS" if failed == 0 else f"FAIL: {failed} failed checks")
    return failed


async def soak(args: argparse.Namespace, workdir: Path, logs: dict[str, IO[bytes]]) -> int:
    rng = random.Random(args.seed)
    (workdir / "redis").mkdir()
    redis = RedisProcess(ensure_redis_server(), free_port(), workdir / "redis", logs["redis"])
    await redis.start()
    workers: list[Worker] = []
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=5)
    try:
        async with (FakeTelegram() as telegram, FakeSlackApi(token=SLACK_TOKEN) as slack,
                    aiohttp.ClientSession(connector=connector) as http):
            env = worker_env(
                redis_url=redis.url, telegram_api=telegram.url, telegram_token=TELEGRAM_TOKEN,
                telegram_secret=TELEGRAM_SECRET, slack_api=slack.url, slack_token=SLACK_TOKEN,
                slack_secret=SLACK_SECRET, dialogs_dir=write_dialogs(workdir / "dialogs"))
            workers = [Worker(name, free_port(), env, logs[name])
                       for name in ("worker-1", "worker-2")]
            await asyncio.gather(*(w.start(http) for w in workers))
            balancer = Balancer(workers, rng)
            load = Load(balancer, http, rng, args.pause, asyncio.Event())
            made = customers_for(args, load)
            customers = [c for c, _ in made]
            tasks = [asyncio.create_task(_guarded(run_customer(c, load, s), load.tally))
                     for c, s in made]
            chaos = Chaos(workers, redis, balancer, http, rng, args.kill_every)
            duration = args.minutes * 60
            began = time.monotonic()
            chaos_task = asyncio.create_task(
                chaos.run(load.stop, duration * rng.uniform(0.4, 0.6)))
            await _stopped(chaos_task_done(chaos_task), duration)
            load.stop.set()
            await chaos_task  # ends with every worker up
            load_seconds = time.monotonic() - began
            store = RedisContextStore.from_url(redis.url)
            try:
                results, settled = await settle(customers, tasks, load, store, telegram, slack,
                                                args)
            finally:
                await store.close()
                for _, sender in made:
                    if isinstance(sender, WebSender):
                        await sender.close()
            failed = report(results, chaos, workers, load.tally, args, load_seconds, settled)
            return 1 if failed else 0
    finally:
        for worker in workers:
            await worker.stop()
        await redis.stop()


def chaos_task_done(task: asyncio.Task[None]) -> asyncio.Event:
    """An event set if the chaos task ends early (it failed): the run stops."""
    done = asyncio.Event()
    task.add_done_callback(lambda _: done.set())
    return done


async def _guarded(run: Any, tally: Counter[str]) -> None:
    try:
        await run
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        tally["customer stopped"] += 1
        tally[f"customer stopped: {exc}"] += 1


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the load")
    parser.add_argument("--web", type=int, default=10, help="web chat customers")
    parser.add_argument("--telegram", type=int, default=10, help="Telegram customers")
    parser.add_argument("--slack", type=int, default=10, help="Slack customers")
    parser.add_argument("--pause", type=float, default=1.0,
                        help="mean seconds between one customer's messages")
    parser.add_argument("--kill-every", type=_range, default=(8.0, 20.0), metavar="MIN,MAX",
                        help="seconds between worker kills, drawn at random")
    parser.add_argument("--settle", type=float, default=120.0,
                        help="at most this long to wait for the system to settle")
    parser.add_argument("--quiet", type=float, default=35.0,
                        help="settled once nothing arrived for this long (longer than "
                             "the 30 s lock and claim times, to catch late duplicates)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--keep-logs", action="store_true",
                        help="keep the processes' logs even when the audit passes")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="segue-soak-"))
    names = ("redis", "worker-1", "worker-2")
    logs: dict[str, IO[bytes]] = {name: (workdir / f"{name}.log").open("ab") for name in names}
    code = 2
    try:
        code = asyncio.run(soak(args, workdir, logs))
    finally:
        for log in logs.values():
            log.close()
        if code == 0 and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs: {workdir}")
    return code


if __name__ == "__main__":
    sys.exit(main())
