"""What the channels say to a customer in their own words (not the dialog's
replies): one wording for every channel, defined here once."""

from __future__ import annotations

UNSUPPORTED_REPLY = (
    "I can read text messages only, so I could not read that. "
    "Please type your message instead."
)
# The answer to a Slack slash command or shortcut: Segue only talks.
NOT_SUPPORTED_HERE = (
    "That isn't supported here. To talk to me, send me a direct message or mention me."
)
# The `message` of the web chat's `busy` and `store_error` frames.
NOT_ACCEPTED = "the message was not accepted: send it again"


def too_long_reply(length: int, limit: int) -> str:
    """The answer to a message of `length` characters, over the `limit`."""
    return (
        f"Sorry, that message is too long for me ({length} characters; "
        f"the limit is {limit}). Please send it in shorter parts."
    )


def names_itself(text: str, name: str) -> bool:
    """Whether `text` already opens with `name` as a whole word ("Ann from our
    team has joined"), where an "Ann:" prefix would only repeat it."""
    if not name.strip() or text[: len(name)].casefold() != name.casefold():
        return False
    rest = text[len(name) :]
    return not rest or not (rest[0].isalnum() or rest[0] == "_")
