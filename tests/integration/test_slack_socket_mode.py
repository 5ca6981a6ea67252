"""Socket Mode: with an app token the same Bolt app takes events over a
WebSocket opened through `apps.connections.open`, acking each envelope only
once its message is queued."""

from __future__ import annotations

from context_store import RedisContextStore
from tests.fakes.slack_api import FakeSlackApi
from tests.support.policies import EchoButtonsPolicy
from tests.support.slack_rig import APP_TOKEN, dm, running_segue


async def test_socket_mode_events_are_acked_and_answered(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    overrides = {"slack_app_token": APP_TOKEN, "slack_signing_secret": None}
    policy = EchoButtonsPolicy()
    async with running_segue(slack_api, redis_store, policy=policy, **overrides) as rig:
        await slack_api.wait_socket()
        envelope = {"envelope_id": "env-1", "type": "events_api", "accepts_response_payload": False,
                    "retry_attempt": 0, "retry_reason": "",
                    "payload": dm("over the socket", event_id="EvS1")}
        await slack_api.push_envelope(envelope)
        assert (await slack_api.wait_socket_ack("env-1"))["envelope_id"] == "env-1"
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: over the socket"
        # With no signing secret, HTTP events are off rather than unverified.
        response = await rig.client.post("/slack/events", json=dm("http", event_id="EvS2"))
        assert response.status == 404
    assert [c.token for c in slack_api.calls_to("apps.connections.open")] == [APP_TOKEN]
