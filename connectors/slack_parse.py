"""The inbound half of the Slack channel: Events API and interactivity
payloads (already verified) as `Inbound`, or None when the payload is not a
customer's message (bots, edits, joins, other events)."""

from __future__ import annotations

import math
import re
from typing import Any

from bot.core.model import Address, ChannelIdentity, Inbound

CHANNEL = "slack"

# Message subtypes that still carry a person's text; edits, deletions, joins
# and bot posts all come with other subtypes.
CUSTOMER_SUBTYPES = frozenset({"file_share", "thread_broadcast"})
_LEADING_MENTION = re.compile(r"^\s*<@(?P<user>[A-Z0-9]+)(?:\|[^>]*)?>\s*")

# Where slack-bolt reads a payload while routing it, taking Slack's types for
# granted: an id or an object holding one; an object; a list of objects; text.
_ID_FIELDS = ("team", "enterprise", "user", "channel")
_OBJECT_FIELDS = ("event", "view", "container", "message", "previous_message", "item")
_OBJECT_LIST_FIELDS = ("authorizations", "actions", "response_urls")
_TEXT_FIELDS = ("type", "subtype", "channel_type", "callback_id", "command", "action_id")
_NESTING_CHECKED = 3

# How a channel user id keeps team and user apart: see `identity`.
_SEPARATOR = ":"
_ESCAPES = {"%": "%25", _SEPARATOR: "%3A"}
_UNESCAPES = {escaped: raw for raw, escaped in _ESCAPES.items()}
_ESCAPED = re.compile("|".join(_UNESCAPES))


def well_formed(body: object, depth: int = 0) -> bool:
    """Whether a parsed body has Slack's types wherever Bolt reads it without
    checking: anything else would fail inside Bolt rather than be refused."""
    if not isinstance(body, dict):
        return False
    if any(not isinstance(body.get(k), str | dict | None) for k in _ID_FIELDS):
        return False
    if any(not isinstance(body.get(k), str | None) for k in _TEXT_FIELDS):
        return False
    for key in _OBJECT_LIST_FIELDS:
        items = body.get(key)
        if items is not None and not (
            isinstance(items, list) and all(isinstance(i, dict) for i in items)
        ):
            return False
    if body.get("type") == "block_actions" and not (
        body.get("actions") and isinstance(body["actions"][0].get("action_id"), str)
    ):
        return False
    for key in _OBJECT_FIELDS:
        value = body.get(key)
        if value is None:
            continue
        if not isinstance(value, dict):
            return False
        if depth < _NESTING_CHECKED and not well_formed(value, depth + 1):
            return False
    if isinstance(body.get("event"), dict) and not isinstance(body["event"].get("type"), str):
        return False
    return True


def identity(team_id: str, user_id: str) -> ChannelIdentity:
    """A Slack user is only unique within their workspace: the id is team and
    user joined by `:`, each part escaped so that no two pairs share one.

    Real Slack ids hold neither `%` nor `:`, so theirs is the plain
    `TEAM:USER` it has always been and every stored customer keeps its id.
    """
    return ChannelIdentity(CHANNEL, f"{_escape(team_id)}{_SEPARATOR}{_escape(user_id)}")


def identity_parts(user_id: str) -> tuple[str, str] | None:
    """Team and user of a Slack channel user id, or None if it is not one."""
    team, separator, user = user_id.partition(_SEPARATOR)
    if not separator or _SEPARATOR in user:
        return None
    return _unescape(team), _unescape(user)


def _escape(part: str) -> str:
    # `%` first, so that the `%` of an escaped `:` is not escaped again.
    return part.replace("%", _ESCAPES["%"]).replace(_SEPARATOR, _ESCAPES[_SEPARATOR])


def _unescape(part: str) -> str:
    # One pass: `%253A` is an escaped `%3A`, not an escaped `%` then `:`.
    return _ESCAPED.sub(lambda match: _UNESCAPES[match[0]], part)


