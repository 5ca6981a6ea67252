"""Which workers hold a web chat session's sockets, so a message for a
session with no socket here can be routed to the worker that has one."""

from __future__ import annotations

from bot.core.ports import WebPresenceStore


class WebPresence:
    """Where web chat sockets are: which workers hold a session's sockets.

    Each worker refreshes its sessions every `ttl_seconds / 3`; the entries of
    a worker that died run out after `ttl_seconds`.
    """

    def __init__(self, store: WebPresenceStore, *, worker: str, ttl_seconds: float = 60.0) -> None:
        self.store = store
        self.worker = worker
        self.ttl_seconds = ttl_seconds

    async def opened(self, sessions: list[str]) -> None:
        await self.store.touch_web(sessions, self.worker, self.ttl_seconds)

    async def closed(self, session: str) -> None:
        await self.store.drop_web(session, self.worker)

    async def elsewhere(self, session: str) -> bool:
        """Whether another worker holds a socket of `session`."""
        return bool(await self.store.web_workers(session) - {self.worker})
