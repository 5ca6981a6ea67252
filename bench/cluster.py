"""Web chat turns on one Redis against a local Redis Cluster of three
masters: two `segue run` processes, one on each (`redis://` and
`redis+cluster://`), driven alternately by the web chat benchmark's clients
(50 at once); throughput, latency, and the CPU time Segue and the Redis
servers spent per turn. The cluster is the tests' (tests/support/
redis_cluster.py), all its nodes on this machine.

Usage: python -m bench.cluster [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

import importlib
import importlib.util
from contextlib import AbstractContextManager, ExitStack
from typing import Any, cast

from bench.procs import SEGUE_ENV, redis_pid, segue_command, started
from bench.table import Row, Sizes, count, row_main, unavailable
from bench.webchat_load import Target, measure, turn_rows
from tests.support.redis_server import free_port, redis_server

LABEL = "Redis Cluster, 3 masters, vs one Redis"
HELPER = "tests.support.redis_cluster"


def cluster_helper() -> Any | None:
    """The tests' `redis_cluster()` context manager, if this checkout has it."""
    if importlib.util.find_spec(HELPER) is None:
        return None
    return getattr(importlib.import_module(HELPER), "redis_cluster", None)


def run(sizes: Sizes) -> list[Row]:
    helper = cluster_helper()
    if helper is None:
        return [unavailable(LABEL, f"no redis_cluster() in {HELPER}")]
    clients = sizes.scale_clients
    with (redis_server() as redis_url, cast(AbstractContextManager[Any], helper()) as nodes,
          ExitStack() as servers):
        single_port, cluster_port = free_port(), free_port()
        cluster_pids = tuple(redis_pid(f"redis://127.0.0.1:{p}/0") for p in nodes.ports)
        try:
            on_cluster = servers.enter_context(started(
                segue_command(cluster_port), {**SEGUE_ENV, "SEGUE_REDIS_URL": nodes.url},
                cluster_port))
        except RuntimeError as exc:
            return [unavailable(LABEL, f"segue run on redis+cluster:// did not start: {exc}")]
        single = servers.enter_context(started(
            segue_command(single_port), {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url}, single_port))
        got = measure([Target("single", single_port, single.pid, (redis_pid(redis_url),)),
                       Target("cluster", cluster_port, on_cluster.pid, cluster_pids)],
                      clients, sizes.messages, sizes.rounds)
    return turn_rows(f"{LABEL}, {clients} clients", got["cluster"], got["single"],
                     f"{sizes.messages} messages each, {count(sizes.rounds, 'round')}; "
                     "baseline: the same Segue on one Redis")


if __name__ == "__main__":
    row_main(run, __doc__)
