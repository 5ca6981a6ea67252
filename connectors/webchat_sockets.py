"""Web chat sockets across workers: the sockets open on this worker, by
session (one session may be open in several tabs); which other workers hold
a session's sockets (`WebPresence`); and frames for a session with no socket
here, published on the bus for the worker that has one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from bot.core.bus import Bus
from connectors.webchat_frames import WebClient
from connectors.webchat_presence import WebPresence

log = logging.getLogger(__name__)

BUS_TOPIC = "webchat"


@dataclass(slots=True)
class OpenSockets:
    """Open sockets by web chat session (one session may be open in two tabs)."""

    by_session: dict[str, set[WebClient]] = field(default_factory=dict)

    def add(self, client: WebClient) -> None:
        assert client.session is not None
        self.by_session.setdefault(client.session, set()).add(client)

    def discard(self, client: WebClient) -> None:
        if client.session is None:
            return
        clients = self.by_session.get(client.session)
        if clients is not None:
            clients.discard(client)
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

    async def start(self) -> None:
        if self.presence is not None and self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._refresh_presence(self.presence))

    async def stop(self) -> None:
        """Stop refreshing presence, forget this worker's sessions, and close
        every socket (1001)."""
        self._stopping = True
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        if self.presence is not None:
            # Before the sockets close: their handlers no longer touch the store.
            for session in self.open.ids():
                await _quietly(self.presence.closed(session))
        for clients in list(self.open.by_session.values()):
            for client in list(clients):
                await client.ws.close(code=1001, message=b"server shutting down")

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


async def _quietly(awaitable: Awaitable[None]) -> None:
    """Presence is refreshed periodically; one failed update only delays it."""
    try:
        await awaitable
    except Exception as exc:
        log.warning("web chat presence not updated: %s", exc)
