"""Web chat turns against the baseline: `segue run` and the bare aiohttp
server of `bench/baseline_server.py` (one Redis GET and SET per message) on
one Redis, driven alternately by the same clients; throughput, latency and
the CPU time each server spent per turn, at each client count of the size.

Usage: python -m bench.webchat_rows [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

from bench.procs import (
    SEGUE_ENV,
    redis_pid,
    segue_command,
    started_together,
    webchat_baseline_command,
)
from bench.table import Row, Sizes, count, row_main
from bench.webchat_load import Target, measure, turn_rows
from tests.support.redis_server import free_port, redis_server


def run(sizes: Sizes) -> list[Row]:
    rows: list[Row] = []
    with redis_server() as redis_url:
        seg_port, base_port = free_port(), free_port()
        with started_together([
            (segue_command(seg_port), {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url}, seg_port),
            (webchat_baseline_command(base_port, redis_url), {}, base_port),
        ]) as (segue, base):
            shared = (redis_pid(redis_url),)
            targets = [Target("baseline", base_port, base.pid, shared),
                       Target("segue", seg_port, segue.pid, shared)]
            for clients in sizes.clients:
                got = measure(targets, clients, sizes.messages, sizes.rounds)
                rows += turn_rows(f"web chat, {clients} clients", got["segue"], got["baseline"],
                                  f"{sizes.messages} messages each, {count(sizes.rounds, 'round')}")
    return rows


if __name__ == "__main__":
    row_main(run, __doc__)
