"""Every kind of request Slack sends to `/slack/events`, from outside: signed
requests to Segue's real app, replies through slack_sdk to the local fake
Web API. What Segue does not support is acknowledged as Slack asks of each
kind and stores nothing; answers go where the customer wrote, threads
included; a redelivery is never answered twice."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
import redis.asyncio as aioredis

from connectors.texts import NOT_SUPPORTED_HERE
from context_store import RedisContextStore
from tests.fakes.slack_api import BOT_ID, BOT_USER_ID, TEAM_ID, FakeSlackApi
from tests.support.policies import EchoButtonsPolicy
from tests.support.slack_rig import (
    APP_TOKEN,
    BOT_AUTH,
    SlackRig,
    block_suggestion,
    dialog_suggestion,
    dm,
    mention,
    press,
    refused,
    running_segue,
    stored_keys,
)

USER = {"id": "U2147483697", "username": "dana", "name": "dana", "team_id": TEAM_ID}
TEAM = {"id": TEAM_ID, "domain": "example"}
DM = {"id": "D024BE91L", "name": "directmessage"}
HOOK = "https://hooks.slack.com/actions/T061EG9R6/1234567890/abcdefgh"
MODAL = {"id": "V0PNCHHK2", "team_id": TEAM_ID, "type": "modal", "callback_id": "refund",
         "private_metadata": "", "hash": "1763900009.abcd", "blocks": [],
         "state": {"values": {"amount": {"value": {"type": "plain_text_input",
                                                   "value": "my card is 4111"}}}},
         "title": {"type": "plain_text", "text": "Refund"}, "app_id": "A0PNCHHK2",
         "bot_id": BOT_ID, "root_view_id": "V0PNCHHK2", "previous_view_id": None}


# Interactions as Slack posts them (form-encoded; the JSON ones as `payload`).

def slash_command(text: str = "A1001") -> dict[str, str]:
    return {"token": "XXYYZZ", "team_id": TEAM_ID, "team_domain": "example",
            "channel_id": "C0LAN2Q65", "channel_name": "general", "user_id": USER["id"],
            "user_name": "dana", "command": "/order", "text": text, "api_app_id": "A0PNCHHK2",
            "is_enterprise_install": "false", "response_url": HOOK,
            "trigger_id": "13345224609.738474920.8088930838d88f008e0"}


def global_shortcut() -> dict[str, Any]:
    return {"type": "shortcut", "token": "XXYYZZ", "action_ts": "1763900006.000600",
            "team": TEAM, "user": USER, "callback_id": "new_order",
            "trigger_id": "944799105734.773906753841.38b5894552bdd4a780554ee59d1f3638"}


def message_shortcut(response_url: str = HOOK) -> dict[str, Any]:
    return {"type": "message_action", "token": "XXYYZZ", "action_ts": "1763900006.000600",
            "team": TEAM, "user": USER, "channel": {"id": "C0LAN2Q65", "name": "general"},
            "callback_id": "track_this", "trigger_id": "111.222.xxx",
            "message_ts": "1763900100.000300",
            "message": {"type": "message", "user": "U061F7AUR", "ts": "1763900100.000300",
                        "text": "where is my order?", "team": TEAM_ID},
            "response_url": response_url}


def view_submission() -> dict[str, Any]:
    return {"type": "view_submission", "team": TEAM, "user": USER, "api_app_id": "A0PNCHHK2",
            "token": "XXYYZZ", "trigger_id": "12345.98765.abcd2358fdea", "view": MODAL,
            "response_urls": []}


def view_closed() -> dict[str, Any]:
    return {"type": "view_closed", "team": TEAM, "user": USER, "api_app_id": "A0PNCHHK2",
            "token": "XXYYZZ", "view": MODAL, "is_cleared": False}


def dialog_submission() -> dict[str, Any]:
    return {"type": "dialog_submission", "token": "XXYYZZ", "action_ts": "1763900008.000800",
            "team": TEAM, "user": {"id": USER["id"], "name": "dana"}, "channel": DM,
            "submission": {"order": "my card is 4111"}, "callback_id": "report",
            "response_url": HOOK, "state": ""}


def attachment_press() -> dict[str, Any]:
    """A button of a legacy message attachment."""
    return {"type": "interactive_message", "actions": [{"name": "ok", "type": "button",
                                                        "value": "ok"}],
            "callback_id": "legacy", "team": TEAM, "channel": DM,
            "user": {"id": USER["id"], "name": "dana"}, "action_ts": "1763900008.000800",
            "message_ts": "1763900001.000400", "attachment_id": "1", "token": "XXYYZZ",
            "is_app_unfurl": False, "response_url": HOOK, "trigger_id": "13345.7384.8088"}


def block_action(action: dict[str, Any], container: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"type": "block_actions", "user": USER, "api_app_id": "A0PNCHHK2",
                            "token": "XXYYZZ", "container": container,
                            "trigger_id": "12466734323.1395872398.8bd2e1d9a2f4b", "team": TEAM,
                            "actions": [{"block_id": "b", "action_ts": "1763900005.123456",
                                         **action}]}
    if container["type"] == "message":
        body.update(channel=DM, response_url=HOOK,
                    message={"type": "message", "user": BOT_USER_ID,
                             "ts": container["message_ts"], "text": "What would you like?"})
    else:
        body["view"] = MODAL
    return body


IN_A_DM = {"type": "message", "message_ts": "1763900001.000400", "channel_id": "D024BE91L",
           "is_ephemeral": False}
IN_A_MODAL = {"type": "view", "view_id": "V0PNCHHK2"}


def menu_choice() -> dict[str, Any]:
    option = {"text": {"type": "plain_text", "text": "Express"}, "value": "express"}
    return block_action({"type": "static_select", "action_id": "shipping",
                         "selected_option": option}, IN_A_DM)


def foreign_button() -> dict[str, Any]:
    """The fixtures' press: a button Segue never renders (its are `segue_choice_N`)."""
    return block_action({"type": "button", "action_id": "choice_0", "value": "order_status",
                         "text": {"type": "plain_text", "text": "Order status"}}, IN_A_DM)


