"""`config/slack-manifest.yml` asks for exactly what the Slack connector
uses: the events it answers, the scope of every Web API method it calls and
of every event, no other scope, and its one route for events and
interactivity."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import yaml

from connectors.slack import ROUTE
from connectors.slack_parse import parse_action, parse_event

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "config" / "slack-manifest.yml"
CONNECTOR_MODULES = ("slack.py", "slack_parse.py", "slack_render.py", "slack_send.py")
BOT = "U0BOTUSER"

# The event subscriptions the connector answers. It exports no constant of
# them yet (one in connectors/slack_parse.py would be the single source);
# `test_the_listed_events_are_those_the_parser_answers` ties this list to
# the parser's behaviour meanwhile.
HANDLED_EVENTS = frozenset({"message.im", "app_mention"})

# Slack's event subscriptions, each with an event of its kind as a person
# writes it: the connector answers those it turns into a message.
SUBSCRIPTION_EVENTS: dict[str, dict[str, Any]] = {
    "message.im": {"type": "message", "channel_type": "im", "channel": "D1"},
    "message.channels": {"type": "message", "channel_type": "channel", "channel": "C1"},
    "message.groups": {"type": "message", "channel_type": "group", "channel": "G1"},
    "message.mpim": {"type": "message", "channel_type": "mpim", "channel": "G2"},
    "app_mention": {"type": "app_mention", "channel": "C1", "text": f"<@{BOT}> hello"},
    "app_home_opened": {"type": "app_home_opened", "channel": "D1", "tab": "messages"},
    "reaction_added": {"type": "reaction_added", "reaction": "thumbsup"},
    "member_joined_channel": {"type": "member_joined_channel", "channel": "C1"},
}

# Each scope an event subscription needs (docs.slack.dev/reference/events).
EVENT_SCOPES = {
    "message.im": "im:history",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.mpim": "mpim:history",
    "app_mention": "app_mentions:read",
    "app_home_opened": None,
    "reaction_added": "reactions:read",
    "member_joined_channel": "channels:read",
}

# Each bot scope a Web API method needs (docs.slack.dev/reference/methods);
# None: the method needs none. A method the connector starts to call must
# be added here, with its scope, before this test passes.
METHOD_SCOPES: dict[str, str | None] = {
    "auth.test": None,
    "chat.postMessage": "chat:write",
    "chat.postEphemeral": "chat:write",
    "chat.update": "chat:write",
    "chat.delete": "chat:write",
    "conversations.open": "im:write",
    "users.info": "users:read",
    "reactions.add": "reactions:write",
}

# Called by slack-bolt itself, not in the connector's code: `auth.test`
# on the first request, for the bot's own user id.
BOLT_METHODS = frozenset({"auth.test"})


def manifest() -> dict[str, Any]:
    data = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _method_name(call: ast.Call) -> str | None:
    """The Web API method a call on a Slack client makes, if it is one:
    `client.chat_postMessage(...)` or `client.api_call("chat.postMessage")`."""
    func = call.func
    if not isinstance(func, ast.Attribute):
        return None
    owner = func.value
    owner_name = owner.attr if isinstance(owner, ast.Attribute) else getattr(owner, "id", None)
    if owner_name != "client":
        return None
    if func.attr == "api_call":
        first = call.args[0] if call.args else None
        return first.value if isinstance(first, ast.Constant) else "api_call with no name"
    # slack_sdk names each method after Slack's with `_` for `.`; Slack's
    # method names hold no `_`.
    return func.attr.replace("_", ".")


def methods_called() -> set[str]:
    """Every Web API method the connector's modules call on their client."""
    found: set[str] = set()
    for module in CONNECTOR_MODULES:
        tree = ast.parse((ROOT / "connectors" / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and (method := _method_name(node)) is not None:
                found.add(method)
    return found


def answered_subscriptions() -> set[str]:
    """The subscriptions whose events the parser turns into a customer's message."""
    answered = set()
    for name, event in SUBSCRIPTION_EVENTS.items():
        written = {"user": "U1", "text": "hello", "ts": "1763900000.000200", **event}
        body = {"type": "event_callback", "team_id": "T1", "event_id": "Ev1", "event": written}
        if parse_event(body, bot_user_id=BOT) is not None:
            answered.add(name)
    return answered


def test_the_listed_events_are_those_the_parser_answers() -> None:
    assert answered_subscriptions() == HANDLED_EVENTS


def test_the_bot_events_are_the_events_the_connector_handles() -> None:
    bot_events = manifest()["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(bot_events) == sorted(HANDLED_EVENTS)


def test_the_connector_calls_only_methods_whose_scope_is_known() -> None:
    called = methods_called()
    assert "chat.postMessage" in called  # the scan finds the connector's calls
    assert sorted(called - set(METHOD_SCOPES)) == []


def test_the_scopes_are_exactly_those_the_methods_and_events_need() -> None:
    needed = {METHOD_SCOPES[m] for m in methods_called() | BOLT_METHODS}
    needed |= {EVENT_SCOPES[e] for e in HANDLED_EVENTS}
    needed.discard(None)
    scopes = manifest()["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert sorted(scopes) == sorted(needed)
    assert "user" not in manifest()["oauth_config"]["scopes"]


def test_events_and_interactivity_go_to_the_connector_route() -> None:
    settings = manifest()["settings"]
    assert settings["event_subscriptions"]["request_url"].endswith(ROUTE)
    assert settings["interactivity"]["request_url"].endswith(ROUTE)
    assert ROUTE == "/slack/events"


def test_interactivity_is_on_for_the_buttons_segue_posts() -> None:
    press = {
        "type": "block_actions", "user": {"id": "U1", "team_id": "T1"},
        "container": {"channel_id": "D1", "message_ts": "1.0"},
        "actions": [{"type": "button", "action_id": "segue_choice_0", "value": "/yes",
                     "text": {"type": "plain_text", "text": "Yes"}, "action_ts": "2.0"}],
    }
    assert parse_action(press) is not None
    assert manifest()["settings"]["interactivity"]["is_enabled"] is True


def test_customers_can_write_to_the_bot_and_no_command_is_declared() -> None:
    features = manifest()["features"]
    assert features["app_home"]["messages_tab_enabled"] is True
    assert features["app_home"]["messages_tab_read_only_enabled"] is False
    assert features["bot_user"]["display_name"]
    # The connector answers slash commands and shortcuts only with "not
    # supported here": declaring one would offer what it does not do.
    assert "slash_commands" not in features and "shortcuts" not in features
    assert manifest()["settings"]["socket_mode_enabled"] is False
