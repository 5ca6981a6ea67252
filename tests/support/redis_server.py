"""A throwaway `redis-server` on a free loopback port, for tests and benchmarks,
and what a test reads back from it.

If the binary is missing it is installed from the system packages (the test
machines run as root); tests never skip for want of Redis.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis.asyncio as aioredis

from tests.support.system_packages import ensure_binary


def ensure_redis_server() -> str:
    return ensure_binary("redis-server", "redis-server")


# Below the kernel's ephemeral range (32768-60999 on Linux): a port the
# kernel hands out for port 0 is also what it gives the next outgoing
# connection, so a server started on it a moment later could find it taken
# by any client on this busy machine. Ports here are only ever taken by a bind.
PORTS = range(20000, 32000)


def free_port() -> int:
    """A loopback port nothing listens on now, outside the ephemeral range."""
    for _ in range(200):
        port = random.choice(PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port between 20000 and 32000")


@contextmanager
def redis_server(port: int | None = None) -> Iterator[str]:
    """Start a redis-server (on `port`, or a free one); yields its URL; stops
    it on exit. Starting again on the same port simulates Redis coming back."""
    binary = ensure_redis_server()
    port = port or free_port()
    workdir = tempfile.mkdtemp(prefix="segue-redis-")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir, "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_port(port, proc)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"redis-server exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            pass
        time.sleep(0.02)  # polling a starting process: there is no event to await
    raise RuntimeError("redis-server did not start in 10 s")


async def redis_keys(client: aioredis.Redis, match: str = "segue:*") -> list[str]:
    """The keys matching `match`, sorted."""
    return sorted([key async for key in client.scan_iter(match=match)])
