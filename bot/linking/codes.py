"""What people see and type to join channels: link codes, deep-link payloads, channel names."""

from __future__ import annotations

import secrets

CHANNEL_NAMES = {"web": "web chat", "telegram": "Telegram", "slack": "Slack"}
YES, NO = "link_yes", "link_no"


# Codes are typed by people: no 0/O, 1/I/L to confuse. 31^8 codes (about
# 40 bits) against at most a few dozen guesses per client and window.
CODE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
RESUME_PAYLOAD = "resume:"
OPENED_LINK_TEXT = "(opened a link to continue a conversation here)"


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


def one_of(words: list[str]) -> str:
    """"a, b or c"."""
    return f"{', '.join(words[:-1])} or {words[-1]}" if len(words) > 1 else "".join(words)


# "web chat, Telegram or Slack" and "web, telegram or slack", for the texts below.
CHANNELS_BY_NAME = one_of(list(CHANNEL_NAMES.values()))
CHANNELS_AS_TYPED = one_of(list(CHANNEL_NAMES))

# What the customer is told; each text once, some in several answers.
ALREADY_JOINED = "This chat is already part of that conversation."
NEW_CODE_FROM_ORIGIN = "Send “link” on the channel you came from to get a new one"
NEW_CODE_ELSEWHERE = "Send “link” on the other channel to get a new one."


def a_chat_on(channel: str) -> str:
    """"A Telegram chat", "A Slack chat", but "A web chat"."""
    return "A web chat" if channel == "web" else f"A {channel_name(channel)} chat"


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
