"""Parsing Slack payloads into `Inbound`: what is a customer's message, where
the reply goes, and which id makes a redelivery a duplicate."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.model import Address, ChannelIdentity
from connectors.slack_parse import (
    identity,
    identity_parts,
    inbound_from_json,
    inbound_to_json,
    parse_action,
    parse_event,
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


def test_non_button_actions_are_ignored() -> None:
    assert parse_action(press(type="static_select")) is None
    assert parse_action({"type": "view_submission"}) is None


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


def test_fields_of_the_wrong_type_are_not_a_message() -> None:
    assert parse_event(callback(im(ts="not-a-ts")), bot_user_id=BOT) is None
    assert parse_event(callback(im(ts="nan")), bot_user_id=BOT) is None
    assert parse_event(callback(im(text={"rich": "text"})), bot_user_id=BOT) is None
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
