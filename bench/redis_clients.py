"""Async Redis clients side by side on the steps of a turn: plain redis-py,
Segue's `AutoPipelineRedis`, and coredis.

One step is what the store does for a turn: a script that checks the
dedup mark, takes the customer's lock and loads the state; a script that
saves the state, appends two history entries, trims the history, sets the
mark and drops the lock; then a GET of the state. Every key of a customer
shares one `{c:<id>}` hash tag, as in the store. C customers run at once,
each its own task, for a fixed total of steps.

Each client runs in a process of its own (its imports and event loop alone;
uvloop where installed, as `segue run` does) against one throwaway
redis-server; the clients take turns, several rounds, in a different order
each round, and the figures are medians over the rounds. CPU is the client
process's own (`time.process_time`), not the server's.

coredis is not a dependency of Segue: it is installed from the package index
into a directory of its own (`--coredis-dir`, kept between runs; delete it to
get a newer release) and put on the path of its worker process only.

Usage: python bench/redis_clients.py [--steps 3000] [--rounds 5]
       [--concurrency 1,16,50]
       [--clients redis-py,autopipeline,coredis,coredis-fcall] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# KEYS: lock, seen, state, moved. ARGV: token, lock ttl ms, message id.
# {3}: moved away, {2}: a duplicate, {0}: locked by another, {1, state?}: ours.
LOCK_AND_LOAD = """
if redis.call('EXISTS', KEYS[4]) == 1 then return {3} end
if redis.call('GET', KEYS[2]) == ARGV[3] then return {2} end
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return {0} end
local state = redis.call('GET', KEYS[3])
if state then return {1, state} end
return {1}
"""

# KEYS: lock, seen, state, history. ARGV: token, message id, state, history
# kept, ttl seconds, then the history entries. 0 if the lock was lost.
SAVE_AND_UNLOCK = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[5])
redis.call('RPUSH', KEYS[4], unpack(ARGV, 6))
redis.call('LTRIM', KEYS[4], -tonumber(ARGV[4]), -1)
redis.call('EXPIRE', KEYS[4], ARGV[5])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])
redis.call('DEL', KEYS[1])
return 1
"""

# The same two scripts as Redis functions, for coredis's `Library`.
LIBRARY = f"""#!lua name=segue_bench
redis.register_function('lock_and_load', function(KEYS, ARGV)
{LOCK_AND_LOAD}
end)
redis.register_function('save_and_unlock', function(KEYS, ARGV)
{SAVE_AND_UNLOCK}
end)
"""

# About the size of a conversation's state and of a history entry.
STATE = json.dumps({"flow": "order_status", "step": "ask_order_number",
                    "slots": {"order": None, "email": "someone@example.com"},
                    "handoff": None, "misunderstood": 0, "channel": "web",
                    "updated": 1767225600.0, "pad": "x" * 160})
ENTRY_IN = json.dumps({"sender": "customer", "channel": "web", "text": "where is my order",
                       "ts": 1767225600.0, "id": "m-0000000000"})
ENTRY_OUT = json.dumps({"sender": "bot", "channel": "web",
                        "text": "Which order? Its number looks like A1234.", "ts": 1767225600.1})
HISTORY_KEPT = 50
TTL_SECONDS = 86400
LOCK_TTL_MS = 30000
CLIENTS = ("redis-py", "autopipeline", "coredis", "coredis-fcall")

