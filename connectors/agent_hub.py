"""The agent consoles connected to this worker: live events and presence.

Every worker receives every handoff event from the bus and passes it to its
own consoles, each seeing only what its agent may act on. Presence (who has a
console open) is refreshed while sockets are open and runs out when a worker
dies, so "no agent online" is told to customers only when it is true.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from bot.core import metrics
from bot.core.bus import Bus
from bot.handoff.accounts import AgentAuth, AgentError
from bot.handoff.desk import AGENTS_TOPIC
from bot.handoff.ports import AgentAccount, AgentPresenceStore

log = logging.getLogger(__name__)


# Events for the workers (automatic assignment), not the consoles.
WORKERS_ONLY = frozenset({"online"})


@dataclass(slots=True, eq=False)
class _Console:
    ws: web.WebSocketResponse
    agent: AgentAccount
    token: str


# What is said or typed in a conversation: for its holder (everyone's while
# it waits) and the admins.
HOLDERS_EVENTS = frozenset({"message", "typing"})


def visible(event: dict[str, Any], agent: AgentAccount) -> bool:
    """What is said or typed in a conversation held by someone else is not
    this agent's business."""
    if agent.role == "admin" or event.get("type") not in HOLDERS_EVENTS:
        return True
    holder = event.get("agent")
    return holder is None or holder == agent.username


class AgentHub:
    """Open console sockets of this worker."""

    def __init__(self, *, auth: AgentAuth, agents: AgentPresenceStore, bus: Bus, worker: str,
                 presence_ttl_seconds: float = 60.0) -> None:
        self.auth = auth
        self.agents = agents
        self.worker = worker
        self.presence_ttl_seconds = presence_ttl_seconds
        self._consoles: set[_Console] = set()
        self._heartbeat: asyncio.Task[None] | None = None
        self.bus = bus
        bus.subscribe(AGENTS_TOPIC, self.on_event)

    async def start(self) -> None:
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._refresh())

    async def stop(self) -> None:
        """Close every console with 1012; again, a no-op."""
        running = self._heartbeat is not None
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None
        consoles, self._consoles = list(self._consoles), set()
        for console in consoles:
            await self._quietly(self.agents.drop_agent(console.agent.username, self.worker))
        # 1012, service restart: the console reconnects, to another worker
        # or to the next process. Closed together: each waits for its
        # console's answer to the close.
        await asyncio.gather(*(console.ws.close(code=1012, message=b"server restarting")
                               for console in consoles))
        if running or consoles:
            log.info("closed %d agent consoles (1012)", len(consoles))

    async def on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") in WORKERS_ONLY:
            return
        for console in list(self._consoles):
            if not console.ws.closed and visible(event, console.agent):
                try:
                    await console.ws.send_json(event)
                except ConnectionError:
                    continue  # closing; its handler removes it

    async def serve(self, request: web.Request, agent: AgentAccount,
                    token: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=4096)
        await ws.prepare(request)
        console = _Console(ws, agent, token)
        self._consoles.add(console)
        # Counted here, not from `_consoles`: `stop` empties that set at once,
        # while each console is uncounted as its own handler ends.
        metrics.AGENT_CONSOLES.inc()
        try:
            await self.agents.touch_agent(agent.username, self.worker, self.presence_ttl_seconds)
            await ws.send_json({"type": "hello", "agent": {
                "username": agent.username, "name": agent.display_name, "role": agent.role}})
            # An agent now online may be given waiting conversations.
            await self.bus.publish(AGENTS_TOPIC, {"type": "online", "agent": agent.username})
            async for _ in ws:
                pass  # the console only listens; its actions go through the HTTP API
        finally:
            metrics.AGENT_CONSOLES.dec()
            self._consoles.discard(console)
            if not any(c.agent.username == agent.username for c in self._consoles):
                await self._quietly(self.agents.drop_agent(agent.username, self.worker))
        return ws

    async def end_session(self, token: str) -> None:
        """Logout: that session's consoles close too."""
        for console in [c for c in self._consoles if c.token == token]:
            await console.ws.close(code=4401, message=b"logged out")

    async def _refresh(self) -> None:
        while True:
            await asyncio.sleep(self.presence_ttl_seconds / 3)
            for console in list(self._consoles):
                try:
                    await self.auth.authenticate(console.token)
                except AgentError:
                    await console.ws.close(code=4401, message=b"session ended")
                    continue
                except Exception as exc:
                    log.warning("could not check a console session: %s", exc)
            names = {c.agent.username for c in self._consoles if not c.ws.closed}
            for name in names:
                await self._quietly(
                    self.agents.touch_agent(name, self.worker, self.presence_ttl_seconds))

    @staticmethod
    async def _quietly(awaitable: Any) -> None:
        try:
            await awaitable
        except Exception as exc:  # presence runs out by itself; never fail a close on it
            log.warning("agent presence not updated: %s", exc)
