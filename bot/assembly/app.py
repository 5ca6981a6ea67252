"""Assembles Segue: store, engine, connectors, and the one aiohttp app."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from bot.assembly.events_out import EventsOut, build_events_out
from bot.assembly.gauges import GaugeRefresher
from bot.assembly.handoff import Handoff, HandoffBackend, build_desk, build_handoff
from bot.assembly.outreach import build_public_api
from bot.core import metrics
from bot.core.bus import new_worker_id
from bot.core.delivery import Senders
from bot.core.direct_answers import DirectAnswers
from bot.core.engine import Engine, EngineOptions
from bot.core.errors import StoreUnavailable
from bot.core.events import NO_EVENTS, EventSink
from bot.core.identities import Customers
from bot.core.locked_state import CustomerLocks, LockOptions
from bot.core.outbox import OutboxSweeper
from bot.core.policy import Policy
from bot.core.ports import ContextStore, StoreLimits
from bot.core.rate_limits import RateLimiter
from bot.core.settings import Settings
from bot.handoff.hook import HandoffHook, HandoffPolicy
from bot.handoff.ports import AgentStore
from bot.linking.hook import LinkHook
from bot.linking.service import LinkOptions, LinkService
from bot.outreach.ports import ApiKeyStore
from connectors.base import Connector
from connectors.public_api import PublicApi
from connectors.slack import build_slack_connector
from connectors.telegram import build_telegram_connector
from connectors.webchat import WebChatConnector, WebChatOptions
from connectors.webchat_frames import CHANNEL as WEB_CHANNEL
from connectors.webchat_presence import WebPresence
from context_store import MemoryContextStore, RedisContextStore
from dialogs.build import build_dialog_policy

log = logging.getLogger(__name__)


class SegueAgentStore(AgentStore, ApiKeyStore, Protocol):
    """The agents' side of a store, and the public API's keys beside it."""


class SegueStore(ContextStore, HandoffBackend, Protocol):
    """A store Segue runs on: conversations, and the agents' side beside them."""

    def agent_store(self) -> SegueAgentStore: ...


@dataclass(slots=True)
class Segue:
    """The running parts of one worker process."""

    settings: Settings
    store: SegueStore
    engine: Engine
    connectors: dict[str, Connector] = field(default_factory=dict)
    handoff: Handoff | None = None
    # Where every part reports what happened (`segue.events.emit(...)`).
    events: EventSink = NO_EVENTS
    events_out: EventsOut = field(default_factory=EventsOut)
    public_api: PublicApi | None = None


SEGUE_KEY: web.AppKey[Segue] = web.AppKey("segue")
SWEEPER_KEY: web.AppKey[OutboxSweeper] = web.AppKey("outbox-sweeper")
GAUGES_KEY: web.AppKey[GaugeRefresher] = web.AppKey("gauge-refresher")


def store_limits(settings: Settings) -> StoreLimits:
    return StoreLimits(
        history_max=settings.history_max,
        retention_seconds=settings.retention_days * 86400,
        dedup_ttl_seconds=settings.dedup_ttl_seconds,
    )


async def open_store(settings: Settings) -> SegueStore:
    """The configured store. A configured Redis that does not answer is an
    error: silently falling back to memory would lose conversations."""
    limits = store_limits(settings)
    if settings.redis_url is None:
        log.warning("no SEGUE_REDIS_URL: using the in-memory store; data is lost on restart")
        return MemoryContextStore(limits=limits)
    store = RedisContextStore.from_url(settings.redis_url.get_secret_value(), limits=limits)
    try:
        await store.ping()
    except StoreUnavailable:
        await store.close()
        raise
    log.info("using the Redis store")
    return store


def webchat_secret(settings: Settings) -> str:
    if settings.webchat_secret is not None:
        return settings.webchat_secret.get_secret_value()
    log.warning(
        "SEGUE_WEBCHAT_SECRET is not set: using a random secret, so web chat sessions "
        "end when this process stops and other workers cannot verify them"
    )
    return secrets.token_urlsafe(32)


def limits_on(settings: Settings) -> bool:
    return settings.rate_limits == "on"


def allowed_origins(settings: Settings) -> frozenset[str]:
    if not settings.webchat_allowed_origins:
        log.warning("SEGUE_WEBCHAT_ALLOWED_ORIGINS is not set: any site may embed the web chat")
        return frozenset()
    return frozenset(o.strip().rstrip("/") for o in settings.webchat_allowed_origins.split(",")
                     if o.strip())


