"""Assembles Segue: store, engine, connectors, and the one aiohttp app."""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.engine import Engine, EngineOptions
from bot.errors import StoreUnavailable
from bot.linking import LinkHook, LinkOptions, LinkService
from bot.policy import Policy
from bot.rate_limits import RateLimiter
from bot.settings import Settings
from connectors.base import Connector
from connectors.webchat import WebChatConnector, WebChatOptions
from context_store import ContextStore, MemoryContextStore, RedisContextStore, StoreLimits

if TYPE_CHECKING:
    from bot.handoff_setup import Handoff

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Segue:
    """The running parts of one worker process."""

    settings: Settings
    store: ContextStore
    engine: Engine
    connectors: dict[str, Connector] = field(default_factory=dict)
    handoff: Handoff | None = None


SEGUE_KEY: web.AppKey[Segue] = web.AppKey("segue")


def store_limits(settings: Settings) -> StoreLimits:
    return StoreLimits(
        history_max=settings.history_max,
        retention_seconds=settings.retention_days * 86400,
        dedup_ttl_seconds=settings.dedup_ttl_seconds,
    )


async def open_store(settings: Settings) -> ContextStore:
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


def build_policy(settings: Settings) -> Policy:
    from dialogs.runtime import build_dialog_policy

    return build_dialog_policy(settings)


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


def build_connectors(
    settings: Settings, engine: Engine, store: ContextStore, *, web_secret: str
) -> list[Connector]:
    options = WebChatOptions(
        secret=web_secret,
        identity_secret=(settings.webchat_identity_secret.get_secret_value()
                         if settings.webchat_identity_secret is not None else None),
        trusted_proxy_header=settings.trusted_proxy_header,
        rate_limits=limits_on(settings),
        allowed_origins=allowed_origins(settings),
        max_text_length=settings.max_text_length,
        history_replay=settings.history_replay,
        session_max_age_seconds=settings.session_max_age_days * 86400,
    )
    connectors: list[Connector] = [WebChatConnector(engine=engine, store=store, options=options)]
    if settings.telegram_token is not None:
        from connectors.telegram import build_telegram_connector

        connectors.append(build_telegram_connector(settings=settings, engine=engine, store=store))
    if settings.slack_bot_token is not None:
        from connectors.slack import build_slack_connector

        connectors.append(build_slack_connector(settings=settings, engine=engine, store=store))
    return connectors


async def create_segue(
    settings: Settings, store: ContextStore | None = None, policy: Policy | None = None
) -> Segue:
    """Every part of a worker; `store` and `policy` default to the configured ones."""
    store = store if store is not None else await open_store(settings)
    engine = Engine(
        store=store,
        policy=policy if policy is not None else build_policy(settings),
        options=EngineOptions(
            lock_ttl_seconds=settings.lock_ttl_seconds,
            lock_wait_seconds=settings.lock_wait_seconds,
        ),
        limiter=RateLimiter(store, enabled=limits_on(settings)),
    )
    segue = Segue(settings=settings, store=store, engine=engine)
    secret = webchat_secret(settings)
    connectors = build_connectors(settings, engine, store, web_secret=secret)
    links = LinkService(engine=engine, store=store, options=LinkOptions(
        secret=secret,
        public_url=settings.public_url,
        telegram_bot_username=settings.telegram_bot_username,
    ))
    engine.hooks.append(LinkHook(links))
    for connector in connectors:
        segue.connectors[connector.channel] = connector
        engine.add_sender(connector.channel, connector)
    web_chat = segue.connectors["web"]
    assert isinstance(web_chat, WebChatConnector)
    web_chat.links = links
    links.merge_listeners.append(web_chat.on_merge)
    from bot.handoff_setup import build_handoff

    # After the link hook: link commands keep working while a person holds the chat.
    segue.handoff = await build_handoff(settings, engine, web_chat)
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
    if segue.handoff is not None:
        segue.handoff.mount(app)
        app.on_startup.append(_start_handoff)
        # Before `_stop`, which closes the store's client that the handoff shares.
        app.on_cleanup.append(_stop_handoff)
    app.on_startup.append(_start_connectors)
    app.on_cleanup.append(_stop)
    return app


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


async def _stop(app: web.Application) -> None:
    segue = app[SEGUE_KEY]
    for connector in segue.connectors.values():
        await connector.stop()
    await segue.store.close()


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
    return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})
