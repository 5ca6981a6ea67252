"""Slack, from outside: signed requests to `/slack/events` of a running
Segue. Users whose team and user ids join alike stay two customers, and
customer text reaches the log only at DEBUG with `log_customer_text` on."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest

from bot.assembly.log_setup import BODY_LOGGERS, setup_logging
from bot.core.model import Outbound
from bot.core.policy import TurnContext
from connectors.slack_parse import identity
from context_store import RedisContextStore
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlackApi
from tests.support.slack_rig import (
    block_suggestion,
    dialog_suggestion,
    running_segue,
    settings_for,
)

CARD = "my card is 4111 1111 1111 1111"
REPLY = "Parcel ZQ-7781 leaves the depot on Tuesday"


class CustomerPolicy:
    """Answers with the customer the message was taken for."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return [Outbound(text=f"customer {turn.customer_id}")]


class FixedReply:
    """Answers every message with `REPLY`, which no request contains."""

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        return [Outbound(text=REPLY)]


@pytest.fixture
def body_logger_levels() -> Iterator[None]:
    """The log set-up changes process-wide levels: put them back afterwards."""
    loggers = [logging.getLogger(name) for name in BODY_LOGGERS]
    levels = [logger.level for logger in loggers]
    yield
    for logger, level in zip(loggers, levels, strict=True):
        logger.setLevel(level)


def message_im(*, team: str, user: str, channel: str, text: str, event_id: str) -> dict[str, Any]:
    """A `message.im` event callback as Slack sends it, for any team and user."""
    ts = f"{time.time():.6f}"
    return {
        "token": "XXYYZZ", "team_id": team, "api_app_id": "A0PNCHHK2", "type": "event_callback",
        "event": {"type": "message", "channel": channel, "user": user, "text": text, "ts": ts,
                  "event_ts": ts, "channel_type": "im", "team": team,
                  "client_msg_id": "5b5c6b2e-6f1d-4d3a-9a55-0f7f0c1b9f20"},
        "event_id": event_id, "event_time": int(float(ts)),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": BOT_USER_ID,
                            "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    }


async def test_users_whose_ids_join_alike_are_two_customers(
    slack_api: FakeSlackApi, redis_store: RedisContextStore
) -> None:
    # Joined with a bare `:` both would be "T1:A:B".
    writers = [("T1", "A:B", "D0000001", "first writer"), ("T1:A", "B", "D0000002", "second")]
    async with running_segue(slack_api, redis_store, policy=CustomerPolicy()) as rig:
        for number, (team, user, channel, text) in enumerate(writers, start=1):
            body = message_im(team=team, user=user, channel=channel, text=text,
                              event_id=f"EvC{number}")
            assert (await rig.post_event(body)).status == 200
            await rig.replies(number)
        replies = {r["channel"]: r["text"] for r in await rig.replies(2)}
        assert replies["D0000001"] != replies["D0000002"]

        for team, user, channel, text in writers:
            customer = await redis_store.resolve_customer(identity(team, user), "not-yet-seen")
            assert replies[channel] == f"customer {customer}"
            assert await redis_store.identities(customer) == [identity(team, user)]
            history = await redis_store.history(customer, 10)
            assert [e.text for e in history if e.sender == "customer"] == [text]


@pytest.mark.parametrize("payload", [block_suggestion, dialog_suggestion])
async def test_what_a_user_types_into_a_menu_is_answered_but_never_logged(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, caplog: pytest.LogCaptureFixture,
    payload: Any,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_segue(slack_api, redis_store) as rig:
        response = await rig.post_action(payload(CARD))
        assert response.status == 200
        assert await response.json() == {"options": []}
    assert caplog.records  # the capture was on
    assert "4111" not in caplog.text


async def test_an_unknown_request_answers_404_and_logs_one_line_without_its_body(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    unknown = {**block_suggestion(CARD), "type": "brand_new_kind"}
    async with running_segue(slack_api, redis_store) as rig:
        response = await rig.post_action(unknown)
        assert response.status == 404
        assert await response.json() == {"error": "unhandled request"}
    assert "4111" not in caplog.text
    # Start-up warnings (an unset setting) are not about the request.
    (line,) = [r for r in caplog.records
               if r.levelno >= logging.WARNING and r.name != "bot.assembly.app"]
    assert "brand_new_kind" in line.getMessage()
    assert "\n" not in line.getMessage()


@pytest.mark.parametrize("allowed", [False, True])
async def test_reply_text_is_logged_at_debug_only_when_allowed(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, caplog: pytest.LogCaptureFixture,
    body_logger_levels: None, allowed: bool,
) -> None:
    setup_logging(settings_for(slack_api, log_customer_text=allowed))
    caplog.set_level(logging.DEBUG)
    async with running_segue(slack_api, redis_store, policy=FixedReply(),
                             log_customer_text=allowed) as rig:
        body = message_im(team=TEAM_ID, user="U2147483697", channel="D024BE91L",
                          text=CARD, event_id="EvL1")
        assert (await rig.post_event(body)).status == 200
        (reply,) = await rig.replies(1)
        assert reply["text"] == REPLY
    assert caplog.records  # the capture was on
    assert (REPLY in caplog.text) is allowed
    if not allowed:
        assert "4111" not in caplog.text
