"""Helpers for the Slack integration tests (no tests here): a running Segue
with the Slack connector (the real aiohttp app on loopback, slack-bolt and
slack_sdk talking HTTP to the local fake Web API), payloads in the shapes
Slack documents, and requests signed as Slack signs them."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import redis.asyncio as aioredis
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from bot.assembly.app import Segue, build_app, create_segue
from bot.core.model import ChannelIdentity, HistoryEntry
from bot.core.policy import Policy
from bot.core.ports import ContextStore
from bot.core.settings import Settings
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlackApi, signed_headers

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
APP_TOKEN = "xapp-1-A0PNCHHK2-1234567890-abcdef"  # Socket Mode
BOT_AUTH = [{"enterprise_id": None, "team_id": TEAM_ID, "user_id": BOT_USER_ID,
             "is_bot": True, "is_enterprise_install": False}]


def _now_ts() -> str:
    return f"{time.time():.6f}"


def dm(text: str, *, event_id: str, user: str = "U2147483697", ts: str | None = None,
       channel: str = "D024BE91L", thread_ts: str | None = None) -> dict[str, Any]:
    """A `message.im` event callback, as the Events API documents it; with
    `thread_ts`, a reply written in a thread of the DM."""
    ts = ts or _now_ts()
    event = {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
             "event_ts": ts, "channel_type": "im", "team": TEAM_ID}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "XXYYZZ", "team_id": TEAM_ID, "api_app_id": "A0PNCHHK2", "type": "event_callback",
        "event": event,
        "event_id": event_id, "event_time": int(float(ts)), "authorizations": BOT_AUTH,
        "is_ext_shared_channel": False,
    }


def mention(text: str, *, event_id: str, user: str = "U061F7AUR", ts: str | None = None,
            thread_ts: str | None = None, channel: str = "C0LAN2Q65") -> dict[str, Any]:
    """An `app_mention` event callback."""
    ts = ts or _now_ts()
    event: dict[str, Any] = {"type": "app_mention", "user": user, "text": text, "ts": ts,
                             "channel": channel, "event_ts": ts, "team": TEAM_ID}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return {
        "token": "XXYYZZ", "team_id": TEAM_ID, "api_app_id": "A0PNCHHK2", "type": "event_callback",
        "event": event, "event_id": event_id, "event_time": int(float(ts)),
        "authorizations": BOT_AUTH,
    }


def bot_message(text: str, *, event_id: str, bot_id: str = BOT_ID) -> dict[str, Any]:
    """A `bot_message` in a DM: what the bot's own (or another bot's) post looks like."""
    ts = _now_ts()
    return {
        "token": "XXYYZZ", "team_id": TEAM_ID, "api_app_id": "A0PNCHHK2", "type": "event_callback",
        "event": {"type": "message", "subtype": "bot_message", "channel": "D024BE91L",
                  "bot_id": bot_id, "text": text, "ts": ts, "event_ts": ts, "channel_type": "im"},
        "event_id": event_id, "event_time": int(float(ts)),
    }


def buttons_of(posted: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for b in posted.get("blocks", []) if b["type"] == "actions" for e in b["elements"]]


def press(posted: dict[str, Any], index: int, *, user: str = "U2147483697",
          action_ts: str | None = None, ephemeral: bool = False) -> dict[str, Any]:
    """The `block_actions` payload Slack sends when `user` presses button
    `index` of a message the bot posted (as recorded by the fake), or of
    the same message shown as an ephemeral one (which Slack does not
    include in the payload)."""
    button = buttons_of(posted)[index]
    block = next(b for b in posted["blocks"] if button in b.get("elements", []))
    message_ts = posted["_ts"]
    container: dict[str, Any] = {"type": "message", "message_ts": message_ts,
                                 "channel_id": posted["channel"], "is_ephemeral": ephemeral}
    message: dict[str, Any] = {"type": "message", "user": BOT_USER_ID, "ts": message_ts,
                               "text": posted["text"], "blocks": posted["blocks"]}
    if posted.get("thread_ts"):
        container["thread_ts"] = message["thread_ts"] = posted["thread_ts"]
    direct = posted["channel"].startswith("D")
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "dana", "name": "dana", "team_id": TEAM_ID},
        "api_app_id": "A0PNCHHK2", "token": "XXYYZZ", "container": container,
        "trigger_id": "12466734323.1395872398.8bd2e1d9a2f4b",
        "team": {"id": TEAM_ID, "domain": "example"},
        "channel": {"id": posted["channel"], "name": "directmessage" if direct else "general"},
        "message": message,
        "response_url": "https://hooks.slack.com/actions/T061EG9R6/1234567890/abcdefgh",
        "actions": [{
            "action_id": button["action_id"], "block_id": block["block_id"], "type": "button",
            "value": button["value"], "text": button["text"], "action_ts": action_ts or _now_ts(),
        }],
    }
    if ephemeral:
        del payload["message"]
    return payload


def block_suggestion(typed: str) -> dict[str, Any]:
    """What Slack sends while a user types into an external select menu."""
    return {
        "type": "block_suggestion",
        "user": {"id": "U2147483697", "username": "dana", "name": "dana", "team_id": TEAM_ID},
        "container": {"type": "message", "message_ts": "1763900001.000400",
                      "channel_id": "D024BE91L", "is_ephemeral": False},
        "api_app_id": "A0PNCHHK2", "token": "XXYYZZ",
        "action_id": "order_lookup", "block_id": "order", "value": typed,
        "team": {"id": TEAM_ID, "domain": "example"},
        "channel": {"id": "D024BE91L", "name": "directmessage"},
    }


def dialog_suggestion(typed: str) -> dict[str, Any]:
    """What Slack sends while a user types into a legacy dialog's external select."""
    return {
        "type": "dialog_suggestion", "token": "XXYYZZ", "action_ts": "1763900007.000700",
        "team": {"id": TEAM_ID, "domain": "example"},
        "user": {"id": "U2147483697", "name": "dana"},
        "channel": {"id": "D024BE91L", "name": "directmessage"},
        "name": "order", "value": typed, "callback_id": "report",
    }


