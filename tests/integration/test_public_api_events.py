"""What the public API sends shows in the events out, in order with the
rest of the conversation: the real app on Redis, a receiver on loopback."""

from __future__ import annotations

import aiohttp

from bot.outreach.keys import ApiKeys
from context_store import RedisContextStore
from tests.support.app_server import serve_segue
from tests.support.events_receiver import SECRET, receiving
from tests.support.handoff_rig import handoff_settings
from tests.support.webchat_client import WebChatClient


async def test_messages_and_flows_of_the_api_are_message_created_events_in_order(
    redis_url: str,
) -> None:
    async with receiving() as receiver:
        settings = handoff_settings(redis_url=redis_url, events_url=receiver.url,
                                    events_secret=SECRET)
        async with (serve_segue(settings, store=RedisContextStore.from_url(redis_url)) as app,
                    aiohttp.ClientSession() as http):
            _, secret = await ApiKeys(app.segue.store.agent_store()).add("shop")
            headers = {"Authorization": f"Bearer {secret}"}
            client = await WebChatClient.connect(http, app.ws_url)
            try:
                await client.turn("hello")
                base = f"{app.base_url}/api/v1/customers/{client.customer}"
                async with http.post(f"{base}/messages", headers=headers, json={
                        "text": "Your parcel is on its way.", "idempotency_key": "p-1"}) as r:
                    assert r.status == 201
                async with http.post(f"{base}/flows/delivery_slot", headers=headers,
                                     json={"slots": {"order_id": "A1002"}}) as r:
                    assert r.status == 201
                await client.next_message()
                await client.next_message()
            finally:
                await client.close()
            events = await receiver.wait_for(5, client.customer)
    assert [e["type"] for e in events] == ["conversation.started", "message.created",
                                           "message.created", "message.created",
                                           "message.created"]
    sent, asked = events[3]["data"], events[4]["data"]
    assert (events[1]["data"]["sender"], events[2]["data"]["sender"]) == ("customer", "bot")
    assert sent == {"sender": "bot", "channel": "web", "text": "Your parcel is on its way.",
                    "ts": sent["ts"], "source": "api", "key": "shop"}
    assert asked["text"].startswith("Your order A1002 is ready to ship.")
    assert (asked["source"], asked["flow"]) == ("api", "delivery_slot")
    assert all(d.valid for d in receiver.deliveries)