Script = Callable[[list[str], list[Any]], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class Steps:
    """One client's three calls of a step, and what it is."""

    lock_and_load: Script
    save_and_unlock: Script
    get: Callable[[str], Awaitable[Any]]
    version: str


@dataclass(frozen=True, slots=True)
class Sample:
    """One client at one concurrency in one round."""

    ops: int
    ops_per_s: float
    cpu_us_per_op: float
    p50_us: float
    p99_us: float
    connections: int
    version: str


@asynccontextmanager
async def redis_py_steps(url: str) -> AsyncIterator[Steps]:
    import redis
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        yield Steps(client.register_script(LOCK_AND_LOAD),
                    client.register_script(SAVE_AND_UNLOCK), client.get,
                    redis.__version__)
    finally:
        await client.aclose()


@asynccontextmanager
async def autopipeline_steps(url: str) -> AsyncIterator[Steps]:
    import redis

    from context_store.redis_autopipeline import AutoPipelineRedis

    client = AutoPipelineRedis.from_url(url, decode_responses=True)
    try:
        yield Steps(client.register_script(LOCK_AND_LOAD),
                    client.register_script(SAVE_AND_UNLOCK), client.get,
                    f"redis-py {redis.__version__}")
    finally:
        await client.aclose()


@asynccontextmanager
async def coredis_steps(url: str) -> AsyncIterator[Steps]:
    import coredis

    # RESP3 is coredis's only protocol; its pool hands a connection back as
    # soon as a command is queued on it, so concurrent commands share it.
    client = coredis.Redis.from_url(url, decode_responses=True)
    async with client:
        yield Steps(client.register_script(LOCK_AND_LOAD),
                    client.register_script(SAVE_AND_UNLOCK), client.get,
                    coredis.__version__)


@asynccontextmanager
async def coredis_fcall_steps(url: str) -> AsyncIterator[Steps]:
    import coredis
    from coredis.commands import Library

    client = coredis.Redis.from_url(url, decode_responses=True)
    async with client:
        library = await Library(client, "segue_bench", LIBRARY, replace=True)
        yield Steps(library["lock_and_load"], library["save_and_unlock"], client.get,
                    coredis.__version__)


STEPS = {"redis-py": redis_py_steps, "autopipeline": autopipeline_steps,
         "coredis": coredis_steps, "coredis-fcall": coredis_fcall_steps}


async def customer(steps: Steps, name: str, phase: str, count: int,
                   latencies: list[float]) -> None:
    """`count` steps of one customer; each call's latency appended. Message
    ids carry the phase, so no step repeats the last one's and looks like a
    duplicate."""
    tag = f"bench:{{c:{name}}}"
    lock, seen, state, history = f"{tag}:lock", f"{tag}:seen", f"{tag}:state", f"{tag}:history"
    lock_keys, save_keys = [lock, seen, state, f"{tag}:moved"], [lock, seen, state, history]
    clock = time.perf_counter
    for i in range(count):
        token = message = f"{name}:{phase}{i}"
        started = clock()
        loaded = await steps.lock_and_load(lock_keys, [token, LOCK_TTL_MS, message])
        locked = clock()
        saved = await steps.save_and_unlock(
            save_keys, [token, message, STATE, HISTORY_KEPT, TTL_SECONDS, ENTRY_IN, ENTRY_OUT])
        unlocked = clock()
        current = await steps.get(state)
        done = clock()
        if int(loaded[0]) != 1 or int(saved) != 1 or current != STATE:
            raise RuntimeError(f"step {i} of {name} went wrong: {loaded!r} {saved!r}")
        latencies += (locked - started, unlocked - locked, done - unlocked)


async def run_customers(steps: Steps, prefix: str, phase: str, concurrency: int,
                        total: int) -> list[float]:
    latencies: list[float] = []
    each = total // concurrency
    await asyncio.gather(*(customer(steps, f"{prefix}-{n}", phase, each, latencies)
                           for n in range(concurrency)))
    return latencies


def percentile(ordered: Sequence[float], fraction: float) -> float:
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def connected_clients(url: str) -> int:
    """How many connections the server has, from INFO (this one not counted)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 6379)) as sock:
        sock.sendall(b"INFO clients\r\n")
        reply = b""
        while b"connected_clients:" not in reply or not reply.endswith(b"\r\n"):
            reply += sock.recv(65536)
    line = next(x for x in reply.split(b"\r\n") if x.startswith(b"connected_clients:"))
    return int(line.split(b":")[1]) - 1


async def measure(client: str, url: str, concurrency: int, total: int, warmup: int) -> Sample:
    async with STEPS[client](url) as steps:
        prefix = f"{client}-{concurrency}"
        # One command alone first, as the store's check at start-up: how many
        # connections a client then opens is its own doing under load, not
        # an artefact of C commands racing to open the first one.
        await steps.get(f"bench:{{c:{prefix}}}:probe")
        # Connections opened, scripts loaded, code paths warm.
        await run_customers(steps, prefix, "warm-", concurrency, warmup)
        cpu, wall = time.process_time(), time.perf_counter()
        latencies = await run_customers(steps, prefix, "", concurrency, total)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        connections = connected_clients(url)
    latencies.sort()
    ops = len(latencies)
    return Sample(ops=ops, ops_per_s=ops / wall, cpu_us_per_op=cpu / ops * 1e6,
                  p50_us=percentile(latencies, 0.5) * 1e6,
                  p99_us=percentile(latencies, 0.99) * 1e6,
                  connections=connections, version=steps.version)


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where installed, the loop `segue run` picks."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def worker(argv: Sequence[str]) -> int:
    """One client at one concurrency: `worker CLIENT URL C STEPS WARMUP`, the
    sample printed as JSON."""
    client, url, concurrency, steps, warmup = argv
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        sample = runner.run(measure(client, url, int(concurrency), int(steps), int(warmup)))
    print(json.dumps(asdict(sample)))
    return 0


def ensure_coredis(target: Path) -> str | None:
    """Install coredis into `target` unless it is there; None, or why it is not."""
    if (target / "coredis").is_dir():
        return None
    print(f"installing coredis into {target} ...", file=sys.stderr)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--target", str(target), "coredis"],
            capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"not installed: {exc}"
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        return f"not installed: pip exited {done.returncode}: {lines[-1] if lines else ''}"
    return None


def run_worker(client: str, url: str, concurrency: int, args: argparse.Namespace) -> Sample | str:
    env = dict(os.environ)
    if client.startswith("coredis"):
        env["PYTHONPATH"] = os.pathsep.join(
            x for x in (str(args.coredis_dir), env.get("PYTHONPATH", "")) if x)
    done = subprocess.run(
        [sys.executable, __file__, "worker", client, url, str(concurrency), str(args.steps),
         str(args.warmup)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        lines = [x for x in done.stderr.splitlines() if x.strip()]
        return f"failed: {lines[-1] if lines else f'exit {done.returncode}'}"
    return Sample(**json.loads(done.stdout.splitlines()[-1]))


def row(client: str, concurrency: int, samples: list[Sample],
        base: dict[str, float] | None) -> dict[str, Any]:
    median = statistics.median
    ops = median(s.ops_per_s for s in samples)
    cpu = median(s.cpu_us_per_op for s in samples)
    return {
        "client": client, "version": samples[-1].version, "concurrency": concurrency,
        "ops_per_s": round(ops), "cpu_us_per_op": round(cpu, 1),
        "p50_us": round(median(s.p50_us for s in samples)),
        "p99_us": round(median(s.p99_us for s in samples)),
        "connections": max(s.connections for s in samples),
        "ops_ratio": round(ops / base["ops_per_s"], 2) if base else None,
        "cpu_ratio": round(cpu / base["cpu_us_per_op"], 2) if base else None,
        "rounds": [asdict(s) for s in samples],
    }


def table(report: dict[str, Any]) -> str:
    lines = [
        f"Redis clients, one turn step = EVALSHA lock+load, EVALSHA save+unlock, GET; "
        f"{report['steps']} steps per run (ops = 3 per step), {report['rounds']} rounds, "
        f"medians; loop {report['loop']}; CPU: the client process",
        f"{'client':<34} {'C':>3} {'ops/s':>7} {'CPU µs/op':>9} {'p50 µs':>7} {'p99 µs':>7} "
        f"{'conns':>5} {'ops/s ×':>7} {'CPU ×':>6}",
    ]
    notes = ["conns: connections the client held after the run; ×: against plain redis-py "
             "at the same C; coredis-fcall: the same scripts as Redis functions (FCALL)"]
    for r in report["rows"]:
        if "problem" in r:
            lines.append(f"{r['client']:<34} {r['concurrency']:>3} {r['problem']}")
            continue
        name = f"{r['client']} ({r['version']})"
        ratio = (f"{r['ops_ratio']:>7.2f} {r['cpu_ratio']:>6.2f}" if r["ops_ratio"] is not None
                 else f"{'-':>7} {'-':>6}")
        lines.append(f"{name:<34} {r['concurrency']:>3} {r['ops_per_s']:>7} "
                     f"{r['cpu_us_per_op']:>9.1f} {r['p50_us']:>7} {r['p99_us']:>7} "
                     f"{r['connections']:>5} {ratio}")
    return "\n".join(lines + notes)


def collect(args: argparse.Namespace, url: str,
            problems: dict[str, str]) -> dict[tuple[str, int], list[Sample]]:
    """Every client at every concurrency, once a round, in turns."""
    samples: dict[tuple[str, int], list[Sample]] = {}
    for number in range(args.rounds):
        for concurrency in args.concurrency:
            shift = number % len(args.clients)
            for client in args.clients[shift:] + args.clients[:shift]:
                if client in problems:
                    continue
                got = run_worker(client, url, concurrency, args)
                if isinstance(got, str):
                    problems[client] = got
                    continue
                samples.setdefault((client, concurrency), []).append(got)
                print(f"round {number + 1} C={concurrency} {client}: {got.ops_per_s:.0f} ops/s "
                      f"{got.cpu_us_per_op:.1f} µs CPU/op", file=sys.stderr)
    return samples


def rows(args: argparse.Namespace, samples: dict[tuple[str, int], list[Sample]],
         problems: dict[str, str]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for concurrency in args.concurrency:
        base_samples = samples.get(("redis-py", concurrency))
        base = row("redis-py", concurrency, base_samples, None) if base_samples else None
        for client in args.clients:
            if (client, concurrency) in samples and client not in problems:
                result.append(row(client, concurrency, samples[client, concurrency], base))
            else:
                result.append({"client": client, "version": "-", "concurrency": concurrency,
                               "problem": problems.get(client, "no sample")})
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--steps", type=int, default=3000,
                        help="steps per run, shared among the customers (default 3000)")
    parser.add_argument("--warmup", type=int, default=300, help="steps before measuring")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")],
                        default=[1, 16, 50], help="customers at once, comma-separated")
    parser.add_argument("--clients", type=lambda s: s.split(","), default=list(CLIENTS),
                        help=f"comma-separated, of {', '.join(CLIENTS)}")
    parser.add_argument("--coredis-dir", type=Path,
                        default=Path(tempfile.gettempdir()) / "segue-bench-coredis")
    parser.add_argument("--json", type=Path, help="write the table here as JSON too")
    args = parser.parse_args(argv)
    unknown = set(args.clients) - set(CLIENTS)
    if unknown:
        parser.error(f"unknown clients: {', '.join(sorted(unknown))}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from tests.support.redis_server import redis_server

    problems: dict[str, str] = {}
    if any(c.startswith("coredis") for c in args.clients):
        problem = ensure_coredis(args.coredis_dir)
        if problem:
            problems.update({c: problem for c in args.clients if c.startswith("coredis")})
    with redis_server() as url:
        samples = collect(args, url, problems)
    report = {"steps": args.steps, "rounds": args.rounds,
              "loop": "uvloop" if loop_factory() else "asyncio",
              "rows": rows(args, samples, problems)}
    print(table(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["worker"]:
        sys.exit(worker(sys.argv[2:]))
    sys.exit(main())