def modal_button() -> dict[str, Any]:
    return block_action({"type": "button", "action_id": "segue_choice_0", "value": "p1",
                         "text": {"type": "plain_text", "text": "One"}}, IN_A_MODAL)


def as_payload(make: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, str]]:
    return lambda: {"payload": json.dumps(make())}


# Each kind, and the body that acknowledges it (None: empty).
UNSUPPORTED: dict[str, tuple[Callable[[], dict[str, str]], dict[str, Any] | None]] = {
    "slash_command": (slash_command,
                      {"response_type": "ephemeral", "text": NOT_SUPPORTED_HERE}),
    "global_shortcut": (as_payload(global_shortcut), None),
    "message_shortcut": (as_payload(message_shortcut), None),
    "view_submission": (as_payload(view_submission), None),  # closes the modal
    "view_closed": (as_payload(view_closed), None),
    "block_suggestion": (as_payload(lambda: block_suggestion("A10")), {"options": []}),
    "dialog_suggestion": (as_payload(lambda: dialog_suggestion("A10")), {"options": []}),
    "dialog_submission": (as_payload(dialog_submission), None),  # closes the dialog
    "legacy_attachment_press": (as_payload(attachment_press), None),
    "menu_choice": (as_payload(menu_choice), None),
    "button_segue_did_not_render": (as_payload(foreign_button), None),
    "button_in_a_modal": (as_payload(modal_button), None),
}


async def answered_after(rig: SlackRig, text: str, event_id: str) -> None:
    """A DM sent now is the only message answered and stored: one worker
    handles the inbox in order, so nothing before it is still pending."""
    await rig.post_event(dm(text, event_id=event_id))
    (reply,) = await rig.replies(1)
    assert reply["text"] == f"echo: {text}"
    assert len(rig.api.posted()) == 1
    assert [e.text for e in await rig.history(USER["id"])] == [text, f"echo: {text}"]


