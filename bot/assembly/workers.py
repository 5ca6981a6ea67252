"""`segue run --workers N`: N worker processes on one port, supervised.

Each worker listens on the same host:port with SO_REUSEPORT, and the kernel
spreads new connections over them by a hash of the connection's addresses.
That keeps long-lived sockets (web chat, consoles) evenly spread, where
workers accepting from one shared socket take connections by who wakes
first. Before starting any worker the supervisor binds the address once
without SO_REUSEPORT and lets it go: a port in use (by another Segue too,
whose workers would otherwise silently share it with these) fails there,
with one clear message, and port 0 becomes a real port every worker uses.

Workers share conversations, locks, the shared limits and the bus through
Redis, as separate `segue run` processes do, and their counts of connections
per client address through an `AddressTable` in shared memory. Only worker 0
polls Telegram (`Settings.worker_index`).

The supervisor starts every worker, starts again one that dies (at once if
it had been serving, else after a doubling pause: 1 s up to 30 s), and gives
up, with the exit code of the last failure, once every worker has failed to
start 5 times in a row (`Restarts`). On SIGTERM or SIGINT it stops starting
workers, sends each SIGTERM, waits for them to drain, kills any still running
after `STOP_GRACE_SECONDS`, and exits 0.

Metrics: the supervisor makes a fresh directory for prometheus_client's
multiprocess mode and names it in PROMETHEUS_MULTIPROC_DIR before any worker
starts (a directory left by an earlier run would add its counts to these).
Each worker writes its values there, `/metrics` on any worker reads them
all, the files of a worker that exits stop counting in the gauges of live
workers, and the directory is removed when the supervisor exits.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from prometheus_client.multiprocess import mark_process_dead
from pydantic import SecretStr

from bot.assembly.address_table import AddressTable
from bot.assembly.http_server import limits_from
from bot.assembly.log_setup import setup_logging
from bot.assembly.worker_process import SERVING, WorkerSpec, run_worker
from bot.core.settings import Settings

log = logging.getLogger("segue")

SPAWN = multiprocessing.get_context("spawn")
# Each worker drains on SIGTERM within `SHUTDOWN_GRACE_SECONDS` (25 s); a
# Telegram update or inbox item in hand may add up to 25 s and 5 s: 75 s is
# a backstop before SIGKILL.
STOP_GRACE_SECONDS = 75.0
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def workers_refused(settings: Settings) -> str | None:
    """Why these settings cannot run several workers, or None."""
    if settings.redis_url is None:
        return (f"--workers {settings.workers} needs a shared store: set SEGUE_REDIS_URL "
                "(on the in-memory store each worker would keep its own conversations)")
    return None


def run_workers(settings: Settings, **supervision: Any) -> int:
    """Supervise `settings.workers` workers until stopped (`supervision`: the
    `Supervisor`'s options); the exit code."""
    setup_logging(settings)
    try:
        port = claimable_port(settings.host, settings.port)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.host, settings.port, exc)
        return 1
    with shared_metrics() as metrics_dir:
        supervisor = Supervisor(shared_settings(settings, port), metrics_dir=metrics_dir,
                                **supervision)
        return asyncio.run(supervisor.run())


@contextmanager
def shared_metrics() -> Iterator[str]:
    """A fresh directory for the workers' metrics, named in the environment
    the workers inherit; removed (and the environment restored) at the end."""
    path = tempfile.mkdtemp(prefix="segue-metrics-")
    previous = os.environ.get(METRICS_DIR_VARIABLE)
    os.environ[METRICS_DIR_VARIABLE] = path
    try:
        yield path
    finally:
        if previous is None:
            os.environ.pop(METRICS_DIR_VARIABLE, None)
        else:
            os.environ[METRICS_DIR_VARIABLE] = previous
        shutil.rmtree(path, ignore_errors=True)


def claimable_port(host: str, port: int) -> int:
    """Bind host:port as a worker will, but without SO_REUSEPORT, then let
    go. Raises OSError where the workers would fail to listen, and also where
    they would not: another server's SO_REUSEPORT sockets listen there (the
    workers would silently split its traffic). The port (0: one chosen now)."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as sock:
            # As asyncio's server sets them: a port left in TIME_WAIT is free.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((address[0], port, *address[2:]))
            port = int(sock.getsockname()[1])
    return port


def shared_settings(settings: Settings, port: int) -> Settings:
    """The settings every worker starts from: the port chosen, and one web
    chat secret for all (else a session signed by one worker is refused by
    the next)."""
    update: dict[str, object] = {"port": port}
    if settings.webchat_secret is None:
        log.warning("SEGUE_WEBCHAT_SECRET is not set: the workers share a random secret, "
                    "so web chat sessions end when Segue stops")
        update["webchat_secret"] = SecretStr(secrets.token_urlsafe(32))
    return settings.model_copy(update=update)


@dataclass(frozen=True, slots=True)
class Restarts:
    """When a worker that died is started again, and when to stop trying."""

    first_pause_seconds: float = 1.0
    max_pause_seconds: float = 30.0
    # Failed starts in a row, of every worker, before the supervisor gives
    # up: with the pauses between them about 15 s plus the starts themselves,
    # time for a Redis started alongside Segue to come up.
    give_up_after: int = 5

    def pause(self, failures: int) -> float:
        """Seconds before starting a worker again after `failures` failed
        starts in a row (0: it had been serving)."""
        if failures == 0:
            return 0.0
        return min(self.max_pause_seconds, self.first_pause_seconds * 2.0 ** (failures - 1))


@dataclass(slots=True)
class Slot:
    """One worker's place: the process in it now and how its starts went."""

    index: int
    process: BaseProcess | None = None
    serving: bool = False
    # Exits before serving, in a row; the pause before the next start doubles.
    failures: int = 0
    restart: asyncio.TimerHandle | None = None


