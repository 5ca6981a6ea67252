"""Turning named responses and action messages into channel-neutral `Outbound`s."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.core.model import Image, Outbound
from dialogs.actions import ActionMessage
from dialogs.model import PLACEHOLDER, Response


def fill(text: str, slots: Mapping[str, Any]) -> str:
    """`{slot}` placeholders replaced by slot values. One pass, so a value that
    itself contains braces is shown as typed, never expanded."""

    def value(match: re.Match[str]) -> str:
        found = slots.get(match.group(1))
        return match.group(0) if found is None else str(found)

    return PLACEHOLDER.sub(value, text) if "{" in text else text


class Responses:
    """The bot's named responses, rendered for one channel."""

    def __init__(self, responses: Mapping[str, Response]) -> None:
        self.responses = dict(responses)

    def render(self, name: str, channel: str, slots: Mapping[str, Any],
               locale: str | None = None) -> Outbound:
        variant = self.responses[name].for_channel(channel, locale)
        return Outbound(
            text=fill(variant.text, slots),
            buttons=variant.buttons,
            images=variant.images,
            links=variant.links,
        )

    def of_action(
        self, message: ActionMessage, channel: str, slots: Mapping[str, Any],
        locale: str | None = None,
    ) -> Outbound | None:
        """An action's reply; a named response it refers to is rendered like
        ours, with the values the action passed for its placeholders."""
        if message.response is not None and message.response in self.responses:
            values = {**slots, **dict(message.variables)}
            return self.render(message.response, channel, values, locale)
        if message.text is None and message.image is None:
            return None
        images = (Image(message.image),) if message.image else ()
        return Outbound(text=message.text or "", buttons=message.buttons, images=images)