@pytest.mark.parametrize(("make", "answer"), UNSUPPORTED.values(), ids=UNSUPPORTED.keys())
async def test_what_segue_does_not_support_is_acknowledged_as_slack_asks_and_stores_nothing(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    make: Callable[[], dict[str, str]], answer: dict[str, Any] | None,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        before = refused("unsupported_interaction")
        for retry in (None, 1):  # X-Slack-Retry-Num changes nothing
            response = await rig.post_form(make(), retry=retry)
            assert response.status == 200
            if answer is None:
                assert await response.text() == ""
            else:
                assert await response.json() == answer
        assert refused("unsupported_interaction") == before + 2
        assert not any((await stored_keys(redis_client)).values())
        await answered_after(rig, "after", "EvI1")


async def test_a_message_shortcut_gets_one_ephemeral_notice_at_its_response_url(
    slack_api: FakeSlackApi, redis_store: RedisContextStore,
) -> None:
    async with (
        FakeSlackApi(token="xoxb-elsewhere") as elsewhere,
        running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig,
    ):
        first = message_shortcut(slack_api.response_url("T061EG9R6/1/first"))
        assert (await rig.post_action(first)).status == 200
        (notice,) = await slack_api.wait_for("response_url")
        assert notice.args == {"_path": "T061EG9R6/1/first", "response_type": "ephemeral",
                               "replace_original": False, "text": NOT_SUPPORTED_HERE}
        # A redelivery, and a response URL that is not Slack's, get no notice.
        assert (await rig.post_action(first, retry=1)).status == 200
        foreign = message_shortcut(elsewhere.response_url("T061EG9R6/1/foreign"))
        assert (await rig.post_action(foreign)).status == 200
        last = message_shortcut(slack_api.response_url("T061EG9R6/1/last"))
        assert (await rig.post_action(last)).status == 200
        await slack_api.wait_for("response_url", 2)
        assert [r["_path"] for r in slack_api.responses()] == ["T061EG9R6/1/first",
                                                              "T061EG9R6/1/last"]
        assert elsewhere.calls == []
        await answered_after(rig, "after", "EvI2")


async def test_socket_mode_acknowledges_each_kind_in_its_envelope(
    slack_api: FakeSlackApi, redis_store: RedisContextStore,
) -> None:
    overrides = {"slack_app_token": APP_TOKEN, "slack_signing_secret": None}
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy(),
                             **overrides) as rig:
        await slack_api.wait_socket()
        envelopes = [("slash_commands", slash_command(), {"response_type": "ephemeral",
                                                          "text": NOT_SUPPORTED_HERE}),
                     ("interactive", block_suggestion("A10"), {"options": []}),
                     ("interactive", view_submission(), None)]
        for number, (kind, payload, answer) in enumerate(envelopes):
            envelope_id = f"env-{number}"
            await slack_api.push_envelope({"envelope_id": envelope_id, "type": kind,
                                           "accepts_response_payload": True,
                                           "payload": payload})
            ack = await slack_api.wait_socket_ack(envelope_id)
            assert ack.get("payload") == answer, kind
        await slack_api.push_envelope({"envelope_id": "env-dm", "type": "events_api",
                                       "accepts_response_payload": False,
                                       "payload": dm("after", event_id="EvI3")})
        (reply,) = await rig.replies(1)
        assert reply["text"] == "echo: after"
        assert [e.text for e in await rig.history(USER["id"])] == ["after", "echo: after"]


EVENT_CALLBACK = {"token": "XXYYZZ", "team_id": TEAM_ID, "api_app_id": "A0PNCHHK2",
                  "type": "event_callback", "event_id": "EvI4", "event_time": 1763900000,
                  "authorizations": BOT_AUTH}
