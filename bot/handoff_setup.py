"""Assembles the handoff parts of one worker: agent store, bus, auth, desk,
console hub and API, on top of the engine and the web chat connector."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiohttp import web

from bot.agent_api import AgentApi
from bot.agent_hub import AgentHub
from bot.agents import AgentAuth, AuthOptions, parse_agent_list
from bot.bus import Bus, LocalBus, RedisBus, WebPresence, new_worker_id
from bot.engine import Engine
from bot.handoff import install
from bot.handoff_desk import DeskOptions, HandoffDesk
from bot.linking import LinkHook, LinkService
from bot.settings import Settings
from connectors.webchat import WebChatConnector
from context_store import ContextStore, RedisContextStore
from context_store.agents import AgentStore, MemoryAgentStore
from context_store.agents_redis import RedisAgentStore

log = logging.getLogger(__name__)


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

    def mount(self, app: web.Application) -> None:
        self.api.mount(app)

    async def start(self) -> None:
        await self.bus.start()
        await self.hub.start()

    async def stop(self) -> None:
        await self.hub.stop()
        await self.bus.stop()


def agent_store_for(store: ContextStore) -> tuple[AgentStore, Bus]:
    """Agents live where conversations live: Redis shared by every worker, or
    this process's memory for the embedded store."""
    if isinstance(store, RedisContextStore):
        prefix = store.keys.prefix
        return RedisAgentStore(store.client, prefix=prefix), RedisBus(store.client, prefix=prefix)
    return MemoryAgentStore(), LocalBus()


def link_services(engine: Engine, web_chat: WebChatConnector) -> list[LinkService]:
    """Where customers are merged: in turns (the link hook) and outside them
    (the web chat's resume links and signed-in visitors)."""
    found = [hook.service for hook in engine.hooks if isinstance(hook, LinkHook)]
    if web_chat.links is not None:
        found.append(web_chat.links)
    return list({id(links): links for links in found}.values())


def auth_options(settings: Settings) -> AuthOptions:
    # SEGUE_AGENT_LOGIN_MAX_FAILURES: attempts of one (username, client
    # address) pair before each further one must wait a growing delay.
    return AuthOptions(
        session_seconds=settings.agent_session_hours * 3600,
        failures_before_delay=settings.agent_login_max_failures,
        max_failures_per_address=settings.agent_login_max_failures_per_address,
        window_seconds=settings.agent_login_window_seconds,
    )


async def build_handoff(settings: Settings, engine: Engine,
                        web_chat: WebChatConnector) -> Handoff:
    worker = new_worker_id()
    agents, bus = agent_store_for(engine.store)
    web_chat.use_workers(bus, WebPresence(agents, worker=worker))
    auth = AgentAuth(agents, options=auth_options(settings))
    desk = HandoffDesk(engine=engine, agents=agents, bus=bus, web_reachable=web_chat.is_reachable,
                       options=DeskOptions(
                           business_hours=settings.business_hours,
                           max_text_length=settings.max_text_length,
                           history_max=settings.history_max,
                           lock_ttl_seconds=settings.lock_ttl_seconds,
                           lock_wait_seconds=settings.lock_wait_seconds,
                       ))
    install(engine, desk)
    for links in link_services(engine, web_chat):
        links.merge_listeners.append(desk.follow_merge)
    hub = AgentHub(auth=auth, agents=agents, bus=bus, worker=worker)
    if settings.agents is not None:
        for name, password, role in parse_agent_list(settings.agents.get_secret_value()):
            await auth.add(name, password, role=role)
        log.info("console accounts from SEGUE_AGENTS are ready")
    return Handoff(worker=worker, agents=agents, bus=bus, auth=auth, desk=desk, hub=hub,
                   api=AgentApi(auth=auth, desk=desk, hub=hub,
                                trusted_proxy_header=settings.trusted_proxy_header,
                                cookie_secure=settings.cookie_secure))
