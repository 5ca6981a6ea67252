"""The inbound half of the Slack channel: Events API and interactivity
payloads (already verified) as `Inbound`, or None when the payload is not a
customer's message (bots, edits, joins, other events); what kind of request
a payload is, and what makes one unanswerable."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from bot.core.errors import BadInput
from bot.core.model import Address, ChannelIdentity, Inbound
from connectors.slack_render import ACTION_PREFIX

CHANNEL = "slack"
# How much of a payload or event type the log keeps.
KIND_MAX = 40

# Interaction payloads by their `type`; slash commands have none and are
# told by their `command` field. Of all these Segue takes only the presses
# of its own buttons; the rest are acknowledged as Slack asks of each.
INTERACTIONS = frozenset({
    "block_actions", "block_suggestion", "shortcut", "message_action", "view_submission",
    "view_closed", "interactive_message", "dialog_submission", "dialog_cancellation",
    "dialog_suggestion", "workflow_step_edit",
})
COMMAND = "command"
# Where a message shortcut's response URL may point: Slack's own hooks.
RESPONSE_URL_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})

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


def interaction_kind(body: dict[str, Any]) -> str | None:
    """`command` for a slash command, the `type` of any other interaction,
    None for what is no interaction (events, url_verification, ssl_check)."""
    kind = body.get("type")
    if kind is None and isinstance(body.get(COMMAND), str):
        return COMMAND
    return kind if kind in INTERACTIONS else None


def missing_part(body: dict[str, Any]) -> str | None:
    """What a well-formed body lacks to be answered at all, for a 400: Slack
    never sends an event callback without its event, nor a URL check
    without its challenge."""
    kind = body.get("type")
    if kind == "event_callback" and not isinstance(body.get("event"), dict):
        return "an event_callback without its event"
    challenge = body.get("challenge")
    if kind == "url_verification" and not (isinstance(challenge, str) and challenge):
        return "a url_verification without its challenge"
    return None


def response_url_allowed(url: str, api_base_url: str) -> bool:
    """Whether a payload's response URL is Slack's: on its hooks host over
    HTTPS, or where the Web API itself is served from (a Slack stand-in).
    Anything else is never called, signed payload or not."""
    try:
        parts, api = urlsplit(url), urlsplit(api_base_url)
    except ValueError:
        return False
    if "@" in parts.netloc or "\\" in parts.netloc:
        return False  # user info or a backslash: parsers disagree on the host
    if parts.scheme == "https" and parts.hostname in RESPONSE_URL_HOSTS:
        return True
    return bool(parts.netloc) and (parts.scheme, parts.netloc) == (api.scheme, api.netloc)


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

    Direct messages are answered in the DM, in the thread they were written
    in if any; a mention in a channel is answered in its thread, which
    becomes the conversation's address. Plain channel messages are left
    alone: the bot speaks there only when mentioned, and a mention also
    arrives as its own `app_mention` event.

    Raises `BadInput` for a person's message that Slack could not have sent
    so: text that is not a string (`bad_text`), an id or ts missing or of
    the wrong type (`bad_event`).
    """
    event = body.get("event")
    if body.get("type") != "event_callback" or not isinstance(event, dict):
        return None
    if not _from_a_person(event, bot_user_id):
        return None
    kind = event.get("type")
    direct = kind == "message" and event.get("channel_type") == "im"
    if not (direct or kind == "app_mention"):
        return None
    text = event.get("text")
    if text is None:
        text = ""  # a file shared without a word
    if not isinstance(text, str):
        raise BadInput("bad_text", "a Slack message whose text is not a string")
    fields = _strings(body.get("team_id") or event.get("team"), event.get("user"),
                      event.get("channel"), event.get("ts"), body.get("event_id"))
    at = _timestamp(fields[3]) if fields is not None else None
    if fields is None or at is None:
        raise BadInput("bad_event", "a Slack message without its team, user, channel, ts or id")
    team_id, user, channel, ts, event_id = fields
    thread = event.get("thread_ts")
    thread = thread if isinstance(thread, str) and thread else None
    if direct:
        address = Address(CHANNEL, channel, thread)
    else:
        address = Address(CHANNEL, channel, thread or ts)
        text = strip_mention(text, bot_user_id)
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
    """A press of one of Segue's buttons in a `block_actions` payload: its
    title is the text, its value the payload, like a quick reply on the
    other channels. Other actions (menus, buttons Segue did not render) are
    no message."""
    if body.get("type") != "block_actions":
        return None
    actions = body.get("actions") or []
    user = _object(body.get("user"))
    container = _object(body.get("container"))
    message = _object(body.get("message"))
    if not actions or not isinstance(actions[0], dict) or not _ours(actions[0]):
        return None
    action = actions[0]
    channel_object = _object(body.get("channel"))
    fields = _strings(
        user.get("team_id") or _object(body.get("team")).get("id"), user.get("id"),
        container.get("channel_id") or channel_object.get("id"),
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
    thread = container.get("thread_ts") or message.get("thread_ts")
    if not (isinstance(thread, str) and thread):
        # Outside a DM the answer goes under the message pressed (an
        # ephemeral one has no thread of its own), never to the top of a
        # channel for everyone; in a DM it is simply the next message.
        direct = channel.startswith("D") or channel_object.get("name") == "directmessage"
        thread = None if direct else message_ts
    name = user.get("name") or user.get("username")
    return Inbound(
        identity=identity(team_id, user_id),
        address=Address(CHANNEL, channel, thread),
        # Stable across redeliveries of this press, distinct for another press.
        message_id=f"action:{message_ts}:{action_id}:{action_ts}",
        text=title if isinstance(title, str) else "",
        payload=str(action.get("value") or ""),
        display_name=name if isinstance(name, str) else None,
        ts=at,
    )


def _ours(action: dict[str, Any]) -> bool:
    """Whether an action is a press of a button Segue rendered."""
    action_id = action.get("action_id")
    return (action.get("type") == "button" and isinstance(action_id, str)
            and action_id.startswith(ACTION_PREFIX))


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


def request_kind(body: Mapping[str, Any]) -> str:
    """What a request is, for the log: its payload type, and the event type of
    an event, never a field a user could have typed."""
    kind = body.get("type")
    event = body.get("event")
    event_type = event.get("type") if isinstance(event, dict) else None
    parts = [p for p in (kind, event_type) if isinstance(p, str)]
    return "/".join(p[:KIND_MAX] for p in parts) or "no type"


def event_turn_id(body: Mapping[str, Any]) -> str | None:
    """The turn id of an event's log lines: its `event_id`, which
    `parse_event` makes the message's id too (None: a random one)."""
    event_id = body.get("event_id")
    return event_id if isinstance(event_id, str) and event_id else None


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
