"""One worker of `segue run --workers N`: the body of a process the
supervisor (`bot.assembly.workers`) starts.

Workers are started with multiprocessing's "spawn": each is a fresh
interpreter that builds its own app, event loop and Redis connections, so
nothing of the supervisor's (a loop, a socket, a connection) is shared by
accident. Only what `WorkerSpec` names crosses: the settings, the shared
connection table and the pipe on which the worker says it serves.
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
from dataclasses import dataclass
from multiprocessing.connection import Connection

from bot.assembly.address_table import AddressTable
from bot.assembly.http_server import limits_from
from bot.assembly.serving import Listening, run_until_stopped
from bot.core.settings import Settings

SERVING = b"serving"


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """What the supervisor hands a worker as it starts it."""

    settings: Settings  # `worker_index` names this worker
    # The connection counts of every worker; None when no cap applies.
    table: AddressTable | None
    # Written once, when the worker serves: the supervisor counts a worker
    # that dies before that as failing to start.
    ready: Connection


def run_worker(spec: WorkerSpec) -> None:
    """Serve as one worker until SIGTERM, or until the supervisor is gone;
    exits with `run_until_stopped`'s code."""
    # A Ctrl-C reaches every process of the terminal's group; the supervisor
    # answers it by sending each worker SIGTERM, so the worker leaves SIGINT
    # to it rather than stopping twice.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    settings = spec.settings
    index = settings.worker_index
    if index is None:
        raise ValueError("a worker's settings must name its worker_index")
    limit = limits_from(settings).max_connections_per_address
    counter = (spec.table.counter(index, limit)
               if spec.table is not None and limit is not None else None)
    supervisor = multiprocessing.parent_process()
    listening = Listening(
        reuse_port=True, counter=counter, stop_signals=(signal.SIGTERM,),
        ready=lambda: _say_serving(spec.ready),
        # A supervisor killed outright leaves no one to stop the workers: they
        # stop themselves rather than hold the port with no one watching.
        stop_when_readable=supervisor.sentinel if supervisor is not None else None,
    )
    sys.exit(run_until_stopped(settings, listening))


def _say_serving(ready: Connection) -> None:
    ready.send_bytes(SERVING)
    ready.close()
