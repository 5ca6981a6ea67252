"""What people see and type to join channels: link codes, deep-link payloads, channel names."""

from __future__ import annotations

import secrets

from bot.core.catalog import text

# The channels people name; Telegram and Slack are called so in every
# language, the web chat by the catalog's "web_chat".
CHANNEL_NAMES = {"web": None, "telegram": "Telegram", "slack": "Slack"}
YES, NO = "link_yes", "link_no"


# Codes are typed by people: no 0/O, 1/I/L to confuse. 31^8 codes (about
# 40 bits) against at most a few dozen guesses per client and window.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
RESUME_PAYLOAD = "resume:"
OPENED_LINK_TEXT = "(opened a link to continue a conversation here)"


def channel_name(channel: str, locale: str | None = None) -> str:
    if channel == "web":
        return text("web_chat", locale)
    return CHANNEL_NAMES.get(channel) or channel


def one_of(words: list[str], locale: str | None = None) -> str:
    """"a, b or c"."""
    if len(words) < 2:
        return "".join(words)
    return text("one_or_other", locale, first=", ".join(words[:-1]), last=words[-1])


def channels_by_name(locale: str | None = None) -> str:
    """"web chat, Telegram or Slack"."""
    return one_of([channel_name(channel, locale) for channel in CHANNEL_NAMES], locale)


def channels_as_typed(locale: str | None = None) -> str:
    """"web, telegram or slack"."""
    return one_of(list(CHANNEL_NAMES), locale)


def a_chat_on(channel: str, locale: str | None = None) -> str:
    """"A Telegram chat", "A Slack chat", but "A web chat"."""
    if channel == "web":
        return text("a_web_chat", locale)
    return text("a_chat_on", locale, channel=channel_name(channel, locale))


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def shown_code(code: str) -> str:
    """`ABCD-EFGH`: easier to read out and copy than eight in a row."""
    return f"{code[:4]}-{code[4:]}"


def normalised_code(typed: str) -> str | None:
    """The code someone typed, in the form it is stored, or None if it cannot
    be one (case, a hyphen and spaces do not matter)."""
    code = typed.upper().replace("-", "").replace(" ", "")
    if len(code) != CODE_LENGTH or any(c not in CODE_ALPHABET for c in code):
        return None
    return code
