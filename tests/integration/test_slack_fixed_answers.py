"""Slack's fixed answer to an over-long message, sent once however often
Slack delivers the event: Segue's real app and Redis, slack-bolt and
slack_sdk against the local Web API fake."""

from __future__ import annotations

import redis.asyncio as aioredis

from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.support.policies import EchoButtonsPolicy
from tests.support.redis_server import redis_keys
from tests.support.slack_rig import dm, running_segue


async def test_an_over_long_message_delivered_again_is_answered_once(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy(),
                             max_text_length=50) as rig:
        event = dm("x" * 51, event_id="Ev0LONG01")
        assert (await rig.post_event(event)).status == 200
        # Slack did not see the 200 in time: the same event, marked as a retry.
        assert (await rig.post_event(event, retry=1)).status == 200
        assert (await rig.post_event(event, retry=2)).status == 200
        # The inbox is handled in order: once this is answered, so are the retries.
        assert (await rig.post_event(dm("short", event_id="Ev0SHORT1"))).status == 200
        replies = await rig.replies(2)
        history = await rig.history("U2147483697")
    assert "too long" in replies[0]["text"] and "51 characters" in replies[0]["text"]
    assert replies[1]["text"] == "echo: short"
    assert len(slack_api.posted()) == 2
    assert [e.text for e in history] == ["short", "echo: short"]
    # The over-long text is nowhere: only the mark that it was answered.
    marks = await redis_keys(redis_client, "segue:token:answered:*")
    assert marks == ["segue:token:answered:slack:T061EG9R6:U2147483697:Ev0LONG01"]
