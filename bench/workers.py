"""Web chat turns on 1, 2 and 4 workers: `segue run --workers N` on one
Redis, driven by the web chat benchmark's clients (50 at once), the
configurations in alternating rounds; turns per second and the CPU time of
the whole process tree (supervisor and workers) per turn. More workers than
cores only share the cores, so read the figures against the machine's core
count, which the row's notes give.

Usage: python -m bench.workers [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from bench.procs import SEGUE_ENV, all_listening, redis_pid, segue_command, started_together
from bench.table import Row, Sizes, count, row_main, unavailable
from bench.webchat_load import Target, measure
from tests.support.redis_server import free_port, redis_server

LABEL = "workers"


def has_workers_flag() -> bool:
    """Whether this `segue run` takes `--workers`."""
    help_text = subprocess.run([sys.executable, "-m", "bot", "run", "--help"],
                               capture_output=True, text=True, check=False).stdout
    return "--workers" in help_text


def run(sizes: Sizes) -> list[Row]:
    if not has_workers_flag():
        return [unavailable(LABEL, "segue run has no --workers")]
    clients, cores = sizes.scale_clients, os.cpu_count()
    with redis_server() as redis_url:
        env = {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url}
        ports = [free_port() for _ in sizes.workers]
        specs = [(segue_command(port, "--workers", str(n)), env, port)
                 for n, port in zip(sizes.workers, ports, strict=True)]
        with started_together(specs) as procs:
            shared = (redis_pid(redis_url),)
            targets = []
            for n, port, proc in zip(sizes.workers, ports, procs, strict=True):
                asyncio.run(all_listening(port, n, proc))
                targets.append(Target(str(n), port, proc.pid, shared))
            got = measure(targets, clients, sizes.messages, sizes.rounds)
    first = sizes.workers[0]
    one = got[str(first)]
    rows = []
    for n in sizes.workers:
        m, base = got[str(n)], None if n == first else one
        workers = count(n, "worker")
        notes = "" if base else (f"{cores} cores; {clients} clients, {sizes.messages} messages "
                                 f"each, {count(sizes.rounds, 'round')}; baseline: {workers}")
        rows += [
            Row(f"{workers}, {clients} clients: throughput", "turns/s", m.result.turns_per_s,
                base.result.turns_per_s if base else None, notes),
            Row(f"{workers}: CPU per turn (all processes)", "µs", m.cpu_us_per_turn,
                base.cpu_us_per_turn if base else None,
                f"p50 {m.result.p50_ms:.1f} ms, p99 {m.result.p99_ms:.1f} ms"),
        ]
    return rows


if __name__ == "__main__":
    row_main(run, __doc__)
