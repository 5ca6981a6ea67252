"""Starting the servers a benchmark measures, each in its own process, and
keeping hold of the process so its CPU time and memory can be read.

`bench.webchat_turns.server` starts a process the same way but does not hand
it out; these wrap the same start (and its `wait_for_port`) and yield it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path

import redis

from bench.cpu import tree
from bench.webchat_turns import wait_for_port

ROOT = Path(__file__).resolve().parents[1]
# Workers start one after another on a shared machine: give them time.
LISTEN_TIMEOUT_SECONDS = 120

# What every benchmark's Segue gets: quiet logs, a fixed web chat secret, and
# the per-client limits off, as a trusted gateway would run it: every client
# of a benchmark shares one address, which the limits exist to stop.
SEGUE_ENV = {
    "SEGUE_LOG_LEVEL": "WARNING",
    "SEGUE_WEBCHAT_SECRET": "bench-secret-0123456789",
    "SEGUE_RATE_LIMITS": "off",
}


def segue_command(port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bot", "run", "--port", str(port), *extra]


def webchat_baseline_command(port: int, redis_url: str) -> list[str]:
    return [sys.executable, str(ROOT / "bench" / "baseline_server.py"), str(port), redis_url]


class _Server:
    """A started process and the file its stderr goes to (a file, not a
    pipe: a pipe nobody reads stops a chatty server)."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.cmd = cmd
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env},
                                     stdout=subprocess.DEVNULL, stderr=self.stderr)

    def stop(self) -> None:
        if self.stderr.closed:
            return  # stopped already
        # A supervisor is to stop its workers; any it leaves are stopped here.
        started_by_it = tree(self.proc.pid)[1:]
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in started_by_it:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.stderr.close()

    def failed(self) -> RuntimeError:
        """Why the server did not come up: its exit code and last words."""
        self.stderr.seek(0)
        lines = self.stderr.read().decode(errors="replace").strip().splitlines()
        self.stop()
        return RuntimeError(f"{' '.join(self.cmd[1:4])} did not start "
                            f"(exit {self.proc.returncode}): {lines[-1] if lines else 'no output'}")

    async def listening(self, port: int) -> None:
        """Wait until `port` answers; fail at once if the process exits."""
        # Several servers starting side by side on a busy machine can take
        # longer than `wait_for_port`'s own 30 s.
        waiting = asyncio.ensure_future(wait_for_port(port, LISTEN_TIMEOUT_SECONDS))
        while not waiting.done():
            if self.proc.poll() is not None:
                waiting.cancel()
                raise self.failed()
            await asyncio.wait({waiting}, timeout=0.1)
        if waiting.exception() is not None:
            raise self.failed()


Spec = tuple[list[str], dict[str, str], int]  # command, environment, port


@contextmanager
def started_together(specs: list[Spec]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """Run every command until the block ends; yields their processes once
    every port answers. They start side by side: most of a start is waiting
    for imports and for Redis, which overlap. For a driver that runs each
    round in its own event loop."""
    servers: list[_Server] = []
    try:
        for cmd, env, _ in specs:
            servers.append(_Server(cmd, env))

        async def listening() -> None:
            await asyncio.gather(*(server.listening(port)
                                   for server, (_, _, port) in zip(servers, specs, strict=True)))

        asyncio.run(listening())
        yield [server.proc for server in servers]
    finally:
        for server in servers:
            server.stop()


@contextmanager
def started(cmd: list[str], env: dict[str, str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run `cmd` until the block ends; yields the process once `port` answers."""
    with started_together([(cmd, env, port)]) as (proc,):
        yield proc


@asynccontextmanager
async def started_async(cmd: list[str], env: dict[str, str],
                        port: int) -> AsyncIterator[subprocess.Popen[bytes]]:
    """The same, from inside a running event loop (a driver that also serves
    a platform's fake API)."""
    server = _Server(cmd, env)
    await server.listening(port)
    try:
        yield server.proc
    finally:
        server.stop()


def listeners(port: int) -> int:
    """How many sockets listen on `port` (each worker of `segue run
    --workers N` listens on its own, with SO_REUSEPORT)."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with suppress(OSError), open(table) as lines:
            next(lines)  # the header
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


async def all_listening(port: int, count: int, proc: subprocess.Popen[bytes]) -> None:
    """Until `count` sockets listen on `port`: every worker serves. The kernel
    tells no one when a socket starts listening, so its table is polled."""
    deadline = time.monotonic() + LISTEN_TIMEOUT_SECONDS
    while listeners(port) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{listeners(port)} of {count} workers listen on port {port}")
        await asyncio.sleep(0.1)


def redis_pid(url: str) -> int:
    """The process id of the Redis server at `url`, as it reports it."""
    client = redis.Redis.from_url(url)
    try:
        info = client.info("server")
    finally:
        client.close()
    return int(info["process_id"])
