"""The baseline of the web chat benchmark: a bare aiohttp WebSocket server
that does one Redis GET and one SET per message and answers one frame.

Usage: python bench/baseline_server.py PORT REDIS_URL
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.assembly.cli import event_loop_factory  # noqa: E402


def make_app(redis_url: str) -> web.Application:
    client = aioredis.from_url(redis_url, decode_responses=True)

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            frame = json.loads(msg.data)
            key = f"baseline:{id(ws)}"
            count = int(await client.get(key) or 0) + 1
            await client.set(key, count)
            await ws.send_str(json.dumps({"type": "message", "text": frame.get("text", ""),
                                          "reply_to": frame.get("id")}))
        return ws

    app = web.Application()
    app.router.add_get("/webchat/ws", websocket)
    return app


async def serve(port: int, redis_url: str) -> None:
    runner = web.AppRunner(make_app(redis_url), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until terminated


if __name__ == "__main__":
    # The same event loop as `segue run`, so the ratio compares the servers alone.
    with asyncio.Runner(loop_factory=event_loop_factory()) as loop_runner:
        loop_runner.run(serve(int(sys.argv[1]), sys.argv[2]))
