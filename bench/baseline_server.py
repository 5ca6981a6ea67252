"""The baseline of the web chat benchmark: a bare aiohttp WebSocket server
that does one Redis GET and one SET per message and answers one frame.

Usage: python bench/baseline_server.py PORT REDIS_URL
"""

from __future__ import annotations

import json
import sys

import redis.asyncio as aioredis
from aiohttp import WSMsgType, web


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


if __name__ == "__main__":
    port, url = int(sys.argv[1]), sys.argv[2]
    web.run_app(make_app(url), host="127.0.0.1", port=port, print=None, access_log=None)
