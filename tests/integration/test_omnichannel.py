"""One customer across web chat, Telegram and Slack, on the shipped demo bot.

The real app serves all three connectors on one port, on a real Redis; the
Telegram Bot API and Slack Web API are the local fakes, driven with updates
and events shaped as the platforms send them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlencode

import aiohttp
import pytest
from aiohttp import web

from bot.assembly.app import Segue, build_app, create_segue
from bot.core.settings import Settings
from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi, signed_headers
from tests.fakes.telegram_api import (
    TOKEN as TELEGRAM_TOKEN,
)
from tests.fakes.telegram_api import (
    FakeTelegram,
    callback_update,
    keyboard_of,
    message_update,
)
from tests.support.redis_server import free_port
from tests.support.slack_rig import SECRET as SLACK_SECRET
from tests.support.slack_rig import TOKEN as SLACK_TOKEN
from tests.support.slack_rig import dm, press
from tests.support.webchat_client import WebChatClient

WEBHOOK_SECRET = "omni-Secret_1"


@dataclass(slots=True)
class Everything:
    segue: Segue
    base_url: str
    telegram: FakeTelegram
    slack: FakeSlackApi
    http: aiohttp.ClientSession

    async def slack_post(self, body: bytes, content_type: str) -> int:
        headers = signed_headers(SLACK_SECRET, body)
        headers["Content-Type"] = content_type
        async with self.http.post(f"{self.base_url}/slack/events", data=body,
                                  headers=headers) as response:
            return response.status


@pytest.fixture
async def everything(redis_url: str) -> AsyncIterator[Everything]:
    port = free_port()
    async with FakeTelegram() as telegram, FakeSlackApi(token=SLACK_TOKEN) as slack:
        settings = Settings(
            redis_url=redis_url,
            webchat_secret="omni-web-secret",
            telegram_token=TELEGRAM_TOKEN,
            telegram_mode="webhook",
            telegram_webhook_secret=WEBHOOK_SECRET,
            telegram_webhook_url=f"http://127.0.0.1:{port}/telegram/webhook",
            telegram_api_url=telegram.url,
            slack_bot_token=SLACK_TOKEN,
            slack_signing_secret=SLACK_SECRET,
            slack_api_url=slack.url,
        )
        segue = await create_segue(settings, store=RedisContextStore.from_url(redis_url))
        runner = web.AppRunner(build_app(segue))
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        try:
            async with aiohttp.ClientSession() as http:
                yield Everything(segue, f"http://127.0.0.1:{port}", telegram, slack, http)
        finally:
            await runner.cleanup()


def code_of(text: str) -> str:
    match = re.search(r"\b([2-9A-Z]{4}-[2-9A-Z]{4})\b", text)
    assert match, text
    return match.group(1)


async def test_web_to_telegram_to_slack_keeps_one_conversation(everything: Everything) -> None:
    telegram, slack = everything.telegram, everything.slack

    # On the web: ask about an order; the bot asks for its number.
    web = await WebChatClient.connect(everything.http, f"{everything.base_url}/webchat/ws")
    asked = await web.turn("where is my order")
    assert "order number" in asked[0]["text"]
    code = code_of((await web.turn("link"))[0]["text"])

    # On Telegram: enter the code, see what it joins, confirm with the button.
    assert await telegram.post_update(message_update(telegram.new_update_id(),
                                                     f"/link {code}")) == 200
    confirm = (await telegram.wait_for("sendMessage"))[-1]
    assert "web chat conversation" in confirm.params["text"]
    yes = [b for b in keyboard_of(confirm) if b["callback_data"] == "link_yes"]
    assert yes
    assert await telegram.post_update(callback_update(telegram.new_update_id(), confirm,
                                                      "link_yes")) == 200
    sent = await telegram.wait_for("sendMessage", 3)
    assert sent[1].params["text"].startswith("Linked!")
    assert "order number" in sent[2].params["text"]  # where we left off

    # The web chat is told that Telegram joined.
    notice = await web.receive()
    assert notice["type"] == "message" and "Telegram chat" in notice["text"]

    # The question asked on the web is answered on Telegram.
    assert await telegram.post_update(message_update(telegram.new_update_id(), "A1002")) == 200
    status = (await telegram.wait_for("sendMessage", 4))[3]
    assert "processing" in status.params["text"].lower()

    # Slack joins too, with a new code from the web.
    code = code_of((await web.turn("link"))[0]["text"])
    body = json.dumps(dm(f"link {code}", event_id="Ev0OMNI0001")).encode()
    assert await everything.slack_post(body, "application/json") == 200
    posted = await slack.wait_posted(1)
    assert "web chat conversation" in posted[0]["text"]
    call = [c for c in slack.calls_to("chat.postMessage") if c.status == 200][0]
    pressed = press(dict(call.args, _ts=call.response["ts"]), 0)
    assert pressed["actions"][0]["value"] == "link_yes"
    form = urlencode({"payload": json.dumps(pressed)}).encode()
    assert await everything.slack_post(form, "application/x-www-form-urlencoded") == 200
    posted = await slack.wait_posted(2)
    assert posted[1]["text"].startswith("Linked!")

    # From any side, the whole history: every channel, in order.
    await web.close()
    again = await WebChatClient.connect(everything.http, f"{everything.base_url}/webchat/ws",
                                        session=web.session)
    history = again.history
    channels = {m["channel"] for m in history}
    assert channels == {"web", "telegram", "slack"}
    texts = [m["text"] for m in history]
    assert texts[0] == "where is my order"
    assert texts.index("A1002") < len(texts) - 1
    assert any("processing" in t.lower() for t in texts)
    assert [m["ts"] for m in history] == sorted(m["ts"] for m in history)
    # All three identities are one customer.
    identities = await everything.segue.store.identities(again.customer or "")
    assert {i.channel for i in identities} == {"web", "telegram", "slack"}
    await again.close()
