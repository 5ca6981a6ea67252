"""`segue run --workers N` as an operator starts it, for tests: the
supervisor as a subprocess, its log read as it is written, the pids of its
workers, and which worker holds a connection (read from /proc: the process
that has the server's end of it open).

Run as a module it supervises with options the command line does not offer
(`SEGUE_*` settings from the environment, as `segue run`):

    python -m tests.support.workers_rig stubborn PORT   # workers ignore SIGTERM
    python -m tests.support.workers_rig impatient PORT  # real workers, quick to give up
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import aiohttp

from bot.assembly.worker_process import SERVING, WorkerSpec
from bot.assembly.workers import Restarts, run_workers
from bot.core.settings import load_settings
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
WEB_SECRET = "workers-web-secret"
SERVING_LINE = re.compile(r"worker (\d+) \(pid (\d+)\) is serving")
# Starting a worker imports the whole app: seconds on a busy machine.
START_SECONDS = 90.0


def segue_env(redis_url: str | None, *, web_secret: str | None = WEB_SECRET,
              **settings: str) -> dict[str, str]:
    """This process's environment without its `SEGUE_*`, then Redis and the
    web chat secret (each unless None) and `settings` (`SEGUE_<NAME>`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
    if redis_url is not None:
        env["SEGUE_REDIS_URL"] = redis_url
    if web_secret is not None:
        env["SEGUE_WEBCHAT_SECRET"] = web_secret
    env.update({f"SEGUE_{name.upper()}": value for name, value in settings.items()})
    return env


class Supervised:
    """A running supervisor process and what it has logged."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.ws_url = f"{self.url}/webchat/ws"
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while line := (await self.proc.stderr.readline()).decode():
            async with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def mark(self) -> int:
        """Where the log is now: `line(..., after=mark)` reads what comes next."""
        return len(self.lines)

    async def line(self, pattern: str, *, after: int = 0,
                   timeout: float = START_SECONDS) -> re.Match[str]:
        """The first line logged from position `after` on that matches
        `pattern`, once it is logged."""
        regex = re.compile(pattern)
        position = after
        async with asyncio.timeout(timeout), self._changed:
            while True:
                for line in self.lines[position:]:
                    if found := regex.search(line):
                        return found
                position = len(self.lines)
                if self._reader.done():
                    raise AssertionError(f"segue ended before logging {pattern!r}:\n"
                                         + "".join(self.lines))
                await self._changed.wait()

    def count(self, pattern: str, *, after: int = 0) -> int:
        return len(self.matches(pattern, after=after))

    def matches(self, pattern: str, *, after: int = 0) -> list[str]:
        """The first group of `pattern` (or the whole match) of each match in
        the lines logged from position `after` on (lines of two processes can
        run together, so one line may hold two)."""
        regex = re.compile(pattern)
        found = (match for line in self.lines[after:] for match in regex.finditer(line))
        return [match[1] if regex.groups else match[0] for match in found]

    @property
    def pids(self) -> dict[int, int]:
        """Each worker's pid, as its latest "is serving" line says. Workers
        write to one shared stderr, so two such lines can arrive run together
        on one line: every match of each line counts."""
        found: dict[int, int] = {}
        for line in self.lines:
            for match in SERVING_LINE.finditer(line):
                found[int(match[1])] = int(match[2])
        return found

    async def serving(self, workers: int) -> None:
        """Wait until every worker serves, then ask the port's health."""
        await self.line(rf"Segue is serving on .* with {workers} workers")
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/healthz") as answer:
            assert answer.status == 200

    def holder(self, client_port: int) -> int:
        """The pid of the worker holding the server's end of the connection
        from `client_port`."""
        pid = socket_holder(self.pids.values(), self.port, client_port)
        assert pid is not None, f"no worker holds the connection from port {client_port}"
        return pid

    async def exited(self, timeout: float = START_SECONDS) -> int:
        code = await asyncio.wait_for(self.proc.wait(), timeout)
        await self._reader
        return code

    async def stop(self) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.exited()


@asynccontextmanager
async def running(env: dict[str, str], *args: str, port: int) -> AsyncIterator[Supervised]:
    """`python ARGS` in the repository with `env`, to serve on `port`;
    stopped with SIGTERM at the end if still running."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, *args, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE)
    started = Supervised(proc, port)
    try:
        yield started
    finally:
        await started.stop()


@asynccontextmanager
async def supervised(env: dict[str, str], *, workers: int = 2) -> AsyncIterator[Supervised]:
    """`segue run --workers N` on a free loopback port, once every worker
    serves; stopped with SIGTERM at the end if still running."""
    port = free_port()
    async with running(env, "-m", "bot", "run", "--host", "127.0.0.1", "--port", str(port),
                       "--workers", str(workers), port=port) as segue:
        await segue.serving(workers)
        yield segue


@asynccontextmanager
async def rig(env: dict[str, str], mode: str) -> AsyncIterator[Supervised]:
    """This module run as `mode` (see the module) on a free loopback port;
    stopped with SIGTERM at the end if still running."""
    port = free_port()
    async with running(env, "-m", "tests.support.workers_rig", mode, str(port),
                       port=port) as segue:
        yield segue


def alive(pid: int) -> bool:
    """Whether `pid` is a process that has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def socket_holder(pids: Iterable[int], server_port: int, client_port: int) -> int | None:
    """Which of `pids` has open the accepted socket of the TCP connection
    from `client_port` to `server_port`."""
    inode = _accepted_inode(server_port, client_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        with suppress(FileNotFoundError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with suppress(FileNotFoundError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
    return None


def _accepted_inode(server_port: int, client_port: int) -> int | None:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            next(rows)
            for row in rows:
                fields = row.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
                # 01: established; inode 0: not accepted by any process yet.
                if (state == "01" and inode and _port(local) == server_port
                        and _port(remote) == client_port):
                    return inode
    return None


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


# Supervising with options of its own (run as a module).


def stubborn_worker(spec: WorkerSpec) -> None:
    """A worker that says it serves, then ignores SIGTERM: a straggler."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # Logged before the supervisor hears of it, as a real worker does.
    print(f"worker {spec.settings.worker_index} (pid {os.getpid()}) is serving, stubbornly",
          file=sys.stderr, flush=True)
    spec.ready.send_bytes(SERVING)
    while True:
        time.sleep(3600)


def _main(mode: str, port: int) -> int:
    settings = load_settings().model_copy(update={"port": port, "workers": 2})
    if mode == "stubborn":
        return run_workers(settings, target=stubborn_worker, stop_grace_seconds=1.0)
    if mode == "impatient":
        return run_workers(settings, restarts=Restarts(first_pause_seconds=0.2,
                                                       max_pause_seconds=0.4, give_up_after=2))
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1], int(sys.argv[2])))
