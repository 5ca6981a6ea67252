"""Segue's real app on loopback with every channel at once (no tests here):
web chat, Telegram in webhook mode against the local Bot API fake and Slack
against the local Web API fake, the shipped demo bot on a real Redis, and
the console accounts of `handoff_rig`."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from bot.assembly.app import Segue
from bot.core.model import ChannelIdentity
from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi, signed_headers
from tests.fakes.telegram_api import TOKEN, FakeTelegram
from tests.support.app_server import RunningApp, serve_segue
from tests.support.handoff_rig import AgentClient, add_accounts, agent, handoff_settings
from tests.support.redis_server import free_port
from tests.support.slack_rig import SECRET as SLACK_SECRET
from tests.support.slack_rig import TOKEN as SLACK_TOKEN
from tests.support.slack_rig import dm
from tests.support.webchat_client import PROBE, PROBE_ANSWER

SLACK_USER = "U2147483697"
LINK_CODE = re.compile(r"\b([2-9A-Z]{4}-[2-9A-Z]{4})\b")


def link_code(text: str) -> str:
    """The link code the bot shows in `text`."""
    match = LINK_CODE.search(text)
    assert match is not None, text
    return match.group(1)


@dataclass(slots=True)
class ChannelsRig:
    app: RunningApp
    telegram: FakeTelegram
    slack: FakeSlackApi
    http: aiohttp.ClientSession
    events: int = 0

    @property
    def segue(self) -> Segue:
        return self.app.segue

    async def slack_post(self, body: bytes, content_type: str) -> int:
        """`body` signed as Slack signs it, to `/slack/events`; the status."""
        headers = {**signed_headers(SLACK_SECRET, body), "Content-Type": content_type}
        async with self.http.post(f"{self.app.base_url}/slack/events", data=body,
                                  headers=headers) as resp:
            return resp.status

    async def slack_says(self, text: str) -> None:
        self.events += 1
        raw = json.dumps(dm(text, event_id=f"Ev{self.events:08d}", user=SLACK_USER)).encode()
        assert await self.slack_post(raw, "application/json") == 200

    async def telegram_says(self, text: str) -> None:
        update = self.telegram.message(text)
        assert await self.telegram.post_update(update) == 200

    async def telegram_silent(self, text: str) -> None:
        """`text` from Telegram, which the bot must not answer: a probe sent
        after it (answered even during a handoff) gets the next message."""
        before = len(self.telegram.sent())
        await self.telegram_says(text)
        await self.telegram_says(PROBE)
        said = (await self.telegram_sent(before + 1))[before]
        assert said.startswith(PROBE_ANSWER), f"the bot answered {text!r}: {said!r}"

    async def slack_silent(self, text: str) -> None:
        """As `telegram_silent`, from Slack: queued messages are handled in
        order, so an answer to `text` would be posted before the probe's."""
        before = len(self.slack.posted())
        await self.slack_says(text)
        await self.slack_says(PROBE)
        said = (await self.slack_posts(before + 1))[before]
        assert said.startswith(PROBE_ANSWER), f"the bot answered {text!r}: {said!r}"

    async def slack_posts(self, count: int) -> list[str]:
        return [p["text"] for p in await self.slack.wait_posted(count)]

    async def telegram_sent(self, count: int) -> list[str]:
        return [c.params["text"] for c in await self.telegram.wait_for("sendMessage", count)]

    async def customer_of(self, identity: ChannelIdentity) -> str:
        return await self.segue.store.resolve_customer(identity, "unseen")

    async def agent(self, name: str) -> AgentClient:
        return await agent(self.http, self.app, name)


@asynccontextmanager
async def channels_rig(redis_url: str, **overrides: Any) -> AsyncIterator[ChannelsRig]:
    """The rig; `overrides` change or add settings."""
    port = free_port()  # Telegram is told the webhook's address before the app starts
    async with FakeTelegram() as telegram, FakeSlackApi(token=SLACK_TOKEN) as slack:
        settings = handoff_settings(
            telegram_token=TOKEN, telegram_mode="webhook", telegram_webhook_secret="tg-secret-1",
            telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
            telegram_api_url=telegram.url,
            slack_bot_token=SLACK_TOKEN, slack_signing_secret=SLACK_SECRET,
            slack_api_url=slack.url, **overrides,
        )
        store = RedisContextStore.from_url(redis_url)  # closed by the app's cleanup
        async with (
            serve_segue(settings, store=store, port=port) as app,
            aiohttp.ClientSession() as http,
        ):
            await add_accounts(app)
            yield ChannelsRig(app, telegram, slack, http)
