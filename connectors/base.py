"""The `Connector` interface every channel implements."""

from __future__ import annotations

from typing import Protocol

from aiohttp import web

from bot.core.model import Address, Outbound


class Connector(Protocol):
    """A channel: the inbound half parses native input into `Inbound` and
    hands it to the engine; the outbound half renders `Outbound` natively.

    `mount` adds the connector's routes to Segue's one aiohttp app; `start`
    and `stop` run background work (polling, sockets) for the app's lifetime.
    """

    channel: str

    def mount(self, app: web.Application) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, address: Address, outbound: Outbound) -> None:
        """Deliver one reply; raise `ConnectorError` if the channel refuses it."""
