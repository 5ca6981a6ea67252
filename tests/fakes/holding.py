"""What the fakes share: holding a request the way a slow platform does."""

from __future__ import annotations

import asyncio

from aiohttp import web


async def hung_up_within(request: web.Request, seconds: float) -> bool:
    """Hold `request` up to `seconds`; whether its client hung up meanwhile.
    aiohttp does not tell a handler that its client left: the transport is
    looked at every 20 ms."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        if request.transport is None or request.transport.is_closing():
            return True
        await asyncio.sleep(0.02)
    return request.transport is None or request.transport.is_closing()
