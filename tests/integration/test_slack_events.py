"""The Slack connector end to end: signed requests to `/slack/events` on
Segue's real app, replies through slack_sdk to the local fake Web API."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.core.errors import ConnectorError
from bot.core.inbox import encode_item
from bot.core.model import Address, Outbound
from context_store import RedisContextStore
from tests.fakes.slack_api import BOT_USER_ID, FakeSlackApi, signed_headers
from tests.support.policies import EchoButtonsPolicy
from tests.support.redis_server import free_port, redis_server
from tests.support.slack_rig import (
    SECRET,
    SlackRig,
    bot_message,
    buttons_of,
    dm,
    mention,
    press,
    refused,
    running_segue,
    stored_keys,
)


async def redelivered_then(rig: SlackRig, body: dict[str, Any], then: dict[str, Any]) -> None:
    """Slack delivers `body` twice more, then the message `then`; `body` is
    answered and stored once, before `then`."""
    assert (await rig.post_event(body, retry=1)).status == 200
    assert (await rig.post_event(body, retry=2)).status == 200
    # One worker handles items in order: once the next message is
    # answered, the retries were handled before it.
    await rig.post_event(then)
    first, second = body["event"]["text"], then["event"]["text"]
    replies = await rig.replies(2)
    assert [r["text"] for r in replies] == [f"echo: {first}", f"echo: {second}"]
    assert len(rig.api.posted()) == 2
    history = await rig.history("U2147483697")
    assert [e.text for e in history if e.sender == "customer"] == [first, second]


async def test_dm_conversation_runs_several_turns_and_a_button_press(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store) as rig:
        assert (await rig.post_event(dm("hi", event_id="Ev01"))).status == 200
        (menu,) = await rig.replies(1)
        assert menu["channel"] == "D024BE91L" and "thread_ts" not in menu
        assert len(buttons_of(menu)) >= 2
        assert menu["text"]  # the plain fallback

        pressed = buttons_of(menu)[0]
        assert (await rig.post_action(press(menu, 0))).status == 200
        await rig.replies(2)
        assert (await rig.post_event(dm("where is my order", event_id="Ev02"))).status == 200
        replies = await rig.replies(3)

        history = await rig.history("U2147483697")
        customer = [e.text for e in history if e.sender == "customer"]
        assert customer == ["hi", pressed["text"]["text"], "where is my order"]
        assert [e.sender for e in history] == ["customer", "bot"] * 3
        assert {e.channel for e in history} == {"slack"}
        assert all(r["channel"] == "D024BE91L" for r in replies)


async def test_replies_share_one_connection_to_the_web_api(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store) as rig:
        for n, text in enumerate(("hi", "where is my order", "A1001", "thanks")):
            assert (await rig.post_event(dm(text, event_id=f"Ev1{n}"))).status == 200
            await rig.replies(n + 1)
    peers = {c.peer for c in slack_api.calls_to("chat.postMessage")}
    # Kept alive between calls, not a new connection (and TLS handshake) each.
    assert len(peers) == 1, peers


async def test_mention_in_a_channel_is_answered_in_its_thread(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        body = mention(
            f"<@{BOT_USER_ID}> where is my order?", event_id="Ev10", ts="1763900100.000300"
        )
        assert (await rig.post_event(body)).status == 200
        (reply,) = await rig.replies(1)
        assert reply["channel"] == "C0LAN2Q65"
        assert reply["thread_ts"] == "1763900100.000300"
        assert reply["text"] == "echo: where is my order?"  # the mention is stripped

        # A mention inside an existing thread stays in that thread, and the
        # buttons pressed there answer there too.
        body = mention(f"<@{BOT_USER_ID}> again", event_id="Ev11", thread_ts="1763900100.000300")
        await rig.post_event(body)
        second = (await rig.replies(2))[1]
        assert second["thread_ts"] == "1763900100.000300"
        await rig.post_action(press(second, 1, user="U061F7AUR"))
        third = (await rig.replies(3))[2]
        assert third["thread_ts"] == "1763900100.000300"
        assert third["text"] == "echo: payload p2"


async def test_button_press_comes_back_as_title_and_payload(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        await rig.post_event(dm("show me", event_id="Ev20"))
        (first,) = await rig.replies(1)
        assert [b["value"] for b in buttons_of(first)] == ["p1", "p2"]
        assert [b["text"]["text"] for b in buttons_of(first)] == ["One", "Two"]

        action = press(first, 1)
        assert (await rig.post_action(action)).status == 200
        assert (await rig.post_action(action)).status == 200  # the same press redelivered
        await rig.post_event(dm("after", event_id="Ev21"))
        replies = await rig.replies(3)
        assert replies[1]["text"] == "echo: payload p2"
        assert replies[2]["text"] == "echo: after"
        assert len(slack_api.posted()) == 3
        history = await rig.history("U2147483697")
        assert [e.text for e in history if e.sender == "customer"] == ["show me", "Two", "after"]


async def test_url_verification_answers_the_challenge(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    async with running_segue(slack_api, redis_store) as rig:
        body = {
            "token": "Jhj5dZrVaK7ZwHHjRyZWjbDl",
            "type": "url_verification",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
        }
        response = await rig.post_event(body)
        assert response.status == 200
        assert (await response.json())["challenge"] == body["challenge"]
        assert not any((await stored_keys(redis_client)).values())


async def test_retry_with_the_same_event_id_gets_one_reply(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        body = dm("once", event_id="Ev30")
        assert (await rig.post_event(body)).status == 200
        await redelivered_then(rig, body, dm("next", event_id="Ev31"))


async def test_retry_that_is_the_first_delivery_is_processed(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        assert (await rig.post_event(dm("lost first", event_id="Ev35"), retry=1)).status == 200
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: lost first"


@pytest.mark.parametrize("secret", ["not-the-signing-secret", ""])
async def test_bad_signature_is_refused_and_nothing_stored(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    secret: str,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        response = await rig.post_event(dm("forged", event_id="Ev40"), secret=secret)
        assert response.status == 401
        action = {"type": "block_actions", "user": {"id": "U1", "team_id": "T1"}, "actions": []}
        assert (await rig.post_action(action, secret=secret)).status == 401
        unsigned = await rig.client.post("/slack/events", json=dm("unsigned", event_id="Ev41"))
        assert unsigned.status == 401
        assert not any((await stored_keys(redis_client)).values())
    assert slack_api.posted() == []


# Bodies no Slack payload looks like, with the content type they claim.
MALFORMED = {
    "bad_json": (b"{bad", "application/json"),
    "bad_form_payload": (b"payload=%7Bbad", "application/x-www-form-urlencoded"),
    "not_utf8": (b'{"type": "event_callback", "text": "caf\xe9"}', "application/json"),
    "deeply_nested": (b"[" * 100_000 + b"]" * 100_000, "application/json"),
    "not_an_object": (b"[1, 2]", "application/json"),
    "event_not_an_object": (b'{"type": "event_callback", "event": "hi"}', "application/json"),
    "empty": (b"", "application/json"),
}


def problems(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize(("raw", "content_type"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_signed_malformed_body_is_refused_with_400_and_nothing_stored(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        before = refused("bad_body")
        headers = {**signed_headers(SECRET, raw), "Content-Type": content_type}
        response = await rig.client.post("/slack/events", data=raw, headers=headers)
        assert response.status == 400
        assert (await response.json())["error"] == "bad_body"
        assert refused("bad_body") == before + 1
        assert not any((await stored_keys(redis_client)).values())
    assert problems(caplog) == []
    assert slack_api.posted() == []


@pytest.mark.parametrize(("raw", "content_type"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_body_without_a_good_signature_is_refused_with_401(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str,
) -> None:
    stale = int(time.time()) - 6 * 60
    attempts = [
        {},
        signed_headers("not-the-signing-secret", raw),
        signed_headers(SECRET, raw, timestamp=stale),
        {**signed_headers(SECRET, raw), "X-Slack-Request-Timestamp": "soon"},
    ]
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        before = refused("bad_signature")
        for headers in attempts:
            headers["Content-Type"] = content_type
            response = await rig.client.post("/slack/events", data=raw, headers=headers)
            assert response.status == 401
            assert (await response.json())["error"] == "bad_signature"
        assert refused("bad_signature") == before + len(attempts)
        assert not any((await stored_keys(redis_client)).values())
    assert problems(caplog) == []


async def test_odd_signature_headers_are_refused_not_raised(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store) as rig:
        connector = rig.segue.connectors["slack"]
        raw = json.dumps(dm("hi", event_id="EvB0")).encode()
        good = signed_headers(SECRET, raw)
        assert connector.signed(raw, good)
        for timestamp in ["", "-1", "1e9", "\uff11\uff12", "9" * 5000]:
            assert not connector.signed(raw, {**good, "X-Slack-Request-Timestamp": timestamp})
        assert not connector.signed(raw, {**good, "X-Slack-Signature": "v0=\u00e9"})
        garbled = b"\xff" + raw
        assert connector.signed(garbled, signed_headers(SECRET, garbled))
        assert not connector.signed(garbled, good)


async def test_refused_requests_log_no_customer_text(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    text = "my card is 4111 1111 1111 1111"
    async with running_segue(slack_api, redis_store) as rig:
        forged = await rig.post_event(dm(text, event_id="EvB1"), secret="forged")
        assert forged.status == 401
        # Bolt's own check behind it stays quiet about bodies too.
        raw = json.dumps(dm(text, event_id="EvB2"))
        headers = {**signed_headers("forged", raw.encode()), "Content-Type": "application/json"}
        request = AsyncBoltRequest(body=raw, headers=headers)
        bolt = rig.segue.connectors["slack"].bolt
        assert (await bolt.async_dispatch(request)).status == 401
    assert caplog.records  # the capture was on
    assert "4111" not in caplog.text


async def test_stale_timestamp_is_refused(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        old = int(time.time()) - 6 * 60
        response = await rig.post_event(dm("replayed", event_id="Ev50"), timestamp=old)
        assert response.status == 401
        assert not any((await stored_keys(redis_client)).values())
        # Just inside the window is fine.
        fresh = await rig.post_event(dm("fresh", event_id="Ev51"), timestamp=int(time.time()) - 60)
        assert fresh.status == 200
        await rig.replies(1)


async def test_messages_from_bots_and_non_text_subtypes_are_ignored(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        assert (await rig.post_event(bot_message("from a bot", event_id="Ev60"))).status == 200
        own = dm("my own post", event_id="Ev61", user=BOT_USER_ID)
        assert (await rig.post_event(own)).status == 200
        edited = dm("edited", event_id="Ev62")
        edited["event"]["subtype"] = "message_changed"
        assert (await rig.post_event(edited)).status == 200
        joined = dm("<@U2147483697> has joined the channel", event_id="Ev63")
        joined["event"].update({"subtype": "channel_join", "channel_type": "channel"})
        assert (await rig.post_event(joined)).status == 200
        other_bot = dm("hello from app", event_id="Ev64", user="U0OTHERBOT")
        other_bot["event"]["bot_id"] = "B0OTHER"
        assert (await rig.post_event(other_bot)).status == 200

        await rig.post_event(dm("a person", event_id="Ev65"))
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: a person"
        assert len(slack_api.posted()) == 1
        assert [e.text for e in await rig.history("U2147483697")] == ["a person", "echo: a person"]


async def test_customer_text_is_escaped_in_mrkdwn(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        await rig.post_event(
            dm("<!channel> & <https://evil.example|click> <b>x</b>", event_id="Ev70")
        )
        (reply,) = await rig.replies(1)
        expected = (
            "echo: &lt;!channel&gt; &amp; &lt;https://evil.example|click&gt; &lt;b&gt;x&lt;/b&gt;"
        )
        assert reply["text"] == expected
        assert reply["blocks"][0] == {
            "type": "section",
            "text": {"type": "mrkdwn", "text": expected},
        }


async def test_a_message_over_the_text_limit_is_refused_and_nothing_stored(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy(),
                             max_text_length=50) as rig:
        assert (await rig.post_event(dm("x" * 51, event_id="Ev80"))).status == 200
        (reply,) = await rig.replies(1)
        assert "too long" in reply["text"] and "51 characters" in reply["text"]
        assert await rig.history("U2147483697") == []
        await rig.post_event(dm("x" * 50, event_id="Ev81"))
        replies = await rig.replies(2)
        assert replies[1]["text"] == "echo: " + "x" * 50


async def test_rate_limited_post_message_waits_for_retry_after(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    slack_api.rate_limit("chat.postMessage", times=1, retry_after=1)
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        await rig.post_event(dm("slow down", event_id="Ev80"))
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: slow down"
        limited, accepted = slack_api.calls_to("chat.postMessage")
        assert (limited.status, accepted.status) == (429, 200)
        assert accepted.at - limited.at >= 1.0


async def test_refused_message_raises_connector_error(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    slack_api.refuse("chat.postMessage", "channel_not_found")
    async with running_segue(slack_api, redis_store) as rig:
        with pytest.raises(ConnectorError, match="channel_not_found"):
            await rig.segue.connectors["slack"].send(Address("slack", "C404"), Outbound(text="hi"))


async def test_worker_dying_after_the_ack_is_replaced_and_the_message_processed_once(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        connector = rig.segue.connectors["slack"]
        await connector.stop()  # no live worker while the doomed one takes the item
        assert (await rig.post_event(dm("survive", event_id="Ev90"))).status == 200
        taken = await redis_store.inbox_take("doomed-worker", count=10, block_ms=100)
        assert len(taken) == 1  # ...and the doomed worker dies without acknowledging

        await connector.start()
        await rig.post_event(dm("later", event_id="Ev91"))
        replies = await rig.replies(2)
        assert sorted(r["text"] for r in replies) == ["echo: later", "echo: survive"]
        # A third message answered means the reclaimed item was not run twice.
        await rig.post_event(dm("last", event_id="Ev92"))
        await rig.replies(3)
        assert len(slack_api.posted()) == 3
        history = await rig.history("U2147483697")
        assert sorted(e.text for e in history if e.sender == "customer") == [
            "last",
            "later",
            "survive",
        ]


async def test_poisoned_item_is_parked_and_the_queue_moves_on(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        await redis_store.inbox_add(encode_item("slack", {"not": "an inbound"}))
        await rig.post_event(dm("after poison", event_id="Ev95"))
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: after poison"
        (parked,) = [json.loads(p) for p in await redis_store.parked(10)]
        assert parked["error"].startswith("KeyError")
        assert json.loads(parked["payload"])["data"] == {"not": "an inbound"}


async def test_redis_down_answers_5xx_and_the_redelivery_is_processed_once(
    slack_api: FakeSlackApi,
) -> None:
    port = free_port()
    with redis_server(port=port) as url:
        # No client-side retries: an outage must be reported within Slack's 3 s.
        client = aioredis.from_url(url, decode_responses=True, retry=Retry(NoBackoff(), 0))
        down_store = RedisContextStore(client, inbox_stale_ms=200)
        await down_store.ping()
    try:
        async with running_segue(slack_api, down_store, policy=EchoButtonsPolicy()) as rig:
            body = dm("while down", event_id="EvA0")
            response = await rig.post_event(body)
            assert response.status == 503
            with redis_server(port=port):  # Redis comes back on the same port
                await redelivered_then(rig, body, dm("back", event_id="EvA1"))
    finally:
        await down_store.close()
