"""What a call of the public API asks for, checked: bad input is refused
with a clear error before anything is stored."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.errors import BadInput
from bot.core.model import Button
from bot.handoff.hook import ERASE_NO, ERASE_YES
from bot.handoff.rating import SCORE_PAYLOAD
from bot.linking.codes import NO as LINK_NO
from bot.linking.codes import RESUME_PAYLOAD
from bot.linking.codes import YES as LINK_YES
from bot.outreach.reach import CHANNELS

CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BUTTONS = 10
MAX_TITLE = 64
MAX_PAYLOAD = 256
MAX_IDEMPOTENCY_KEY = 200
# Payloads of Segue's own questions (erase and link confirmations, ratings,
# resume links): a button of the business's must never answer one of them.
RESERVED_PAYLOADS = frozenset({ERASE_YES, ERASE_NO, LINK_YES, LINK_NO})
RESERVED_PREFIXES = (SCORE_PAYLOAD, RESUME_PAYLOAD)


def customer_id_of(value: str) -> str:
    if not CUSTOMER_ID.match(value):
        raise BadInput("unknown_customer", "no such customer")
    return value


@dataclass(frozen=True, slots=True)
class SendRequest:
    text: str
    buttons: tuple[Button, ...]
    channel: str
    idempotency_key: str

    @classmethod
    def parse(cls, body: object, max_text_length: int) -> SendRequest:
        if not isinstance(body, Mapping):
            raise BadInput("bad_request", "the body must be a JSON object")
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadInput("bad_text", "'text' must be a non-empty string")
        if len(text) > max_text_length:
            raise BadInput("bad_text", f"'text' is longer than {max_text_length} characters")
        _only(body, {"text", "buttons", "channel", "idempotency_key"})
        key = idempotency_key_of(body.get("idempotency_key"))
        return cls(text, buttons_of(body.get("buttons")), channel_of(body), key)

    def fingerprint(self) -> str:
        """What the request asks for, in short: an idempotency key repeated
        with another one is refused."""
        return _digest(["message", self.text, [[b.title, b.payload] for b in self.buttons],
                        self.channel])


@dataclass(frozen=True, slots=True)
class FlowRequest:
    slots: Mapping[str, object]
    channel: str
    idempotency_key: str | None

    @classmethod
    def parse(cls, body: object) -> FlowRequest:
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            raise BadInput("bad_request", "the body must be a JSON object")
        _only(body, {"slots", "channel", "idempotency_key"})
        slots = body.get("slots", {})
        if not isinstance(slots, Mapping):
            raise BadInput("bad_slots", "'slots' must be an object of slot names and values")
        key = body.get("idempotency_key")
        return cls(slots, channel_of(body), None if key is None else idempotency_key_of(key))

    def fingerprint(self, flow: str) -> str:
        return _digest(["flow", flow, self.slots, self.channel])


def _digest(value: object) -> str:
    canonical = json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def idempotency_key_of(key: object) -> str:
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadInput("bad_idempotency_key",
                       f"'idempotency_key' must be a non-empty string of at most "
                       f"{MAX_IDEMPOTENCY_KEY} characters")
    return key


def channel_of(body: Mapping[str, object]) -> str:
    channel = body.get("channel", "auto")
    if channel not in ("auto", *CHANNELS):
        raise BadInput("bad_channel", "'channel' is one of auto, web, telegram, slack")
    return str(channel)


def _only(body: Mapping[str, object], fields: set[str]) -> None:
    unknown = set(body) - fields
    if unknown:
        raise BadInput("bad_request", f"unknown fields: {', '.join(sorted(map(str, unknown)))}")


def buttons_of(raw: object) -> tuple[Button, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_BUTTONS:
        raise BadInput("bad_buttons", f"'buttons' must be a list of at most {MAX_BUTTONS}")
    buttons = []
    for item in raw:
        title = item.get("title") if isinstance(item, Mapping) else None
        payload = item.get("payload", title) if isinstance(item, Mapping) else None
        if not isinstance(title, str) or not title.strip() or len(title) > MAX_TITLE \
                or not isinstance(payload, str) or not payload.strip() \
                or len(payload) > MAX_PAYLOAD:
            raise BadInput("bad_buttons",
                           f"each button is {{\"title\", \"payload\"}}: non-empty strings of at "
                           f"most {MAX_TITLE} and {MAX_PAYLOAD} characters")
        if payload in RESERVED_PAYLOADS or payload.startswith(RESERVED_PREFIXES):
            raise BadInput("bad_buttons", f"the payload {payload!r} is Segue's own (a "
                                          "confirmation, a rating or a link)")
        buttons.append(Button(title, payload))
    return tuple(buttons)
