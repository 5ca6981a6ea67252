"""One customer across web chat, Telegram and Slack, on the shipped demo bot.

The real app serves all three connectors on one port, on a real Redis and
on a real Redis Cluster; the Telegram Bot API and Slack Web API are the local
fakes, driven with updates and events shaped as the platforms send them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest

from tests.fakes.telegram_api import callback_update, keyboard_of
from tests.support.channels_rig import ChannelsRig, channels_rig, link_code
from tests.support.slack_rig import dm, press
from tests.support.webchat_client import WebChatClient


@pytest.fixture
async def channels(redis_or_cluster_url: str) -> AsyncIterator[ChannelsRig]:
    """Every channel at once, on one Redis and then on a cluster."""
    async with channels_rig(redis_or_cluster_url) as rig:
        yield rig


async def test_web_to_telegram_to_slack_keeps_one_conversation(channels: ChannelsRig) -> None:
    telegram, slack = channels.telegram, channels.slack

    # On the web: ask about an order; the bot asks for its number.
    web = await WebChatClient.connect(channels.http, channels.app.ws_url)
    asked = await web.turn("where is my order")
    assert "order number" in asked[0]["text"]
    code = link_code((await web.turn("link"))[0]["text"])

    # On Telegram: enter the code, see what it joins, confirm with the button.
    assert await telegram.post_update(telegram.message(f"/link {code}")) == 200
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
    assert await telegram.post_update(telegram.message("A1002")) == 200
    status = (await telegram.wait_for("sendMessage", 4))[3]
    assert "processing" in status.params["text"].lower()

    # Slack joins too, with a new code from the web.
    code = link_code((await web.turn("link"))[0]["text"])
    body = json.dumps(dm(f"link {code}", event_id="Ev0OMNI0001")).encode()
    assert await channels.slack_post(body, "application/json") == 200
    posted = await slack.wait_posted(1)
    assert "web chat conversation" in posted[0]["text"]
    call = [c for c in slack.calls_to("chat.postMessage") if c.status == 200][0]
    pressed = press(dict(call.args, _ts=call.response["ts"]), 0)
    assert pressed["actions"][0]["value"] == "link_yes"
    form = urlencode({"payload": json.dumps(pressed)}).encode()
    assert await channels.slack_post(form, "application/x-www-form-urlencoded") == 200
    posted = await slack.wait_posted(2)
    assert posted[1]["text"].startswith("Linked!")

    # From any side, the whole history: every channel, in order.
    await web.close()
    again = await WebChatClient.connect(channels.http, channels.app.ws_url, session=web.session)
    history = again.history
    seen_on = {m["channel"] for m in history}
    assert seen_on == {"web", "telegram", "slack"}
    texts = [m["text"] for m in history]
    assert texts[0] == "where is my order"
    assert texts.index("A1002") < len(texts) - 1
    assert any("processing" in t.lower() for t in texts)
    assert [m["ts"] for m in history] == sorted(m["ts"] for m in history)
    # All three identities are one customer.
    identities = await channels.segue.store.identities(again.customer or "")
    assert {i.channel for i in identities} == {"web", "telegram", "slack"}
    await again.close()
