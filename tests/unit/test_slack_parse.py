"""Parsing Slack payloads into `Inbound`: what is a customer's message, where
the reply goes, and which id makes a redelivery a duplicate."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.errors import BadInput
from bot.core.model import Address, ChannelIdentity
from connectors.slack_parse import (
    identity,
    identity_parts,
    inbound_from_json,
    inbound_to_json,
    interaction_kind,
    missing_part,
    parse_action,
    parse_event,
    response_url_allowed,
    strip_mention,
    well_formed,
)

BOT = "U0BOTUSER"


def callback(event: dict[str, Any], event_id: str = "Ev1") -> dict[str, Any]:
    return {"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event}


def im(**extra: Any) -> dict[str, Any]:
    event = {"type": "message", "channel": "D1", "user": "U1", "text": "hello",
             "ts": "1763900000.000200", "channel_type": "im"}
    event.update(extra)
    return event


def test_a_direct_message_is_answered_in_the_dm() -> None:
    inbound = parse_event(callback(im()), bot_user_id=BOT)
    assert inbound is not None
    assert inbound.identity == ChannelIdentity("slack", "T1:U1")
    assert inbound.address == Address("slack", "D1", None)
    assert inbound.message_id == "Ev1"
    assert (inbound.text, inbound.payload, inbound.ts) == ("hello", None, 1763900000.0002)


def test_a_direct_message_in_a_thread_is_answered_in_that_thread() -> None:
    inbound = parse_event(callback(im(thread_ts="1763899000.000100")), bot_user_id=BOT)
    assert inbound is not None
    assert inbound.address == Address("slack", "D1", "1763899000.000100")
    for odd in ("", ["1763899000.000100"], None):
        inbound = parse_event(callback(im(thread_ts=odd)), bot_user_id=BOT)
        assert inbound is not None and inbound.address == Address("slack", "D1", None)


def test_an_address_stored_before_threads_in_dms_still_reads() -> None:
    inbound = parse_event(callback(im(thread_ts="8.0")), bot_user_id=BOT)
    assert inbound is not None
    stored = inbound_to_json(inbound)
    assert stored["address"] == {"channel": "slack", "target": "D1", "thread": "8.0"}
    assert inbound_from_json(stored) == inbound
    del stored["address"]["thread"]  # how an older worker may have queued it
    assert inbound_from_json(stored).address == Address("slack", "D1", None)


def test_a_mention_is_answered_in_its_thread_without_the_mention() -> None:
    event = {"type": "app_mention", "channel": "C1", "user": "U2", "ts": "5.0",
             "text": f"<@{BOT}> where is my order?"}
    inbound = parse_event(callback(event), bot_user_id=BOT)
    assert inbound is not None
    assert inbound.address == Address("slack", "C1", "5.0")
    assert inbound.text == "where is my order?"
    event["thread_ts"] = "4.0"
    inbound = parse_event(callback(event), bot_user_id=BOT)
    assert inbound is not None and inbound.address.thread == "4.0"


def test_strip_mention_keeps_other_mentions() -> None:
    assert strip_mention(f"<@{BOT}|segue>  hi", BOT) == "hi"
    assert strip_mention("<@U999> hi", BOT) == "<@U999> hi"
    assert strip_mention(f"hi <@{BOT}>", BOT) == f"hi <@{BOT}>"


def test_what_is_not_a_customer_message_is_ignored() -> None:
    ignored = [
        im(subtype="bot_message", bot_id="B1"),
        im(bot_id="B2"),
        im(user=BOT),
        im(subtype="message_changed"),
        im(subtype="channel_join"),
        im(channel_type="channel"),  # mentions arrive as app_mention
        im(text="   "),
        {"type": "reaction_added", "user": "U1"},
    ]
    for event in ignored:
        assert parse_event(callback(event), bot_user_id=BOT) is None, event
    assert parse_event({"type": "url_verification"}, bot_user_id=BOT) is None


def test_file_shares_still_carry_text() -> None:
    inbound = parse_event(callback(im(subtype="file_share", text="x" * 50)), bot_user_id=BOT)
    assert inbound is not None and inbound.text == "x" * 50


def press(**action: Any) -> dict[str, Any]:
    button = {"action_id": "segue_choice_0", "block_id": "b", "type": "button", "value": "p1",
              "text": {"type": "plain_text", "text": "One"}, "action_ts": "9.5"}
    button.update(action)
    return {"type": "block_actions", "user": {"id": "U1", "name": "dana", "team_id": "T1"},
            "team": {"id": "T1"}, "channel": {"id": "D1"},
            "container": {"type": "message", "message_ts": "9.0", "channel_id": "D1"},
            "message": {"ts": "9.0", "text": "Pick"}, "actions": [button]}


def test_a_button_press_is_its_title_and_payload_with_a_stable_id() -> None:
    inbound = parse_action(press())
    assert inbound is not None
    assert (inbound.text, inbound.payload, inbound.display_name) == ("One", "p1", "dana")
    assert inbound.identity == ChannelIdentity("slack", "T1:U1")
    assert inbound.address == Address("slack", "D1", None)
    assert inbound.message_id == parse_action(press()).message_id  # type: ignore[union-attr]
    again = parse_action(press(action_ts="9.9"))
    assert again is not None and again.message_id != inbound.message_id


def test_a_press_in_a_thread_answers_in_the_thread() -> None:
    body = press()
    body["message"]["thread_ts"] = "8.0"
    inbound = parse_action(body)
    assert inbound is not None and inbound.address.thread == "8.0"
    body["container"]["thread_ts"] = "7.0"  # the container says it first
    inbound = parse_action(body)
    assert inbound is not None and inbound.address.thread == "7.0"


def in_a_channel(body: dict[str, Any], *, ephemeral: bool) -> dict[str, Any]:
    body["container"].update({"channel_id": "C1", "is_ephemeral": ephemeral})
    body["channel"] = {"id": "C1", "name": "general"}
    if ephemeral:
        del body["message"]  # Slack sends no message for an ephemeral one
    return body


@pytest.mark.parametrize("ephemeral", [True, False])
def test_a_press_outside_any_thread_in_a_channel_answers_under_its_message(
    ephemeral: bool,
) -> None:
    inbound = parse_action(in_a_channel(press(), ephemeral=ephemeral))
    assert inbound is not None
    assert inbound.address == Address("slack", "C1", "9.0")


def test_a_press_in_a_dm_outside_any_thread_answers_in_the_dm() -> None:
    inbound = parse_action(press())
    assert inbound is not None and inbound.address == Address("slack", "D1", None)
    body = press()
    body["container"]["channel_id"] = body["channel"]["id"] = "G1"  # no D, yet a DM
    body["channel"]["name"] = "directmessage"
    inbound = parse_action(body)
    assert inbound is not None and inbound.address == Address("slack", "G1", None)


def test_non_button_actions_are_ignored() -> None:
    assert parse_action(press(type="static_select")) is None
    assert parse_action({"type": "view_submission"}) is None


def test_buttons_segue_did_not_render_are_no_press() -> None:
    assert parse_action(press(action_id="choice_0")) is None
    assert parse_action(press(action_id="approve", url="https://example.com")) is None
    assert parse_action(press(action_id="x_segue_choice_0")) is None
    assert parse_action(press(action_id="segue_choice_12")) is not None


def test_real_slack_ids_keep_the_channel_user_id_they_always_had() -> None:
    # Customers already stored under these ids must be found again.
    assert identity("T0123ABC", "U0456DEF") == ChannelIdentity("slack", "T0123ABC:U0456DEF")
    assert identity("E01ENTERPRISE", "W0123ABC").user_id == "E01ENTERPRISE:W0123ABC"


@pytest.mark.parametrize(
    ("team", "user"),
    [("T0123ABC", "U0456DEF"), ("T1", "A:B"), ("T1:A", "B"), ("T1", "%3A"), ("%", ":"),
     ("T%3A", "U"), ("T", "%253A"), (":", ":"), ("", ""), ("T%", "%U:")],
)
def test_team_and_user_come_back_from_the_channel_user_id(team: str, user: str) -> None:
    assert identity_parts(identity(team, user).user_id) == (team, user)


def test_no_two_team_and_user_pairs_share_a_channel_user_id() -> None:
    parts = ["", "T1", "A", "B", ":", "%", "%3A", "%25", "A:B", "T1:A", "A%3AB", "%:"]
    ids = {identity(team, user).user_id for team in parts for user in parts}
    assert len(ids) == len(parts) ** 2


def test_a_press_and_a_message_of_odd_ids_are_told_apart() -> None:
    first = parse_event(callback(im(user="A:B")) | {"team_id": "T1"}, bot_user_id=BOT)
    second = parse_event(callback(im(user="B")) | {"team_id": "T1:A"}, bot_user_id=BOT)
    assert first is not None and second is not None
    assert first.identity != second.identity


def test_what_is_no_slack_channel_user_id_has_no_parts() -> None:
    assert identity_parts("T1") is None
    assert identity_parts("T1:A:B") is None


def test_inbound_survives_the_inbox() -> None:
    inbound = parse_action(press())
    assert inbound is not None
    assert inbound_from_json(inbound_to_json(inbound)) == inbound


@pytest.mark.parametrize(
    ("event", "code"),
    [(im(ts="not-a-ts"), "bad_event"), (im(ts="nan"), "bad_event"), (im(channel=5), "bad_event"),
     (im(user={"id": "U1"}), "bad_event"), (im(text={"rich": "text"}), "bad_text"),
     (im(text=42), "bad_text"), (im(text=["hi"]), "bad_text")],
)
def test_a_persons_message_with_fields_of_the_wrong_type_is_refused(
    event: dict[str, Any], code: str
) -> None:
    with pytest.raises(BadInput) as refused:
        parse_event(callback(event), bot_user_id=BOT)
    assert refused.value.code == code
    # Broken events that are no customer message are simply not one.
    event.update({"channel_type": "channel"})
    assert parse_event(callback(event), bot_user_id=BOT) is None


def test_fields_of_the_wrong_type_are_not_a_message() -> None:
    mention = {"type": "app_mention", "channel": "C1", "user": "U1", "text": "hi",
               "ts": "5.0", "thread_ts": ["4.0"]}
    inbound = parse_event(callback(mention), bot_user_id=BOT)
    assert inbound is not None and inbound.address.thread == "5.0"

    assert parse_action(press(action_ts="soon")) is None
    inbound = parse_action(press(text="One"))
    assert inbound is not None and inbound.text == ""


def test_a_press_whose_user_is_not_an_object_is_no_press() -> None:
    body = press()
    body["user"] = "U1"  # the user's id is nowhere else
    assert parse_action(body) is None


@pytest.mark.parametrize(
    ("key", "value"),
    [("team", "T1"), ("channel", "D1"), ("container", "c"), ("message", "m")],
)
def test_a_field_that_is_not_an_object_is_read_from_its_other_place(key: str, value: str) -> None:
    # Team, channel and message ts are each in two places; one is enough.
    body = press()
    body[key] = value
    inbound = parse_action(body)
    assert inbound is not None
    assert inbound.identity == ChannelIdentity("slack", "T1:U1")
    assert inbound.address == Address("slack", "D1", None)
    assert inbound.message_id == "action:9.0:segue_choice_0:9.5"


def test_interactions_are_told_by_their_type_or_command() -> None:
    assert interaction_kind({"command": "/order", "text": "A1", "user_id": "U1"}) == "command"
    for kind in ("shortcut", "message_action", "view_submission", "view_closed",
                 "block_suggestion", "block_actions", "dialog_suggestion"):
        assert interaction_kind({"type": kind}) == kind
    for body in (callback(im()), {"type": "url_verification", "challenge": "c"},
                 {"ssl_check": "1", "token": "t"}, {"type": "brand_new"},
                 {"type": "event_callback", "command": "/order"}):
        assert interaction_kind(body) is None, body


def test_what_a_body_lacks_to_be_answered_is_named() -> None:
    assert missing_part(callback(im())) is None
    assert missing_part({"type": "url_verification", "challenge": "c"}) is None
    assert "event" in (missing_part({"type": "event_callback", "event_id": "Ev1"}) or "")
    for challenge in (None, "", 5):
        problem = missing_part({"type": "url_verification", "challenge": challenge})
        assert problem is not None and "challenge" in problem
    assert missing_part({"command": "/order"}) is None


@pytest.mark.parametrize(
    ("url", "allowed"),
    [("https://hooks.slack.com/app/T1/1/x", True),
     ("https://hooks.slack-gov.com/app/T1/1/x", True),
     ("http://hooks.slack.com/app/T1/1/x", False),
     ("https://hooks.slack.com.evil.example/app", False),
     ("https://evil.example/?https://hooks.slack.com/", False),
     ("https://evil.example@hooks.slack.com/", False),
     ("https://hooks.slack.com\\@evil.example/", False),
     ("http://127.0.0.1:8080/actions/1", True),  # where the Web API is
     ("http://127.0.0.1:8081/actions/1", False),
     ("http://[::1/actions", False),
     ("", False)],
)
def test_only_slacks_response_urls_are_called(url: str, allowed: bool) -> None:
    assert response_url_allowed(url, "http://127.0.0.1:8080/api/") is allowed


def test_slack_payloads_are_well_formed() -> None:
    assert well_formed(callback(im()))
    assert well_formed(callback(im(subtype="message_changed", message={"user": "U1"})))
    assert well_formed(press())
    assert well_formed({"type": "url_verification", "challenge": "c"})
    assert well_formed({"command": "/order", "text": "A1", "user_id": "U1"})


@pytest.mark.parametrize(
    "body",
    [
        [],
        "event_callback",
        None,
        {"type": "event_callback", "event": "hello"},
        {"type": "event_callback", "event": {"text": "no type"}},
        {"type": "event_callback", "event": {"type": ["message"]}},
        {"type": "event_callback", "event": {"type": "message", "user": 5}},
        {"type": "event_callback", "event": {"type": "message", "message": {"channel": 1}}},
        {"type": "event_callback", "authorizations": 5},
        {"type": "event_callback", "authorizations": [5]},
        {"type": 1},
        {"type": "block_actions", "actions": []},
        {"type": "block_actions", "actions": [{"type": "button"}]},
        {"type": "block_actions", "actions": "button"},
        {"type": "view_submission", "view": "modal"},
        {"type": "shortcut", "callback_id": 5},
        {"team": ["T1"]},
    ],
)
def test_bodies_bolt_cannot_route_are_not_well_formed(body: Any) -> None:
    assert not well_formed(body)
