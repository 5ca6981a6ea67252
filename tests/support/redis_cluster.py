"""A throwaway Redis Cluster of three masters on free loopback ports, for
tests: each node a `redis-server --cluster-enabled yes` in its own temporary
directory, joined by `redis-cli --cluster create`.

The binaries come from the system packages like the single server's
(`redis-server` depends on `redis-tools`, which holds `redis-cli`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
from redis.asyncio.cluster import RedisCluster
from redis.crc import key_slot

from context_store.redis_client import RedisClient
from tests.support.redis_server import ensure_redis_server, free_port
from tests.support.system_packages import ensure_binary

SLOTS = 16384


@dataclass(frozen=True, slots=True)
class ClusterNodes:
    """The running nodes: their ports, and the URL Segue takes."""

    ports: tuple[int, ...]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def clients(self) -> list[redis.Redis]:
        """A plain client per node (close each after use)."""
        return [redis.Redis(port=p, decode_responses=True) for p in self.ports]

    def flush(self) -> None:
        """Every node empty: the cluster's keyspace is the union of theirs."""
        for client in self.clients():
            with client:
                client.flushall()

    def serving(self, key: str) -> int:
        """The port of the node serving `key`'s hash slot."""
        slot = key_slot(key.encode())
        with redis.Redis(port=self.ports[0], decode_responses=True) as client:
            for start, end, (_, port, *_), *_ in client.execute_command("CLUSTER", "SLOTS"):
                if int(start) <= slot <= int(end):
                    return int(port)
        raise AssertionError(f"no node serves slot {slot}")

    def move(self, key: str, to_port: int) -> int:
        """Give `key`'s hash slot (holding no keys) to the node on `to_port`,
        as resharding does; the port that served it."""
        slot, source = key_slot(key.encode()), self.serving(key)
        clients = {p: redis.Redis(port=p, decode_responses=True) for p in self.ports}
        try:
            ids = {p: str(c.execute_command("CLUSTER", "MYID")) for p, c in clients.items()}
            clients[to_port].execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", ids[source])
            clients[source].execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", ids[to_port])
            # The new owner first, then the old, then the rest (Redis's order).
            for port in [to_port, source, *(p for p in self.ports if p not in (to_port, source))]:
                clients[port].execute_command("CLUSTER", "SETSLOT", slot, "NODE", ids[to_port])
        finally:
            for client in clients.values():
                client.close()
        return source


@contextmanager
def redis_cluster(masters: int = 3) -> Iterator[ClusterNodes]:
    """Start `masters` nodes, join them into one cluster with every slot
    served, yield them; stop them and remove their files on exit."""
    server = ensure_redis_server()
    cli = ensure_binary("redis-cli", "redis-tools")
    workdir = tempfile.mkdtemp(prefix="segue-cluster-")
    ports = tuple(free_port() for _ in range(masters))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            procs.append(_start_node(server, port, workdir))
        for port, proc in zip(ports, procs, strict=True):
            wait_for_ping(port, proc)
        subprocess.run(
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60,
        )
        nodes = ClusterNodes(ports)
        wait_until_served(nodes.ports)
        yield nodes
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _start_node(server: str, port: int, workdir: str) -> subprocess.Popen[bytes]:
    node_dir = os.path.join(workdir, str(port))
    os.makedirs(node_dir)
    return subprocess.Popen(
        # The cluster bus on a port of its own: the default, port + 10000,
        # may be taken or past 65535.
        [server, "--port", str(port), "--cluster-port", str(free_port()), "--bind", "127.0.0.1",
         "--dir", node_dir, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
         "--cluster-node-timeout", "2000", "--save", "", "--appendonly", "no",
         "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for_ping(port: int, proc: subprocess.Popen[bytes], within_seconds: float = 10.0) -> None:
    """Until the server on `port` answers PING; polling a starting process,
    as there is no event to await."""
    deadline = time.monotonic() + within_seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server on port {port} exited with {proc.returncode}")
        try:
            with redis.Redis(port=port, socket_connect_timeout=0.2) as client:
                if client.ping():
                    return
        except redis.ConnectionError:
            pass
        time.sleep(0.02)
    raise RuntimeError(f"redis-server on port {port} did not start in {within_seconds} s")


def wait_until_served(ports: Sequence[int], within_seconds: float = 30.0) -> None:
    """Until every node says the cluster is ok and every slot is served.
    Nodes learn of each other by gossip; polling their view is the only way
    to see that they agree."""
    deadline = time.monotonic() + within_seconds
    while True:
        if all(_node_is_ready(port, len(ports)) for port in ports):
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the Redis Cluster did not come up in time")
        time.sleep(0.05)


def _node_is_ready(port: int, masters: int) -> bool:
    with redis.Redis(port=port, decode_responses=True) as client:
        info = client.cluster("INFO")
        if isinstance(info, str):
            info = dict(line.split(":", 1) for line in info.split() if ":" in line)
        served = sum(end - start + 1 for start, end, *_ in _slot_ranges(client))
    return (str(info.get("cluster_state")) == "ok"
            and int(info.get("cluster_slots_ok", 0)) == SLOTS
            and int(info.get("cluster_known_nodes", 0)) >= masters
            and served == SLOTS)


def _slot_ranges(client: redis.Redis) -> list[list[int]]:
    return [[int(r[0]), int(r[1])] for r in client.execute_command("CLUSTER", "SLOTS")]


async def every_client(client: RedisClient) -> list[dict[str, Any]]:
    """`CLIENT LIST` of the one Redis, or of every node of a cluster (a
    connection is listed only by the node it is open to)."""
    if isinstance(client, RedisCluster):
        by_node = await client.client_list(target_nodes=RedisCluster.ALL_NODES)
        return [c for listed in by_node.values() for c in listed]
    return list(await client.client_list())
