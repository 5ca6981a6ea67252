"""A throwaway Redis Sentinel set on free loopback ports, for tests: one
master, one replica, and three sentinels (`redis-server --sentinel`, each
with a config file of its own, quorum 2) watching them; a failover on demand.

The redis-server package runs sentinels itself (`--sentinel`); nothing else
is installed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from tests.support.redis_cluster import wait_for_ping
from tests.support.redis_server import ensure_redis_server, free_port

SERVICE = "segue"
QUORUM = 2


@dataclass(frozen=True, slots=True)
class SentinelSet:
    """The running set: the data nodes' ports and the sentinels'."""

    data_ports: tuple[int, int]
    sentinel_ports: tuple[int, ...]

    @property
    def url(self) -> str:
        """Segue's URL for the set (without options)."""
        hosts = ",".join(f"127.0.0.1:{p}" for p in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def master_port(self) -> int:
        """The master's port, as the sentinels agree on it."""
        answers = set()
        for port in self.sentinel_ports:
            with redis.Redis(port=port, decode_responses=True) as sentinel:
                _, master = sentinel.sentinel_get_master_addr_by_name(SERVICE)
                answers.add(int(master))
        if len(answers) != 1:
            raise AssertionError(f"the sentinels disagree on the master: {answers}")
        return answers.pop()

    def replica_port(self) -> int:
        master = self.master_port()
        return next(p for p in self.data_ports if p != master)

    def failover(self, within_seconds: float = 30.0) -> int:
        """`SENTINEL FAILOVER`: the replica becomes the master. Returns once
        every sentinel names it, it is a master, and the old master
        replicates from it; its port."""
        old, new = self.master_port(), self.replica_port()
        with redis.Redis(port=self.sentinel_ports[0], decode_responses=True) as sentinel:
            sentinel.execute_command("SENTINEL", "FAILOVER", SERVICE)
        _wait_until(lambda: self._promoted(old, new), within_seconds,
                    f"the replica on {new} did not take over from {old}")
        return new

    def flush(self) -> None:
        with redis.Redis(port=self.master_port()) as master:
            master.flushall()
            master.execute_command("WAIT", 1, 5000)

    def _promoted(self, old: int, new: int) -> bool:
        try:
            if self.master_port() != new:
                return False
        except AssertionError:  # some sentinels have not heard yet
            return False
        return _role(new) == "master" and _replica_in_sync(old, new)


@contextmanager
def redis_sentinel_set() -> Iterator[SentinelSet]:
    """Start the master, its replica and three sentinels; yield them once
    the replica is in sync and every sentinel knows the whole set; stop
    everything and remove its files on exit."""
    server = ensure_redis_server()
    workdir = tempfile.mkdtemp(prefix="segue-sentinel-")
    master, replica = free_port(), free_port()
    sentinels = tuple(free_port() for _ in range(3))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        procs.append(_data_node(server, master, workdir))
        procs.append(_data_node(server, replica, workdir, "--replicaof", "127.0.0.1",
                                str(master)))
        for port in sentinels:
            procs.append(_sentinel(server, port, master, workdir))
        for port, proc in zip((master, replica, *sentinels), procs, strict=True):
            wait_for_ping(port, proc)
        found = SentinelSet((master, replica), sentinels)
        _wait_until(lambda: _watched(found), 30, "the sentinels did not find the whole set")
        yield found
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _data_node(server: str, port: int, workdir: str, *extra: str) -> subprocess.Popen[bytes]:
    node_dir = os.path.join(workdir, str(port))
    os.makedirs(node_dir)
    return subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", node_dir,
         "--save", "", "--appendonly", "no", "--protected-mode", "yes", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _sentinel(server: str, port: int, master: int, workdir: str) -> subprocess.Popen[bytes]:
    # A sentinel rewrites its config file with what it learns: one each.
    config = os.path.join(workdir, f"sentinel-{port}.conf")
    with open(config, "w", encoding="utf-8") as file:
        file.write(
            f"port {port}\nbind 127.0.0.1\ndir {workdir}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master} {QUORUM}\n"
            # Short enough for a test to see a master that died replaced.
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n")
    return subprocess.Popen([server, config, "--sentinel"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _watched(found: SentinelSet) -> bool:
    """Every sentinel knows the master, its replica (in sync) and the two
    other sentinels."""
    master, replica = found.data_ports
    if not _replica_in_sync(replica, master):
        return False
    for port in found.sentinel_ports:
        with redis.Redis(port=port, decode_responses=True) as sentinel:
            replicas = sentinel.sentinel_slaves(SERVICE)
            others = sentinel.sentinel_sentinels(SERVICE)
        # A sentinel promotes only a replica it last saw linked to the master.
        if len(others) != len(found.sentinel_ports) - 1 or [
                (r["port"], r["master-link-status"], r["is_sdown"]) for r in replicas
        ] != [(replica, "ok", False)]:
            return False
    return True


def _role(port: int) -> str:
    with redis.Redis(port=port, decode_responses=True) as node:
        return str(node.execute_command("ROLE")[0])


def _replica_in_sync(replica: int, master: int) -> bool:
    """Whether the node on `replica` replicates the one on `master`, linked."""
    with redis.Redis(port=replica, decode_responses=True) as node:
        info = node.info("replication")
    return (info.get("role") == "slave" and int(info.get("master_port", 0)) == master
            and info.get("master_link_status") == "up")


def _wait_until(ready: Callable[[], bool], within_seconds: float, failure: str) -> None:
    """Poll `ready()`: the set converges by gossip, which announces nothing."""
    deadline = time.monotonic() + within_seconds
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.05)
