"""The handoff parts of one worker: the desk, and the agents' console (its
accounts, live hub and HTTP API) on top of it."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bot.assembly.events_out import build_events_out
from bot.core.bus import Bus
from bot.core.delivery import Senders
from bot.core.events import EventSink
from bot.core.locked_state import CustomerLocks
from bot.core.ports import ConversationReader
from bot.core.rate_limits import RateLimiter
from bot.core.settings import Settings
from bot.handoff.accounts import AgentAuth, AuthOptions, parse_agent_list
from bot.handoff.assignment import Assigner
from bot.handoff.desk import DeskOptions, HandoffDesk
from bot.handoff.ports import AgentStore
from connectors.agent_api import AgentApi
from connectors.agent_hub import AgentHub

log = logging.getLogger(__name__)


class HandoffBackend(Protocol):
    """A store that also keeps the agents' side and carries events between
    workers: Redis shared by every worker, or this process's memory."""

    def agent_store(self) -> AgentStore: ...

    def bus(self) -> Bus: ...


@dataclass(slots=True)
class Handoff:
    """The running handoff parts of one worker."""

    worker: str
    agents: AgentStore
    bus: Bus
    auth: AgentAuth
    desk: HandoffDesk
    hub: AgentHub
    api: AgentApi
    assigner: Assigner

    def mount(self, app: web.Application) -> None:
        self.api.mount(app)

    async def start(self) -> None:
        await self.bus.start()
        await self.hub.start()
        await self.assigner.start()

    async def stop(self) -> None:
        await self.assigner.stop()
        await self.hub.stop()
        await self.bus.stop()


def auth_options(settings: Settings) -> AuthOptions:
    # SEGUE_AGENT_LOGIN_MAX_FAILURES: attempts of one (username, client
    # address) pair before each further one must wait a growing delay.
    return AuthOptions(
        session_seconds=settings.agent_session_hours * 3600,
        failures_before_delay=settings.agent_login_max_failures,
        max_failures_per_address=settings.agent_login_max_failures_per_address,
        window_seconds=settings.agent_login_window_seconds,
    )


def build_desk(settings: Settings, *, store: ConversationReader, locks: CustomerLocks,
               senders: Senders, limiter: RateLimiter, agents: AgentStore,
               bus: Bus, events: EventSink | None = None) -> HandoffDesk:
    """The desk; without `events`, one that only queues them (if an events
    URL is set) for a running Segue to send: a command's desk."""
    if events is None:
        events = build_events_out(settings, store, send=False).sink
    return HandoffDesk(store=store, locks=locks, senders=senders, limiter=limiter,
                       agents=agents, bus=bus, events=events, options=DeskOptions(
                           business_hours=settings.business_hours,
                           max_text_length=settings.max_text_length,
                           history_max=settings.history_max,
                           queue_alert_seconds=settings.queue_alert_seconds,
                           agent_capacity=settings.agent_capacity,
                       ))


async def build_handoff(settings: Settings, *, worker: str, agents: AgentStore, bus: Bus,
                        desk: HandoffDesk) -> Handoff:
    """The console's parts around a desk; SEGUE_AGENTS accounts are created."""
    auth = AgentAuth(agents, options=auth_options(settings))
    hub = AgentHub(auth=auth, agents=agents, bus=bus, worker=worker)
    if settings.agents is not None:
        for name, password, role in parse_agent_list(settings.agents.get_secret_value()):
            await auth.add(name, password, role=role)
        log.info("console accounts from SEGUE_AGENTS are ready")
    return Handoff(worker=worker, agents=agents, bus=bus, auth=auth, desk=desk, hub=hub,
                   api=AgentApi(auth=auth, desk=desk, hub=hub,
                                trusted_proxy_header=settings.trusted_proxy_header,
                                cookie_secure=settings.cookie_secure),
                   assigner=Assigner(desk, agents, bus, worker))
