"""Web chat sockets across workers: the sockets open on this worker, by
session (one session may be open in several tabs); which other workers hold
a session's sockets (`WebPresence`); and frames for a session with no socket
here, published on the bus for the worker that has one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.core import metrics
from bot.core.bus import Bus
from connectors.webchat_frames import WebClient
from connectors.webchat_presence import WebPresence

log = logging.getLogger(__name__)

BUS_TOPIC = "webchat"
# Service restart (RFC 6455): the widget and the console reconnect soon, to
# another worker or to the next process.
SERVICE_RESTART = 1012


@dataclass(slots=True)
class OpenSockets:
    """Open sockets by web chat session (one session may be open in two tabs)."""

    by_session: dict[str, set[WebClient]] = field(default_factory=dict)

    def add(self, client: WebClient) -> None:
        assert client.session is not None
        clients = self.by_session.setdefault(client.session, set())
        if client not in clients:
            clients.add(client)
            metrics.WEBCHAT_SOCKETS.inc()

    def discard(self, client: WebClient) -> None:
        if client.session is None:
            return
        clients = self.by_session.get(client.session)
        if clients is not None and client in clients:
            clients.discard(client)
            metrics.WEBCHAT_SOCKETS.dec()
            if not clients:
                del self.by_session[client.session]

    def get(self, session: str) -> set[WebClient]:
        return self.by_session.get(session, set())

    def ids(self) -> list[str]:
        return list(self.by_session)


class WebSockets:
    """This worker's web chat sockets, and the way to the others'.

    With a `bus`, frames for a session with no socket here go over it; with
    `presence`, this worker tells which sessions it holds (refreshed every
    `ttl_seconds / 3` while started) and asks which others do.
    """

    def __init__(self, *, bus: Bus | None = None, presence: WebPresence | None = None) -> None:
        self.open = OpenSockets()
        self.bus = bus
        self.presence = presence
        if bus is not None:
            bus.subscribe(BUS_TOPIC, self._on_bus_frame)
        self._heartbeat: asyncio.Task[None] | None = None
        self._stopping = False
        # Every socket open here, hello said or not, and those handling a
        # frame (each with the event of its end).
        self._all: set[WebClient] = set()
        self._in_hand: dict[WebClient, asyncio.Event] = {}

    async def start(self) -> None:
        if self.presence is not None and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._refresh_presence(self.presence))

    async def stop(self, grace_seconds: float = 25.0) -> int:
        """Stop refreshing presence, close every socket with 1012 (service
        restart), then forget this worker's sessions. An idle socket closes
        at once; one handling a frame once its turn is saved and answered,
        up to `grace_seconds` (then it is cut). How many turns finished so."""
        if self._stopping:
            return 0
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        sessions = self.open.ids()
        busy = dict(self._in_hand)
        sockets = self._all | self._clients()
        # Each busy socket closes itself as its frame is done (`in_hand`).
        idle = asyncio.gather(*(_close(c) for c in sockets if c not in busy))
        if busy:
            ends = [asyncio.ensure_future(done.wait()) for done in busy.values()]
            _, late = await asyncio.wait(ends, timeout=grace_seconds)
            for end in late:
                end.cancel()
            if late:
                log.warning("%d web chat turns in flight cut off after %.0f s", len(late),
                            grace_seconds)
        await idle
        for client in sockets:
            await _close(client)
        if self.presence is not None:
            # After the turns in flight, which may deliver to these sessions;
            # the handlers that end now leave presence alone (`unregister`).
            for session in sessions:
                await _quietly(self.presence.closed(session))
        log.info("closed %d web chat sockets (%d)", len(sockets), SERVICE_RESTART)
        return sum(1 for done in busy.values() if done.is_set())

    def opened(self, client: WebClient) -> None:
        """A socket open here, whether or not it said hello yet."""
        self._all.add(client)

    async def in_hand(self, client: WebClient, handle: Callable[[], Awaitable[None]]) -> None:
        """Handle one frame of `client`'s. Once stopping, a frame that was
        not begun is left unanswered (not acknowledged: the widget sends it
        again once it reconnects), and a socket whose frame is done closes
        before it reads another."""
        if self._stopping:
            await _close(client)
            return
        done = self._in_hand[client] = asyncio.Event()
        try:
            await handle()
        finally:
            del self._in_hand[client]
            if self._stopping:
                await _close(client)
            done.set()

    def _clients(self) -> set[WebClient]:
        return {c for clients in self.open.by_session.values() for c in clients}

    def count(self, session: str) -> int:
        """How many sockets of `session` this worker holds."""
        return len(self.open.get(session))

    def is_connected(self, session: str) -> bool:
        """Whether this worker holds a socket of `session`."""
        return bool(self.open.get(session))

    async def is_reachable(self, session: str) -> bool:
        """Whether any worker holds a socket of `session`."""
        if self.is_connected(session):
            return True
        return self.presence is not None and await self.presence.elsewhere(session)

    async def send(self, session: str, frame: str, *, everywhere: bool = False) -> None:
        """`frame` to the sockets of `session` here; over the bus if there is
        none here, or always if `everywhere`."""
        delivered = await self._send_local(session, frame)
        if self.bus is not None and (not delivered or everywhere):
            origin = self.presence.worker if self.presence is not None else ""
            event = {"session": session, "frame": frame, "origin": origin}
            await self.bus.publish(BUS_TOPIC, event)

    async def register(self, client: WebClient) -> None:
        """A socket that has its session now."""
        assert client.session is not None
        if not self.open.get(client.session) and self.presence is not None:
            # Counted as open only once the store knows: a refused hello
            # leaves nothing behind and may be sent again.
            await self.presence.opened([client.session])
        self.open.add(client)

    async def unregister(self, client: WebClient) -> None:
        """A socket that closed."""
        self._all.discard(client)
        self.open.discard(client)
        session = client.session
        if (session is not None and not self.open.get(session)
                and self.presence is not None and not self._stopping):
            await _quietly(self.presence.closed(session))

    def follow_join(self, source: str, target: str) -> None:
        """Customer `source` was joined into `target`: its sockets here are
        now `target`'s, and show the joined history after their next turn."""
        for clients in self.open.by_session.values():
            for client in clients:
                if client.customer_id == source:
                    client.customer_id, client.joined = target, True

    async def _send_local(self, session: str, frame: str) -> bool:
        delivered = False
        for client in list(self.open.get(session)):
            if not client.ws.closed:
                await client.ws.send_str(frame)
                delivered = True
        return delivered

    async def _on_bus_frame(self, event: dict[str, Any]) -> None:
        session, frame = event.get("session"), event.get("frame")
        mine = self.presence is not None and event.get("origin") == self.presence.worker
        if isinstance(session, str) and isinstance(frame, str) and not mine:
            await self._send_local(session, frame)

    async def _refresh_presence(self, presence: WebPresence) -> None:
        while True:
            await asyncio.sleep(presence.ttl_seconds / 3)
            await _quietly(presence.opened(self.open.ids()))


async def _close(client: WebClient) -> None:
    """Close with 1012; a socket already closing is left to finish."""
    if not client.ws.closed:
        await client.ws.close(code=SERVICE_RESTART, message=b"server restarting")


async def _quietly(awaitable: Awaitable[None]) -> None:
    """Presence is refreshed periodically; one failed update only delays it."""
    try:
        await awaitable
    except Exception as exc:
        log.warning("web chat presence not updated: %s", exc)