async def stored_keys(client: aioredis.Redis) -> dict[str, int]:
    """Every key, with the stream length for the inbox (created empty by the worker)."""
    keys = {}
    async for key in client.scan_iter():
        kind = await client.type(key)
        keys[key] = await client.xlen(key) if kind == "stream" else 1
    return keys


def refused(code: str) -> float:
    """How many Slack requests were refused with `code` so far."""
    labels = {"channel": "slack", "code": code}
    return REGISTRY.get_sample_value("segue_bad_input_total", labels) or 0.0


@dataclass(slots=True)
class SlackRig:
    api: FakeSlackApi
    client: TestClient[Any, Any]
    segue: Segue
    store: ContextStore

    async def post_event(self, body: dict[str, Any], *, retry: int | None = None,
                         timestamp: int | None = None, secret: str = SECRET) -> ClientResponse:
        raw = json.dumps(body).encode()
        headers = signed_headers(secret, raw, timestamp=timestamp, retry=retry)
        headers["Content-Type"] = "application/json"
        return await self.client.post("/slack/events", data=raw, headers=headers)

    async def post_action(self, payload: dict[str, Any], *, secret: str = SECRET,
                          retry: int | None = None) -> ClientResponse:
        return await self.post_form({"payload": json.dumps(payload)}, secret=secret, retry=retry)

    async def post_form(self, fields: dict[str, str], *, secret: str = SECRET,
                        retry: int | None = None) -> ClientResponse:
        """Form fields, signed: a slash command as is, an interaction as `payload`."""
        raw = urlencode(fields).encode()
        headers = signed_headers(secret, raw, retry=retry)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
        return await self.client.post("/slack/events", data=raw, headers=headers)

    async def replies(self, count: int) -> list[dict[str, Any]]:
        """The first `count` accepted chat.postMessage calls, each with the
        `ts` Slack gave it under `_ts`."""
        await self.api.wait_posted(count)
        accepted = [c for c in self.api.calls_to("chat.postMessage") if c.status == 200]
        return [dict(call.args, _ts=call.response["ts"]) for call in accepted[:count]]

    async def history(self, user: str, team: str = TEAM_ID) -> list[HistoryEntry]:
        identity = ChannelIdentity("slack", f"{team}:{user}")
        customer = await self.store.resolve_customer(identity, "not-yet-seen")
        return await self.store.history(customer, 100)


def settings_for(api: FakeSlackApi, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_bot_token": TOKEN,
        "slack_signing_secret": SECRET,
        "slack_api_url": api.url,
        "webchat_secret": "web-secret-for-tests",
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_segue(
    api: FakeSlackApi, store: ContextStore, *, policy: Policy | None = None, **overrides: Any
) -> AsyncIterator[SlackRig]:
    segue = await create_segue(settings_for(api, **overrides), store=store, policy=policy)
    server = TestServer(build_app(segue), host="127.0.0.1")
    async with TestClient(server) as client:
        yield SlackRig(api=api, client=client, segue=segue, store=store)
