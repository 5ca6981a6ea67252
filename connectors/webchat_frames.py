"""Web chat frames: who is on a socket, parsing client frames, rendering
server frames. No I/O beyond writing to a socket."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from bot.core.errors import BadInput
from bot.core.model import Address, ChannelIdentity, HistoryEntry, Inbound, Outbound
from connectors.texts import too_long_reply

CHANNEL = "web"
MAX_CLIENT_ID = 128
# A language tag as browsers give `navigator.language` ("de", "es-MX",
# "zh-Hant-TW"): a 2-3 letter language, then hyphenated parts of 1-8
# letters or digits, at most 35 characters in all. Not every tag it passes
# is registered; it keeps markup, odd characters and long strings out.
_LOCALE = re.compile(r"[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*")
MAX_LOCALE = 35


@dataclass(slots=True, eq=False)
class WebClient:
    """One web chat socket and who is on it."""

    ws: web.WebSocketResponse
    address: str
    session: str | None = None
    # The channel user id: the session, or "u:<id>" for a host-signed identity.
    user: str | None = None
    customer_id: str | None = None
    # Joined into another conversation: show its whole history after the turn.
    joined: bool = False
    # The browser's language from the hello, put into every message's Inbound.
    locale: str | None = None
    # What the host site's identity token says of the visitor (`name`,
    # `email`), put into every message's Inbound; None when anonymous.
    profile: Mapping[str, str] | None = None


def locale_of(value: object) -> str | None:
    """A hello's `locale` if it looks like a language tag, else None: an odd
    value is only a missing hint, never a reason to refuse the chat."""
    if isinstance(value, str) and len(value) <= MAX_LOCALE and _LOCALE.fullmatch(value):
        return value
    return None


def parse_message(client: WebClient, frame: dict[str, Any], max_text_length: int) -> Inbound:
    """The `Inbound` of a `message` frame, or `BadInput` saying what is wrong."""
    assert client.session is not None
    session, user = client.session, client.user or client.session
    client_id = frame.get("id")
    if not isinstance(client_id, str) or not client_id or len(client_id) > MAX_CLIENT_ID:
        raise BadInput("bad_frame", f"'id' must be a string of 1 to {MAX_CLIENT_ID} characters")
    text = frame.get("text")
    payload = frame.get("payload")
    if text is None:
        raise BadInput("bad_frame", "'text' is required (a button's title, for a press)")
    if not isinstance(text, str) or (payload is not None and not isinstance(payload, str)):
        raise BadInput("bad_frame", "'text' (and 'payload', if given) must be strings")
    if len(text) > max_text_length:
        raise BadInput("text_too_long", too_long_reply(len(text), max_text_length))
    if not text.strip() and not payload:
        raise BadInput("empty_text", "the message has no text")
    address = Address(CHANNEL, session)
    return Inbound(
        identity=ChannelIdentity(CHANNEL, user),
        address=address,
        message_id=client_id,
        text=text,
        payload=payload,
        client_address=client.address,
        locale=client.locale,
        profile=client.profile,
    )


def parse_frame(data: str) -> dict[str, Any]:
    try:
        frame = orjson.loads(data)
    except ValueError as exc:
        raise BadInput("bad_json", "the frame is not valid JSON") from exc
    if not isinstance(frame, dict):
        raise BadInput("bad_frame", "the frame must be a JSON object")
    return frame


def render(outbound: Outbound) -> str:
    """The `message` frame of one reply."""
    frame: dict[str, Any] = {
        "type": "message",
        "sender": outbound.sender,
        "text": outbound.text,
        "buttons": [{"title": b.title, "payload": b.payload} for b in outbound.buttons],
    }
    if outbound.images:
        frame["images"] = [{"url": i.url, "alt": i.alt} for i in outbound.images]
    if outbound.links:
        frame["links"] = [{"url": link.url, "title": link.title} for link in outbound.links]
    if outbound.reply_to is not None and outbound.sender == "bot":
        frame["reply_to"] = outbound.reply_to
    if outbound.agent_name:
        frame["agent_name"] = outbound.agent_name
    if outbound.event:
        frame["event"] = outbound.event
    if outbound.channels:
        frame["channels"] = list(outbound.channels)
    return orjson.dumps(frame).decode()


def history_item(entry: HistoryEntry) -> dict[str, Any]:
    return entry.to_json()


def agent_typing_frame(on: bool, agent_name: str) -> str:
    return orjson.dumps({"type": "typing", "on": on, "sender": "agent",
                         "agent_name": agent_name}).decode()


async def send_typing(ws: web.WebSocketResponse, on: bool) -> None:
    if not ws.closed:
        await ws.send_json({"type": "typing", "on": on})


async def send_error(ws: web.WebSocketResponse, code: str, message: str, *,
                      retry_after: int | None = None) -> None:
    if not ws.closed:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if retry_after is not None:
            frame["retry_after"] = retry_after
        await ws.send_json(frame)
