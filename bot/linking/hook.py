"""The linking commands, taken in the customer's turn before the dialog policy."""

from __future__ import annotations

import re

from bot.core.catalog import NO_WORDS, YES_WORDS, versions
from bot.core.conversation import LinkOffer, PendingMerge
from bot.core.engine import Turn
from bot.core.model import Outbound
from bot.core.policy import TurnContext
from bot.linking.codes import NO, RESUME_PAYLOAD, YES
from bot.linking.service import LinkService

_LINK = re.compile(r"^/?link(?:@\w+)?(?:\s+(\S+))?$", re.IGNORECASE)
_UNLINK = re.compile(r"^/?unlink(?:@\w+)?\s+(\w+)$", re.IGNORECASE)
_CHANNELS = re.compile(r"^/?channels(?:@\w+)?$", re.IGNORECASE)
_START = re.compile(r"^/start(?:@\w+)?\s+(\S+)$")
_COMMAND = re.compile(r"^/?(?:link|unlink|channels)\b", re.IGNORECASE)
# The buttons' titles count when typed back, in any language.
_YES_WORDS = {*YES_WORDS, "yes, that's me", "ok",
              *(title.lower() for title in versions("link_yes_button"))}
_NO_WORDS = {*NO_WORDS, "cancel", *(title.lower() for title in versions("link_no_button"))}


class LinkHook:
    """The linking commands, taken before the dialog policy sees them."""

    def __init__(self, service: LinkService) -> None:
        self.service = service

    async def intercept(self, context: TurnContext) -> list[Outbound] | None:
        inbound = context.inbound
        text = inbound.text.strip()
        pending = context.state.pending_link
        if isinstance(pending, LinkOffer):
            answer = _yes_no(inbound.payload, text)
            if answer is not None:
                return await self.service.confirm(context, answer)
            deep_link = _deep_link_token(inbound.payload, text, inbound.channel) is not None
            if not _COMMAND.match(text) and not deep_link:
                return [self.service.question(pending, again=True,
                                              locale=context.state.locale)]
            context.state.pending_link = None  # another linking command replaces it
        if (match := _LINK.match(text)) is not None:
            code = match.group(1)
            if code is None:
                return await self.service.issue(context)
            return await self.service.enter_code(context, code)
        if (token := _deep_link_token(inbound.payload, text, inbound.channel)) is not None:
            return await self.service.open_deep_link(context, token)
        if _CHANNELS.match(text):
            return await self.service.channels(context)
        if (match := _UNLINK.match(text)) is not None:
            return await self.service.unlink(context, match.group(1))
        return None

    async def after_save(self, context: TurnContext, turn: Turn) -> None:
        pending = context.state.pending_link
        if isinstance(pending, PendingMerge):
            joined = await self.service.merge_into(context.customer_id, pending.merge_into,
                                                   context.inbound.identity,
                                                   context.inbound.display_name,
                                                   context.inbound.address)
            if joined:
                context.joined_into = pending.merge_into


def _deep_link_token(payload: str | None, text: str, channel: str) -> str | None:
    """The token of a deep link opened: Telegram sends `/start <token>`, the
    web chat page a message carrying the `resume:` payload."""
    if channel == "telegram" and (match := _START.match(text)) is not None:
        return match.group(1)
    if channel == "web" and payload is not None and payload.startswith(RESUME_PAYLOAD):
        return payload.removeprefix(RESUME_PAYLOAD)
    return None


def _yes_no(payload: str | None, text: str) -> bool | None:
    if payload in (YES, NO):
        return payload == YES
    lowered = text.lower().strip(" .!¡")
    if lowered in _YES_WORDS:
        return True
    if lowered in _NO_WORDS:
        return False
    return None
