"""Serving Segue in this process until SIGINT or SIGTERM: what `segue run`
does alone, and what each worker of `segue run --workers N` does.

On the stop signal Segue shuts down in phases, each logged at INFO: it stops
listening (a new connection is refused, or taken by another worker), lets the
turns in flight finish (web chat messages, webhook and event requests, agent
replies) for up to `SHUTDOWN_GRACE_SECONDS`, closes web chat sockets and
agent consoles with 1012 (service restart: they reconnect), stops Telegram
polling, Slack and the inbox once what they hold is handled, then the outbox
sweeper, the bus and the store, and exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.assembly.app import close_consoles, create_app, drain
from bot.assembly.http_server import ConnectionCounter, GuardedRunner, start_http_server
from bot.assembly.log_setup import setup_logging
from bot.core.errors import SegueError, StoreUnavailable
from bot.core.settings import Settings

log = logging.getLogger("segue")

# How long turns in flight may take to finish once stopping: a turn holds a
# customer's lock for `lock_wait_seconds` (10) waiting plus the work; an
# action or NLU call is cut at `action_timeout_seconds` (5). 25 s leaves room
# for both, and for the rest of the shutdown within the 30 s that container
# platforms allow by default (and the supervisor's `STOP_GRACE_SECONDS`).
SHUTDOWN_GRACE_SECONDS = 25.0
# What aiohttp still allows a request that outlived the grace before
# cancelling it.
CUT_OFF_SECONDS = 1.0


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
    # Heard from the start: a stop asked for while the app is being built
    # is a clean stop once it is built, not the signal's default death.
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in listening.stop_signals:
        loop.add_signal_handler(sig, stopped.set)
    app = await create_app(settings)
    runner = await start_http_server(app, settings, settings.host, settings.port,
                                     counter=listening.counter,
                                     reuse_port=listening.reuse_port,
                                     shutdown_timeout=CUT_OFF_SECONDS)
    for address in runner.addresses:
        host, port = address[0], address[1]
        if settings.worker_index is None:
            log.info("Segue is serving on http://%s:%d/ (web chat at /webchat/)", host, port)
        else:
            log.info("worker %d (pid %d) is serving on http://%s:%d/",
                     settings.worker_index, os.getpid(), host, port)
    if listening.stop_when_readable is not None:
        loop.add_reader(listening.stop_when_readable, _orphaned, stopped)
    listening.ready()
    try:
        await stopped.wait()
    finally:
        if listening.stop_when_readable is not None:
            loop.remove_reader(listening.stop_when_readable)
        await shut_down(runner, SHUTDOWN_GRACE_SECONDS)


async def shut_down(runner: GuardedRunner, grace_seconds: float) -> None:
    """The phases of a clean stop (see the module), each logged."""
    await runner.stop_listening()
    log.info("stopping: no new connections")
    web_chat_turns, (requests, cut) = await asyncio.gather(
        drain(runner.app, grace_seconds), runner.requests_finished(grace_seconds))
    log.info("%d turns in flight finished", web_chat_turns + requests)
    if cut:
        log.warning("%d requests still running after %.0f s are cut off", cut, grace_seconds)
    await close_consoles(runner.app)
    # Stops the connectors, the sweeper, the bus and the store (`build_app`).
    await runner.cleanup()
    log.info("stopped")


def _orphaned(stopped: asyncio.Event) -> None:
    if not stopped.is_set():
        log.error("the supervisor is gone: stopping this worker")
        stopped.set()