class Supervisor:
    """Starts, watches, restarts and stops the workers (see the module)."""

    def __init__(self, settings: Settings, *,
                 target: Callable[[WorkerSpec], None] = run_worker,
                 restarts: Restarts = Restarts(),
                 stop_grace_seconds: float = STOP_GRACE_SECONDS,
                 metrics_dir: str | None = None) -> None:
        self.settings = settings
        self.metrics_dir = metrics_dir
        self.target = target
        self.restarts = restarts
        self.stop_grace_seconds = stop_grace_seconds
        capped = limits_from(settings).max_connections_per_address is not None
        self.table = AddressTable.allocate(SPAWN, settings.workers) if capped else None
        self.slots = [Slot(index) for index in range(settings.workers)]
        self.exit_code = 0
        self._announced = False

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._all_exited = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._stop_requested, sig)
        for slot in self.slots:
            self._start(slot)
        await self._stop.wait()
        await self._stop_workers()
        return self.exit_code

    # Starting.

    def _start(self, slot: Slot) -> None:
        slot.restart = None
        if self._stop.is_set():
            return
        loop = asyncio.get_running_loop()
        reader, writer = SPAWN.Pipe(duplex=False)
        spec = WorkerSpec(settings=self.settings.model_copy(update={"worker_index": slot.index}),
                          table=self.table, ready=writer)
        process = SPAWN.Process(target=self.target, args=(spec,),
                                name=f"segue-worker-{slot.index}")
        process.start()
        # The worker holds its end now; ours would keep the pipe from ending.
        writer.close()
        slot.process, slot.serving = process, False
        loop.add_reader(reader.fileno(), self._on_ready, slot, reader)
        loop.add_reader(process.sentinel, self._on_exit, slot, process, reader)
        log.info("worker %d started (pid %s)", slot.index, process.pid)

    def _on_ready(self, slot: Slot, reader: Connection) -> None:
        asyncio.get_running_loop().remove_reader(reader.fileno())
        try:
            said = reader.recv_bytes()
        except EOFError:
            said = b""  # it died first: `_on_exit` tells
        reader.close()
        if said != SERVING:
            return
        slot.serving, slot.failures = True, 0
        if not self._announced and all(s.serving for s in self.slots):
            self._announced = True
            log.info("Segue is serving on http://%s:%d/ with %d workers (web chat at /webchat/)",
                     self.settings.host, self.settings.port, len(self.slots))

    # Exits.

    def _on_exit(self, slot: Slot, process: BaseProcess, reader: Connection) -> None:
        loop = asyncio.get_running_loop()
        loop.remove_reader(process.sentinel)
        if not reader.closed:
            loop.remove_reader(reader.fileno())
            reader.close()
        process.join()
        code, pid = process.exitcode, process.pid
        process.close()
        slot.process = None
        if self.metrics_dir is not None and pid is not None:
            # Its connections are gone: its gauges no longer count; its
            # counters still do, so totals never go back.
            mark_process_dead(pid, self.metrics_dir)  # type: ignore[no-untyped-call]
        if self._stop.is_set():
            level = logging.INFO if code == 0 else logging.WARNING
            log.log(level, "worker %d (pid %s) stopped (%s)", slot.index, pid, describe(code))
            if all(s.process is None for s in self.slots):
                self._all_exited.set()
            return
        # Its connections died with it: its counts must not hold anyone back.
        if self.table is not None:
            self.table.clear_row(slot.index)
        if not slot.serving:
            slot.failures += 1
        give_up_after = self.restarts.give_up_after
        # Only once no start is under way: one might yet succeed.
        if all(s.failures >= give_up_after and s.process is None for s in self.slots):
            log.error("every worker failed to start %d times in a row (the last: %s); "
                      "giving up", give_up_after, describe(code))
            self.exit_code = code if code is not None and code > 0 else 1
            self._stop.set()
            return
        delay = self.restarts.pause(slot.failures)
        log.warning("worker %d (pid %s) exited unexpectedly (%s)%s; starting it again %s",
                    slot.index, pid, describe(code), "" if slot.serving else " before serving",
                    f"in {delay:g} s" if delay else "at once")
        slot.restart = loop.call_later(delay, self._start, slot)

    # Stopping.

    def _stop_requested(self, sig: signal.Signals) -> None:
        if self._stop.is_set():
            log.info("%s: already stopping", sig.name)
            return
        log.info("%s: stopping the workers", sig.name)
        self._stop.set()

    async def _stop_workers(self) -> None:
        for slot in self.slots:
            if slot.restart is not None:
                slot.restart.cancel()
                slot.restart = None
        running = [slot.process for slot in self.slots if slot.process is not None]
        if not running:
            return
        for process in running:
            process.terminate()
        try:
            await asyncio.wait_for(self._all_exited.wait(), self.stop_grace_seconds)
        except TimeoutError:
            for slot in self.slots:
                if slot.process is not None:
                    log.warning("worker %d (pid %s) did not stop within %.0f s: killing it",
                                slot.index, slot.process.pid, self.stop_grace_seconds)
                    slot.process.kill()
            await self._all_exited.wait()
        log.info("all workers stopped")


def describe(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exit code {code}"