def web_chat_options(settings: Settings, web_secret: str) -> WebChatOptions:
    return WebChatOptions(
        secret=web_secret,
        identity_secret=(settings.webchat_identity_secret.get_secret_value()
                         if settings.webchat_identity_secret is not None else None),
        trusted_proxy_header=settings.trusted_proxy_header,
        rate_limits=limits_on(settings),
        allowed_origins=allowed_origins(settings),
        max_text_length=settings.max_text_length,
        history_replay=settings.history_replay,
        session_max_age_seconds=settings.session_max_age_days * 86400,
        workers=settings.workers,
    )


def link_options(settings: Settings, web_secret: str) -> LinkOptions:
    return LinkOptions(
        secret=web_secret,
        public_url=settings.public_url,
        telegram_bot_username=settings.telegram_bot_username,
        lock_ttl_seconds=settings.lock_ttl_seconds,
    )


async def create_segue(
    settings: Settings, store: SegueStore | None = None, policy: Policy | None = None
) -> Segue:
    """Every part of a worker, each built once, in dependency order; `store`
    and `policy` default to the configured ones.

    Replies flow back through `senders`, which the connectors join as they
    are built: they need the engine, and the engine delivers through them.
    """
    store = store if store is not None else await open_store(settings)
    limiter = RateLimiter(store, enabled=limits_on(settings))
    customers = Customers(store)
    senders = Senders()
    engine_options = EngineOptions(lock_ttl_seconds=settings.lock_ttl_seconds,
                                   lock_wait_seconds=settings.lock_wait_seconds)
    locks = CustomerLocks(store, LockOptions(ttl_seconds=engine_options.lock_ttl_seconds,
                                             wait_seconds=engine_options.lock_wait_seconds))
    worker = new_worker_id()
    agents, bus = store.agent_store(), store.bus()
    events_out = build_events_out(settings, store)
    events = events_out.sink
    desk = build_desk(settings, store=store, locks=locks, senders=senders, limiter=limiter,
                      agents=agents, bus=bus, events=events)
    web_secret = webchat_secret(settings)
    links = LinkService(store=store, customers=customers, senders=senders, limiter=limiter,
                        options=link_options(settings, web_secret),
                        on_merge=[desk.follow_merge], events=events)
    dialog_policy = policy if policy is not None else build_dialog_policy(settings)
    engine = Engine(
        store=store,
        policy=HandoffPolicy(dialog_policy, desk),
        # Linking first: link commands keep working while a person holds the chat.
        hooks=[LinkHook(links), HandoffHook(desk)],
        senders=senders,
        options=engine_options,
        customers=customers,
        locks=locks,
        # One outbox per worker, the engine's and the desk's.
        outbox=desk.outbox,
        events=events,
    )
    connectors: list[Connector] = [WebChatConnector(
        engine=engine, store=store, options=web_chat_options(settings, web_secret),
        limiter=limiter, links=links, bus=bus, presence=WebPresence(agents, worker=worker))]
    # Fixed answers outside a turn ("text only", "too long"), once per message.
    answers = DirectAnswers(store, senders, ttl_seconds=store.limits.dedup_ttl_seconds)
    if settings.telegram_token is not None:
        connectors.append(build_telegram_connector(settings=settings, engine=engine, store=store,
                                                   answers=answers))
    if settings.slack_bot_token is not None:
        connectors.append(build_slack_connector(settings=settings, engine=engine, store=store,
                                                answers=answers))
    metrics.declare_series(c.channel for c in connectors)
    segue = Segue(settings=settings, store=store, engine=engine, events=events,
                  events_out=events_out)
    for connector in connectors:
        senders.register(connector.channel, connector)
        segue.connectors[connector.channel] = connector
    segue.handoff = await build_handoff(settings, worker=worker, agents=agents, bus=bus,
                                        desk=desk)
    segue.public_api = build_public_api(
        settings, store=store, keys=agents, locks=locks, senders=senders, outbox=desk.outbox,
        limiter=limiter, events=events, policy=dialog_policy, desk=desk)
    return segue