def parse_event(body: dict[str, Any], *, bot_user_id: str | None) -> Inbound | None:
    """The customer message in an `event_callback`, if it is one.

    Direct messages are answered in the DM; a mention in a channel is
    answered in its thread, which becomes the conversation's address.
    Plain channel messages are left alone: the bot speaks there only when
    mentioned, and a mention also arrives as its own `app_mention` event.
    """
    event = body.get("event")
    if body.get("type") != "event_callback" or not isinstance(event, dict):
        return None
    if not _from_a_person(event, bot_user_id):
        return None
    fields = _strings(body.get("team_id") or event.get("team"), event.get("user"),
                      event.get("channel"), event.get("ts"), body.get("event_id"))
    if fields is None:
        return None
    team_id, user, channel, ts, event_id = fields
    at = _timestamp(ts)
    text = event.get("text") or ""
    if at is None or not isinstance(text, str):
        return None
    kind = event.get("type")
    if kind == "message" and event.get("channel_type") == "im":
        address = Address(CHANNEL, channel)
    elif kind == "app_mention":
        thread = event.get("thread_ts")
        address = Address(CHANNEL, channel, thread if isinstance(thread, str) and thread else ts)
        text = strip_mention(text, bot_user_id)
    else:
        return None
    if not text.strip():
        return None
    return Inbound(
        identity=identity(team_id, user),
        address=address,
        message_id=event_id,
        text=text,
        ts=at,
    )


def parse_action(body: dict[str, Any]) -> Inbound | None:
    """A button press in a `block_actions` payload: its title is the text,
    its value the payload, like a quick reply on the other channels."""
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions") or []
    user = _object(body.get("user"))
    container = _object(body.get("container"))
    message = _object(body.get("message"))
    if not actions or not isinstance(actions[0], dict) or actions[0].get("type") != "button":
        return None
    action = actions[0]
    fields = _strings(
        user.get("team_id") or _object(body.get("team")).get("id"), user.get("id"),
        container.get("channel_id") or _object(body.get("channel")).get("id"),
        container.get("message_ts") or message.get("ts"),
        action.get("action_id"), action.get("action_ts"),
    )
    if fields is None:
        return None
    team_id, user_id, channel, message_ts, action_id, action_ts = fields
    at = _timestamp(action_ts)
    if at is None:
        return None
    title = _object(action.get("text")).get("text")
    # The press answers in the thread the buttons were posted in, if any.
    thread = container.get("thread_ts") or message.get("thread_ts")
    name = user.get("name") or user.get("username")
    return Inbound(
        identity=identity(team_id, user_id),
        address=Address(CHANNEL, channel, thread if isinstance(thread, str) else None),
        # Stable across redeliveries of this press, distinct for another press.
        message_id=f"action:{message_ts}:{action_id}:{action_ts}",
        text=title if isinstance(title, str) else "",
        payload=str(action.get("value") or ""),
        display_name=name if isinstance(name, str) else None,
        ts=at,
    )


def strip_mention(text: str, bot_user_id: str | None) -> str:
    """Drop the leading `<@BOT>` that addressed the message to the bot."""
    match = _LEADING_MENTION.match(text)
    if match and (bot_user_id is None or match["user"] == bot_user_id):
        return text[match.end() :]
    return text


def _from_a_person(event: dict[str, Any], bot_user_id: str | None) -> bool:
    if event.get("bot_id") or event.get("bot_profile"):
        return False
    subtype = event.get("subtype")
    if subtype is not None and subtype not in CUSTOMER_SUBTYPES:
        return False
    return event.get("user") is not None and event.get("user") != bot_user_id


def inbound_to_json(inbound: Inbound) -> dict[str, Any]:
    return {
        "user_id": inbound.identity.user_id,
        "address": inbound.address.to_json(),
        "message_id": inbound.message_id,
        "text": inbound.text,
        "payload": inbound.payload,
        "display_name": inbound.display_name,
        "ts": inbound.ts,
    }


def inbound_from_json(data: dict[str, Any]) -> Inbound:
    return Inbound(
        identity=ChannelIdentity(CHANNEL, str(data["user_id"])),
        address=Address.from_json(data["address"]),
        message_id=str(data["message_id"]),
        text=str(data["text"]),
        payload=data.get("payload"),
        display_name=data.get("display_name"),
        ts=float(data["ts"]),
    )


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _timestamp(value: str) -> float | None:
    """A Slack `ts` ("1763900100.000300") as seconds, or None if it is not one."""
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def _strings(*values: Any) -> list[str] | None:
    """The values if every one is a non-empty string, else None."""
    if all(isinstance(v, str) and v for v in values):
        return list(values)
    return None
