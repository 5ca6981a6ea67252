"""The outbound half of the Slack channel: `Outbound` as `chat.postMessage`
arguments (mrkdwn text, Block Kit buttons and images, links), always with a
plain `text` fallback for notifications and clients that cannot show blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bot.core.model import Button, Image, Link, Outbound
from connectors.texts import NOT_SUPPORTED_HERE, names_itself

# Slack's limits: section text 3,000 characters, button text 75, button value
# 2,000, 25 elements in an actions block, 50 blocks in a message.
SECTION_MAX = 3000
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ACTIONS_MAX = 25
BLOCKS_MAX = 50
ACTION_PREFIX = "segue_choice_"


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """What `chat.postMessage` is called with, besides channel and thread."""

    text: str
    blocks: tuple[dict[str, Any], ...]


def escape(text: str) -> str:
    """Text as Slack shows it literally: only `&`, `<` and `>` are control
    characters in mrkdwn; escaping them stops a customer's text from becoming
    a mention (`<!channel>`), a link or a user reference."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(outbound: Outbound) -> SlackMessage:
    text = escape(outbound.text)
    name = outbound.agent_name
    if outbound.sender == "agent" and name and not names_itself(outbound.text, name):
        text = f"*{escape(name)}:* {text}"
    blocks: list[dict[str, Any]] = [_section(part) for part in _chunks(text, SECTION_MAX)]
    fallback = [text]
    if outbound.links:
        blocks.append(_section("\n".join(link_mrkdwn(link) for link in outbound.links)))
        fallback.extend(link_mrkdwn(link) for link in outbound.links)
    blocks.extend(_image(image) for image in outbound.images)
    for start in range(0, len(outbound.buttons), ACTIONS_MAX):
        chunk = outbound.buttons[start : start + ACTIONS_MAX]
        blocks.append(_actions(chunk, start))
    return SlackMessage(text="\n".join(fallback), blocks=tuple(blocks[:BLOCKS_MAX]))


def unsupported_answer(kind: str) -> dict[str, Any] | None:
    """The body that acknowledges an interaction Segue has nothing for, as
    Slack asks of its `kind`; None for an empty 200.

    A slash command's answer is shown to the person who typed it only; an
    external select (in blocks or a legacy dialog) gets no options; for the
    rest an empty answer is the acknowledgement Slack wants: it closes a
    submitted modal or dialog, and Slack shows nothing for a shortcut, a
    closed view or a press, whatever their body would say.
    """
    if kind == "command":
        return {"response_type": "ephemeral", "text": NOT_SUPPORTED_HERE}
    if kind in ("block_suggestion", "dialog_suggestion"):
        return {"options": []}
    return None


def unsupported_notice() -> dict[str, Any]:
    """What a response URL is sent for a message shortcut: a word to the
    person who used it alone, leaving the message it was used on as it is."""
    return {"response_type": "ephemeral", "replace_original": False, "text": NOT_SUPPORTED_HERE}


def link_mrkdwn(link: Link) -> str:
    """`<url|title>`; `|` and `>` in a URL would end the link early."""
    url = quote(link.url, safe=":/?#[]@!$&'()*+,;=%~-._")
    title = escape(link.title).replace("|", "\N{DIVIDES}")
    return f"<{url.replace('&', '&amp;')}|{title}>"


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text or " "}}


def _image(image: Image) -> dict[str, Any]:
    return {"type": "image", "image_url": image.url, "alt_text": image.alt or "image"}


def _actions(buttons: tuple[Button, ...], offset: int) -> dict[str, Any]:
    return {
        "type": "actions",
        "block_id": f"segue_choices_{offset // ACTIONS_MAX}",
        "elements": [
            {
                "type": "button",
                "action_id": f"{ACTION_PREFIX}{offset + i}",
                "text": {
                    "type": "plain_text",
                    "text": _cut(b.title, BUTTON_TEXT_MAX),
                    "emoji": True,
                },
                "value": b.payload[:BUTTON_VALUE_MAX],
            }
            for i, b in enumerate(buttons)
        ],
    }


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\N{HORIZONTAL ELLIPSIS}"


def _chunks(text: str, size: int) -> list[str]:
    if len(text) <= size:
        return [text]
    parts = []
    while text:
        cut = text.rfind("\n", 0, size)
        cut = cut if cut > 0 else size
        # Never split an entity such as `&amp;` in two.
        amp = text.rfind("&", max(0, cut - 5), cut)
        if amp > 0 and ";" not in text[amp:cut]:
            cut = amp
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    return parts
