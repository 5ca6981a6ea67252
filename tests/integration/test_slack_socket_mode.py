"""Socket Mode: with an app token the same Bolt app takes events over a
WebSocket opened through `apps.connections.open`, acking each envelope only
once its message is queued."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.integration.test_slack_events import EchoPolicy
from tests.support.slack_rig import TOKEN, dm, running_segue

APP_TOKEN = "xapp-1-A0PNCHHK2-1234567890-abcdef"


@pytest.fixture
async def api() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi(token=TOKEN, app_token=APP_TOKEN) as fake:
        yield fake


@pytest.fixture
async def store(redis_url: str) -> AsyncIterator[RedisContextStore]:
    redis_store = RedisContextStore.from_url(redis_url, inbox_stale_ms=200)
    yield redis_store
    await redis_store.close()


async def test_socket_mode_events_are_acked_and_answered(
    api: FakeSlackApi, store: RedisContextStore
) -> None:
    overrides = {"slack_app_token": APP_TOKEN, "slack_signing_secret": None}
    async with running_segue(api, store, policy=EchoPolicy(), **overrides) as rig:
        await api.wait_socket()
        envelope = {"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                    "retry_attempt": 0, "retry_reason": "",
                    "payload": dm("over the socket", event_id="EvS1")}
        await api.push_envelope(envelope)
        assert (await api.wait_socket_ack("env-1"))["envelope_id"] == "env-1"
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: over the socket"
        # With no signing secret, HTTP events are off rather than unverified.
        response = await rig.client.post("/slack/events", json=dm("http", event_id="EvS2"))
        assert response.status == 404
    assert [c.token for c in api.calls_to("apps.connections.open")] == [APP_TOKEN]
