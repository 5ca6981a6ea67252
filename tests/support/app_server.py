"""Serve Segue's real aiohttp app on a loopback port inside a test."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from bot.assembly.app import Segue, build_app, create_segue
from bot.assembly.http_server import start_http_server
from bot.core.policy import Policy
from bot.core.ports import ContextStore
from bot.core.settings import Settings


@dataclass(slots=True)
class RunningApp:
    segue: Segue
    base_url: str

    @property
    def ws_url(self) -> str:
        return f"{self.base_url}/webchat/ws"


@asynccontextmanager
async def serve_segue(
    settings: Settings, *, store: ContextStore | None = None, policy: Policy | None = None
) -> AsyncIterator[RunningApp]:
    segue = await create_segue(settings, store=store, policy=policy)
    # The server `segue run` starts, with its limits on slow clients.
    runner = await start_http_server(build_app(segue), settings, "127.0.0.1", 0)
    host, port = runner.addresses[0][:2]
    try:
        yield RunningApp(segue, f"http://{host}:{port}")
    finally:
        await runner.cleanup()
