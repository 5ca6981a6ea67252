"""Serving Segue in this process until SIGINT or SIGTERM: what `segue run`
does alone, and what each worker of `segue run --workers N` does."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.assembly.app import create_app
from bot.assembly.http_server import ConnectionCounter, start_http_server
from bot.assembly.log_setup import setup_logging
from bot.core.errors import SegueError, StoreUnavailable
from bot.core.settings import Settings

log = logging.getLogger("segue")


@dataclass(frozen=True, slots=True)
class Listening:
    """How this process listens: alone (the defaults), or as one worker of
    several on a shared port, counting connections in a shared `counter`,
    stopped by SIGTERM (the supervisor turns a Ctrl-C into it) or once the
    file descriptor `stop_when_readable` is (the supervisor is gone), and
    telling the supervisor through `ready` once it serves."""

    reuse_port: bool = False
    counter: ConnectionCounter | None = None
    stop_signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)
    stop_when_readable: int | None = None
    ready: Callable[[], None] = field(default=lambda: None)


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (not on Windows): it roughly halves the
    event loop's own cost per WebSocket frame and Redis call."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_until_stopped(settings: Settings, listening: Listening | None = None) -> int:
    """Serve on a fresh event loop; the exit code: 0 after a clean stop, 3 if
    the store cannot be reached, 2 for any other reason not to start."""
    setup_logging(settings)
    try:
        with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
            runner.run(serve(settings, listening or Listening()))
    except StoreUnavailable as exc:
        log.error("cannot start: %s", exc)
        return 3
    except SegueError as exc:
        log.error("cannot start: %s", exc)
        return 2
    return 0


async def serve(settings: Settings, listening: Listening | None = None) -> None:
    """Serve until one of the stop signals, then shut down cleanly: stop
    listening, finish the turns in flight, close the store."""
    listening = listening or Listening()
    app = await create_app(settings)
    runner = await start_http_server(app, settings, settings.host, settings.port,
                                     counter=listening.counter,
                                     reuse_port=listening.reuse_port)
    for address in runner.addresses:
        host, port = address[0], address[1]
        if settings.worker_index is None:
            log.info("Segue is serving on http://%s:%d/ (web chat at /webchat/)", host, port)
        else:
            log.info("worker %d (pid %d) is serving on http://%s:%d/",
                     settings.worker_index, os.getpid(), host, port)
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in listening.stop_signals:
        loop.add_signal_handler(sig, stopped.set)
    if listening.stop_when_readable is not None:
        loop.add_reader(listening.stop_when_readable, _orphaned, stopped)
    listening.ready()
    try:
        await stopped.wait()
    finally:
        if listening.stop_when_readable is not None:
            loop.remove_reader(listening.stop_when_readable)
        log.info("shutting down")
        await runner.cleanup()


def _orphaned(stopped: asyncio.Event) -> None:
    if not stopped.is_set():
        log.error("the supervisor is gone: stopping this worker")
        stopped.set()
