"""The baseline of the webhook benchmarks: a bare aiohttp server that takes a
platform's webhook request the way the platform's own library would, does one
Redis GET and one SET per request, and sends one reply to the platform's API.

telegram: checks the secret header, reads the body with aiogram's
`Update.model_validate`, then the GET and SET, then `sendMessage` to the Bot
API, and answers 200 after the reply, as Segue's webhook does.

slack: checks the signature with slack_sdk's `SignatureVerifier`, parses the
JSON, then the GET and SET, answers 200, and posts `chat.postMessage` after
the answer, as Segue replies after queueing the event.

Usage: python bench/webhook_baseline.py telegram|slack PORT REDIS_URL API_URL SECRET TOKEN
"""

from __future__ import annotations

import asyncio
import hmac
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
from aiogram.types import Update
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bot.assembly.cli import event_loop_factory  # noqa: E402


class Baseline:
    def __init__(self, redis_url: str, api_url: str, secret: str, token: str) -> None:
        self.redis = aioredis.from_url(redis_url, decode_responses=True)
        self.api_url = api_url.rstrip("/")
        self.secret = secret
        self.token = token
        self.verifier = SignatureVerifier(secret)
        self.http: aiohttp.ClientSession | None = None
        self.replies: set[asyncio.Task[None]] = set()

    async def count(self, key: str) -> None:
        value = int(await self.redis.get(key) or 0) + 1
        await self.redis.set(key, value)

    async def post(self, url: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        assert self.http is not None
        async with self.http.post(url, json=body, headers=headers) as resp:
            await resp.read()

    async def telegram(self, request: web.Request) -> web.Response:
        given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
        if not hmac.compare_digest(given.encode(), self.secret.encode()):
            return web.Response(status=401)
        update = Update.model_validate(await request.json())
        if update.message is None:
            return web.json_response({"ok": True})
        chat_id = update.message.chat.id
        await self.count(f"baseline:telegram:{chat_id}")
        await self.post(f"{self.api_url}/bot{self.token}/sendMessage",
                        {"chat_id": chat_id, "text": update.message.text or ""}, {})
        return web.json_response({"ok": True})

    async def slack(self, request: web.Request) -> web.Response:
        raw = await request.read()
        if not self.verifier.is_valid(raw.decode(), request.headers.get(
                "X-Slack-Request-Timestamp", ""), request.headers.get("X-Slack-Signature", "")):
            return web.Response(status=401)
        event = json.loads(raw)["event"]
        await self.count(f"baseline:slack:{event['user']}")
        message = {"channel": event["channel"], "text": event["text"]}
        reply = asyncio.create_task(self.post(f"{self.api_url}/chat.postMessage", message,
                                              {"Authorization": f"Bearer {self.token}"}))
        self.replies.add(reply)
        reply.add_done_callback(self.replies.discard)
        return web.Response(text="")


async def serve(platform: str, port: int, baseline: Baseline) -> None:
    app = web.Application()
    if platform == "telegram":
        app.router.add_post("/telegram/webhook", baseline.telegram)
    else:
        app.router.add_post("/slack/events", baseline.slack)
    baseline.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()  # until terminated


if __name__ == "__main__":
    platform, port, redis_url, api_url, secret, token = sys.argv[1:7]
    # The same event loop as `segue run`, so the ratio compares the servers alone.
    with asyncio.Runner(loop_factory=event_loop_factory()) as loop_runner:
        loop_runner.run(serve(platform, int(port), Baseline(redis_url, api_url, secret, token)))
