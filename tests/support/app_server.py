"""Serve Segue's real aiohttp app on a loopback port inside a test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.assembly.app import Segue, build_app, create_segue
from bot.assembly.http_server import start_http_server
from bot.core.policy import Policy
from bot.core.ports import ContextStore
from bot.core.settings import Settings
from context_store import RedisContextStore
from tests.support.policies import EchoMenuPolicy

# The web chat's server-only secret in tests that do not name their own.
WEB_SECRET = "web-chat-tests-server-secret"


@dataclass(slots=True)
class RunningApp:
    segue: Segue
    base_url: str

    @property
    def ws_url(self) -> str:
        return f"{self.base_url}/webchat/ws"


@asynccontextmanager
async def serve_segue(
    settings: Settings, *, store: ContextStore | None = None, policy: Policy | None = None,
    port: int = 0, configure: Callable[[Segue], None] | None = None,
) -> AsyncIterator[RunningApp]:
    """Segue assembled from `settings` (the shipped demo bot unless `policy`),
    served on 127.0.0.1:`port` (0: a free one); `configure` may adjust the
    assembled parts before the server starts."""
    segue = await create_segue(settings, store=store, policy=policy)
    if configure is not None:
        configure(segue)
    # The server `segue run` starts, with its limits on slow clients.
    runner = await start_http_server(build_app(segue), settings, "127.0.0.1", port)
    host, bound = runner.addresses[0][:2]
    try:
        yield RunningApp(segue, f"http://{host}:{bound}")
    finally:
        await runner.cleanup()


def web_settings(redis_url: str, **overrides: Any) -> Settings:
    """Settings for a web chat on Redis; `overrides` change or add any."""
    values: dict[str, Any] = {"redis_url": redis_url, "webchat_secret": WEB_SECRET}
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serve_echo(
    redis_url: str, *, policy: Policy | None = None, **overrides: Any
) -> AsyncIterator[RunningApp]:
    """Segue on Redis with the echo menu policy (or `policy`), for tests that
    are about channels and limits, not dialogs."""
    async with serve_segue(web_settings(redis_url, **overrides),
                           store=RedisContextStore.from_url(redis_url),  # closed by the app
                           policy=policy or EchoMenuPolicy()) as app:
        yield app