def build_app(segue: Segue) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[SEGUE_KEY] = segue
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_endpoint)
    app.router.add_get("/", index)
    for connector in segue.connectors.values():
        connector.mount(app)
    # Replies a dead worker left: every worker looks, from when its
    # connectors run until before anything it sends through stops.
    app[SWEEPER_KEY] = OutboxSweeper(segue.engine.outbox)
    if segue.handoff is not None:
        segue.handoff.mount(app)
        app.on_startup.append(_start_handoff)
    if segue.public_api is not None:
        segue.public_api.mount(app)
    app.on_startup.append(_start_connectors)
    app.on_startup.append(_start_sweeper)
    app.on_startup.append(_start_events)
    app[GAUGES_KEY] = GaugeRefresher(
        store=segue.store, desk=segue.handoff.desk if segue.handoff is not None else None)
    app.on_startup.append(_start_gauges)
    # Before `_close_store`: the refresher reads the store.
    app.on_cleanup.insert(0, _stop_gauges)
    # After `drain` (web chat sockets and consoles closed, requests in
    # flight answered): the sweeper first, as it sends through the
    # connectors' clients; then the connectors (Telegram polling, Slack's
    # Socket Mode and inbox finish what they hold, then close their
    # clients); then the bus those turns publish on; the store last.
    app.on_cleanup.append(_stop_sweeper)
    app.on_cleanup.append(_stop_connectors)
    app.on_cleanup.append(_stop_handoff)
    # Last before the store: what the last turns emitted may still go out.
    app.on_cleanup.append(_stop_events)
    app.on_cleanup.append(_close_store)
    return app


async def drain(app: web.Application, grace_seconds: float) -> int:
    """Web chat turns in flight finish (up to `grace_seconds`) and every web
    chat socket closes with 1012; how many turns finished so. Called once
    nothing listens, with the HTTP requests in flight (`GuardedRunner`)."""
    web_chat = app[SEGUE_KEY].connectors.get(WEB_CHANNEL)
    if isinstance(web_chat, WebChatConnector):
        return await web_chat.sockets.stop(grace_seconds)
    return 0


async def close_consoles(app: web.Application) -> None:
    """Agent consoles close with 1012, after the agents' requests in flight
    (whose events they show) are answered."""
    handoff = app[SEGUE_KEY].handoff
    if handoff is not None:
        await handoff.hub.stop()


async def _start_sweeper(app: web.Application) -> None:
    await app[SWEEPER_KEY].start()


async def _stop_sweeper(app: web.Application) -> None:
    await app[SWEEPER_KEY].stop()
    log.info("outbox sweeper stopped")


async def _start_events(app: web.Application) -> None:
    await app[SEGUE_KEY].events_out.start()


async def _stop_events(app: web.Application) -> None:
    await app[SEGUE_KEY].events_out.stop()


async def _start_gauges(app: web.Application) -> None:
    await app[GAUGES_KEY].start()


async def _stop_gauges(app: web.Application) -> None:
    await app[GAUGES_KEY].stop()


async def _start_handoff(app: web.Application) -> None:
    handoff = app[SEGUE_KEY].handoff
    if handoff is not None:
        await handoff.start()


async def _stop_handoff(app: web.Application) -> None:
    handoff = app[SEGUE_KEY].handoff
    if handoff is not None:
        await handoff.stop()


async def create_app(settings: Settings) -> web.Application:
    return build_app(await create_segue(settings))


async def _start_connectors(app: web.Application) -> None:
    for connector in app[SEGUE_KEY].connectors.values():
        await connector.start()


async def _stop_connectors(app: web.Application) -> None:
    for connector in app[SEGUE_KEY].connectors.values():
        await connector.stop()


async def _close_store(app: web.Application) -> None:
    await app[SEGUE_KEY].store.close()
    log.info("store closed")


async def index(request: web.Request) -> web.Response:
    raise web.HTTPFound("/webchat/")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    try:
        await request.app[SEGUE_KEY].store.ping()
    except StoreUnavailable:
        return web.json_response({"status": "unavailable", "store": "unreachable"}, status=503)
    return web.json_response({"status": "ready"})


async def metrics_endpoint(request: web.Request) -> web.Response:
    """This process's metrics; with `segue run --workers N`, every worker's
    together, read from the files they write in PROMETHEUS_MULTIPROC_DIR."""
    shared = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if shared:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=shared)  # type: ignore[no-untyped-call]
        # Reads a file per worker and metric kind: off the event loop.
        body = await asyncio.to_thread(generate_latest, registry)
    else:
        body = generate_latest()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
