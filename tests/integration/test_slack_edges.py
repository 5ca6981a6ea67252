"""The Slack connector at its edges: what a refusal says, signature headers
that are missing or on the edge of their window, a request that fails
inside, messages from the bot itself, how replies are posted and why one
could not be, the Web API address, the inbox options, and a connector with
HTTP events off. Segue's real app where it runs one, the local Web API fake."""

from __future__ import annotations

import asyncio
import json
import time
from typing import cast

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from slack_sdk.signature import Clock

from bot.core.engine import Engine, Turn
from bot.core.errors import ConnectorError, StoreError
from bot.core.inbox import InboxOptions, encode_item
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.settings import Settings
from connectors.slack import SlackConnector, build_slack_connector, web_client
from connectors.slack_parse import inbound_to_json
from context_store import MemoryContextStore, RedisContextStore
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlackApi, sign, signed_headers
from tests.support.policies import EchoButtonsPolicy
from tests.support.redis_server import free_port
from tests.support.slack_rig import SECRET, TOKEN, dm, mention, running_segue


class FixedClock(Clock):
    def __init__(self, now: int) -> None:
        self.at = now

    def now(self) -> float:
        return self.at


# Refusals and signatures.

async def test_refusals_carry_a_code_and_a_reason(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        forged = await rig.post_event(dm("hi", event_id="EvE1"), secret="forged")
        assert forged.status == 401
        answer = await forged.json()
        assert answer["error"] == "bad_signature"
        assert "signature" in answer["message"].lower()
        raw = b"[1, 2]"
        headers = {**signed_headers(SECRET, raw), "Content-Type": "application/json"}
        bad = await rig.client.post("/slack/events", data=raw, headers=headers)
        assert bad.status == 400
        answer = await bad.json()
        assert answer["error"] == "bad_body"
        assert "payload" in answer["message"].lower()


async def test_a_timestamp_without_a_signature_is_refused(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        raw = json.dumps(dm("hi", event_id="EvE2")).encode()
        headers = {"X-Slack-Request-Timestamp": str(int(time.time())),
                   "Content-Type": "application/json"}
        response = await rig.client.post("/slack/events", data=raw, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"] == "bad_signature"
        connector = rig.segue.connectors["slack"]
        assert not connector.signed(raw, {"X-Slack-Request-Timestamp": str(int(time.time()))})
    assert slack_api.posted() == []


async def test_a_body_that_is_not_utf8_is_signed_within_the_same_five_minutes(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store) as rig:
        connector = rig.segue.connectors["slack"]
        now = int(time.time())
        connector.verifier.clock = FixedClock(now)
        garbled = b'{"text": "caf\xe9"}'
        for age in (-300, 300):
            ts = now - age
            headers = {"X-Slack-Request-Timestamp": str(ts),
                       "X-Slack-Signature": sign(SECRET, garbled, ts)}
            assert connector.signed(garbled, headers), age
        for age in (-301, 301):
            ts = now - age
            headers = {"X-Slack-Request-Timestamp": str(ts),
                       "X-Slack-Signature": sign(SECRET, garbled, ts)}
            assert not connector.signed(garbled, headers), age


# Inside a request.

class BrokenInbox(RedisContextStore):
    """A store that cannot queue: a bug, not an outage."""

    async def inbox_add(self, payload: str) -> str:
        raise StoreError("inbox rejected the item")


async def test_a_request_that_fails_inside_answers_500(
    slack_api: FakeSlackApi, redis_url: str
) -> None:
    broken = BrokenInbox.from_url(redis_url)
    try:
        async with running_segue(slack_api, broken, policy=EchoButtonsPolicy()) as rig:
            response = await rig.post_event(dm("hi", event_id="EvE3"))
            assert response.status == 500
            assert await response.text()
    finally:
        await broken.close()
    assert slack_api.posted() == []


async def test_the_bots_own_posts_are_ignored_and_only_its_own_mention_is_dropped(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        own = dm("my own post", event_id="EvE4", user=BOT_USER_ID)
        assert (await rig.post_event(own)).status == 200
        other = mention("<@U0OTHER> can you help", event_id="EvE5")
        assert (await rig.post_event(other)).status == 200
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: &lt;@U0OTHER&gt; can you help"
        ours = mention(f"<@{BOT_USER_ID}> hi there", event_id="EvE6")
        assert (await rig.post_event(ours)).status == 200
        replies = await rig.replies(2)
        assert replies[1]["text"] == "echo: hi there"
        assert len(slack_api.posted()) == 2


# Posting replies.

async def test_replies_are_posted_without_link_previews(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        await rig.post_event(dm("see https://example.com/order/42", event_id="EvE7"))
        (reply,) = await rig.replies(1)
    assert reply["unfurl_links"] in (False, "false", "0")


async def test_a_refusal_without_an_error_code_is_told_by_its_status(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    async def broken(request: web.Request) -> web.Response:
        return web.json_response({"ok": False}, status=500)

    app = web.Application()
    app.router.add_post("/api/{method}", broken)
    async with TestServer(app, host="127.0.0.1") as server:
        connector = SlackConnector(
            engine=cast(Engine, None), store=redis_store,
            client=web_client(TOKEN, str(server.make_url("/api/"))), signing_secret=SECRET,
        )
        with pytest.raises(ConnectorError, match="HTTP 500"):
            await connector.send(Address("slack", "D024BE91L"), Outbound(text="hi"))


async def test_slack_out_of_reach_is_said_so(redis_store: RedisContextStore) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/api/"
    connector = SlackConnector(engine=cast(Engine, None), store=redis_store,
                               client=web_client(TOKEN, nowhere), signing_secret=SECRET)
    with pytest.raises(ConnectorError, match="could not be reached"):
        await connector.send(Address("slack", "D024BE91L"), Outbound(text="hi"))


@pytest.mark.parametrize("slash", ["/", ""])
async def test_the_web_api_address_works_with_or_without_a_final_slash(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, slash: str
) -> None:
    base = slack_api.url.rstrip("/") + slash
    connector = SlackConnector(engine=cast(Engine, None), store=redis_store,
                               client=web_client(TOKEN, base), signing_secret=SECRET)
    await connector.send(Address("slack", "D024BE91L"), Outbound(text="hi"))
    (posted,) = slack_api.posted()
    assert posted["text"] == "hi"


# Assembly.

def test_a_missing_bot_token_is_named_in_the_error() -> None:
    settings = Settings(webchat_secret="w" * 32)
    with pytest.raises(ConnectorError, match="SEGUE_SLACK_BOT_TOKEN"):
        build_slack_connector(settings=settings, engine=cast(Engine, None),
                              store=MemoryContextStore())


class FailingEngine:
    """An engine whose every turn fails, counting them."""

    def __init__(self) -> None:
        self.turns = 0

    async def process(self, inbound: Inbound) -> Turn:
        self.turns += 1
        raise RuntimeError("turn failed")


class ParkWatch(MemoryContextStore):
    def __init__(self) -> None:
        super().__init__(inbox_stale_ms=200)
        self.parked_once = asyncio.Event()

    async def park(self, record: str) -> None:
        await super().park(record)
        self.parked_once.set()


async def test_inbox_options_given_to_the_connector_are_used(slack_api: FakeSlackApi) -> None:
    watch = ParkWatch()
    engine = FailingEngine()
    connector = SlackConnector(
        engine=cast(Engine, engine), store=watch, client=web_client(TOKEN, slack_api.url),
        signing_secret=SECRET, inbox_options=InboxOptions(max_attempts=1, block_ms=50),
    )
    inbound = Inbound(identity=ChannelIdentity("slack", f"{TEAM_ID}:U2147483697"),
                      address=Address("slack", "D024BE91L"), message_id="EvE9", text="hi")
    await watch.inbox_add(encode_item("slack", inbound_to_json(inbound)))
    await connector.start()
    try:
        await asyncio.wait_for(watch.parked_once.wait(), 10)
    finally:
        await connector.stop()
    assert engine.turns == 1


async def test_http_events_off_answer_404_saying_so(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    connector = SlackConnector(engine=cast(Engine, None), store=redis_store,
                               client=web_client(TOKEN, slack_api.url), signing_secret=None)
    app = web.Application()
    connector.mount(app)
    raw = json.dumps(dm("hi", event_id="EvEA")).encode()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        response = await client.post("/slack/events", data=raw,
                                     headers=signed_headers(SECRET, raw))
        assert response.status == 404
        assert "not enabled" in (await response.text()).lower()