UNANSWERABLE = {
    "event_callback_without_event": (EVENT_CALLBACK, "event"),
    "url_verification_without_challenge": ({"token": "XXYYZZ", "type": "url_verification"},
                                           "challenge"),
    "url_verification_with_a_null_challenge": ({"type": "url_verification", "challenge": None},
                                               "challenge"),
    "url_verification_with_a_number": ({"type": "url_verification", "challenge": 5},
                                       "challenge"),
}


@pytest.mark.parametrize(("body", "lacking"), UNANSWERABLE.values(), ids=UNANSWERABLE.keys())
async def test_a_body_lacking_what_makes_it_answerable_is_refused_with_400(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    body: dict[str, Any], lacking: str,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        before = refused("bad_body")
        response = await rig.post_event(body)
        assert response.status == 400
        answer = await response.json()
        assert answer["error"] == "bad_body" and lacking in answer["message"]
        assert refused("bad_body") == before + 1
        assert not any((await stored_keys(redis_client)).values())
        await answered_after(rig, "after", "EvI5")


async def test_slacks_own_notices_are_acknowledged(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        limited = {"token": "XXYYZZ", "type": "app_rate_limited", "team_id": TEAM_ID,
                   "minute_rate_limited": 1763900040, "api_app_id": "A0PNCHHK2"}
        assert (await rig.post_event(limited)).status == 200
        ssl_check = await rig.post_form({"ssl_check": "1", "token": "XXYYZZ"})
        assert ssl_check.status == 200
        assert not any((await stored_keys(redis_client)).values())
        await answered_after(rig, "after", "EvI6")


@pytest.mark.parametrize("text", [{"type": "rich_text"}, 42, ["where is my order"]])
async def test_a_message_whose_text_is_not_a_string_is_refused_and_counted_not_answered(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    text: Any,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        before = refused("bad_text")
        body = dm("placeholder", event_id="EvI7")
        body["event"]["text"] = text
        # Acknowledged all the same: refused, Slack would only send it again.
        assert (await rig.post_event(body)).status == 200
        assert (await rig.post_event(body, retry=1)).status == 200
        assert refused("bad_text") == before + 2
        assert not any((await stored_keys(redis_client)).values())
        await answered_after(rig, "after", "EvI8")


async def test_a_dm_written_in_a_thread_is_answered_in_that_thread_once(
    slack_api: FakeSlackApi, redis_store: RedisContextStore,
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        body = dm("in a thread", event_id="EvI9", thread_ts="1763899000.000100")
        assert (await rig.post_event(body)).status == 200
        assert (await rig.post_event(body, retry=1)).status == 200
        await rig.post_event(dm("at the top", event_id="EvIA"))
        threaded, top = await rig.replies(2)
        assert (threaded["channel"], threaded["thread_ts"]) == ("D024BE91L", "1763899000.000100")
        assert threaded["text"] == "echo: in a thread"
        assert top["text"] == "echo: at the top" and "thread_ts" not in top
        assert len(slack_api.posted()) == 2


async def test_a_press_on_an_ephemeral_message_in_a_channel_is_answered_in_a_thread(
    slack_api: FakeSlackApi, redis_store: RedisContextStore,
) -> None:
    customer = "U061F7AUR"
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        asked = mention(f"<@{BOT_USER_ID}> where is my order?", event_id="EvIB",
                        ts="1763900100.000300")
        await rig.post_event(asked)
        (menu,) = await rig.replies(1)
        assert (menu["channel"], menu["thread_ts"]) == ("C0LAN2Q65", "1763900100.000300")

        # The same buttons shown to the customer alone, at the top of the channel.
        on_top = press({**menu, "thread_ts": None}, 0, user=customer, ephemeral=True)
        assert (await rig.post_action(on_top)).status == 200
        assert (await rig.post_action(on_top, retry=1)).status == 200
        # ...and inside the thread.
        in_thread = press(menu, 1, user=customer, ephemeral=True)
        assert (await rig.post_action(in_thread)).status == 200
        _, under_it, threaded = await rig.replies(3)
        assert under_it["channel"] == "C0LAN2Q65"
        assert under_it["thread_ts"] == menu["_ts"]  # under the message pressed
        assert under_it["text"] == "echo: payload p1"
        assert (threaded["thread_ts"], threaded["text"]) == ("1763900100.000300",
                                                            "echo: payload p2")
        await rig.post_event(mention(f"<@{BOT_USER_ID}> thanks", event_id="EvIC"))
        await rig.replies(4)
        assert len(slack_api.posted()) == 4  # the redelivered press was not answered again


# Events that are no customer's message, in the shapes Slack sends them.
TS = {"ts": "1763900002.000500", "event_ts": "1763900002.000500"}
IN_DM = {"channel": "D024BE91L", "channel_type": "im"}
OTHER_APP = {"id": "B0OTHERAPP", "deleted": False, "name": "other-app", "updated": 1763800000,
             "app_id": "A0OTHERAPP", "team_id": TEAM_ID,
             "icons": {"image_36": "https://a.slack-edge.com/80588/img/plugins/app/bot_36.png"}}
EARLIER = {"type": "message", "text": "where is my order", "user": USER["id"], "team": TEAM_ID,
           "ts": "1763900000.000200"}
NOT_MESSAGES: dict[str, dict[str, Any]] = {
    "bot_message": {"type": "message", "subtype": "bot_message", "bot_id": BOT_ID,
                    "text": "What's your order number?", **TS, **IN_DM},
    "app_bot_with_a_user": {"type": "message", "bot_id": "B0OTHERAPP", "user": "U0OTHERBOT",
                            "text": "Hi there!", "team": TEAM_ID, "bot_profile": OTHER_APP,
                            **TS, **IN_DM},
    "own_post": {"type": "message", "bot_id": BOT_ID, "user": BOT_USER_ID, "team": TEAM_ID,
                 "text": "What's your order number?", **TS, **IN_DM},
    "edit": {"type": "message", "subtype": "message_changed", "hidden": True,
             "message": {**EARLIER, "text": "where is my order A1001",
                         "edited": {"user": USER["id"], "ts": "1763900002.000000"}},
             "previous_message": EARLIER, **TS, **IN_DM},
    "deletion": {"type": "message", "subtype": "message_deleted", "hidden": True,
                 "deleted_ts": EARLIER["ts"], "previous_message": EARLIER, **TS, **IN_DM},
    "thread_reply_notice": {"type": "message", "subtype": "message_replied", "hidden": True,
                            "message": {**EARLIER, "thread_ts": EARLIER["ts"],
                                        "reply_count": 1}, **TS, **IN_DM},
    "channel_join": {"type": "message", "subtype": "channel_join", "user": USER["id"],
                     "text": f"<@{USER['id']}> has joined the channel", "channel": "C0LAN2Q65",
                     "channel_type": "channel", **TS},
    "bot_mention": {"type": "app_mention", "user": "U0OTHERBOT", "bot_id": "B0OTHERAPP",
                    "bot_profile": OTHER_APP, "text": f"<@{BOT_USER_ID}> ping",
                    "channel": "C0LAN2Q65", "team": TEAM_ID, **TS},
    "reaction": {"type": "reaction_added", "user": USER["id"], "reaction": "thumbsup",
                 "item": {"type": "message", "channel": "D024BE91L", "ts": EARLIER["ts"]},
                 "item_user": BOT_USER_ID, "event_ts": TS["event_ts"]},
}


@pytest.mark.parametrize("event", NOT_MESSAGES.values(), ids=NOT_MESSAGES.keys())
async def test_bots_edits_deletions_and_other_events_are_acknowledged_never_answered(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, redis_client: aioredis.Redis,
    event: dict[str, Any],
) -> None:
    async with running_segue(slack_api, redis_store, policy=EchoButtonsPolicy()) as rig:
        body = {**EVENT_CALLBACK, "event_id": "EvID", "event": event}
        for retry in (None, 1):
            assert (await rig.post_event(body, retry=retry)).status == 200
        assert not any((await stored_keys(redis_client)).values())
        await answered_after(rig, "after", "EvIE")
