"""The channel-neutral message model shared by connectors, engine and store.

Connectors turn native updates into `Inbound` and render `Outbound`; nothing
else crosses the boundary between a channel and the engine.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

# `note` and `internal` are the team's own lines in a conversation's
# timeline (a private note, a handoff's steps): kept in its history beside
# the customer's messages, never sent or shown to the customer.
Sender = Literal["customer", "bot", "agent", "note", "internal"]
PRIVATE_SENDERS = frozenset({"note", "internal"})
# A change to the conversation itself: the first four are told to the
# customer as a notice; the others mark the team's internal lines.
ConversationEvent = Literal["agent_joined", "agent_left", "channel_joined", "channel_left",
                            "queued", "claimed", "assigned", "transferred", "released",
                            "closed", "rated"]
# Where the team's internal lines are said: no channel of the customer's.
CONSOLE = "console"


@dataclass(frozen=True, slots=True, order=True)
class ChannelIdentity:
    """Who wrote, as one channel knows them: `("telegram", "5551234")`."""

    channel: str
    user_id: str


@dataclass(frozen=True, slots=True)
class Address:
    """Where a reply goes on one channel.

    `target` is the channel's own destination (a Telegram chat id, a Slack
    channel id, a web chat session id); `thread` is a Slack thread when the
    conversation lives in one.
    """

    channel: str
    target: str
    thread: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, "target": self.target, "thread": self.thread}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Address:
        return cls(channel=data["channel"], target=data["target"], thread=data.get("thread"))


@dataclass(frozen=True, slots=True)
class Button:
    """A quick reply: `title` is shown, `payload` comes back when pressed."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class Image:
    url: str
    alt: str = ""


@dataclass(frozen=True, slots=True)
class Link:
    url: str
    title: str


@dataclass(frozen=True, slots=True)
class Inbound:
    """One message from a customer, whatever the channel.

    `message_id` is unique per channel and stable across redeliveries of the
    same message, so retries can be answered once. `client_address` is the
    network address the message came from, where the channel knows it (the
    web chat); per-client limits count by it. `locale` is the language the
    channel says the sender uses (Telegram's `language_code`, the browser's
    language in the web chat, the Slack user's locale), as a BCP 47 tag such
    as "de" or "es-MX"; a hint, which the customer's own words may overrule.
    `profile` is what the channel says about the sender, under the keys of
    `bot.core.profile` (`name`, `username`, `email`, `time_zone`, …), or
    None when it says nothing; the engine keeps the latest per channel.
    """

    identity: ChannelIdentity
    address: Address
    message_id: str
    text: str
    payload: str | None = None
    display_name: str | None = None
    ts: float = field(default_factory=time.time)
    client_address: str | None = None
    locale: str | None = None
    # Not hashed: a mapping is not hashable, and who wrote is in `identity`.
    profile: Mapping[str, str] | None = field(default=None, hash=False)

    @property
    def channel(self) -> str:
        return self.identity.channel


@dataclass(frozen=True, slots=True)
class Outbound:
    """One reply to a customer, rendered by the connector of `Address.channel`.

    Connectors that cannot show a rich part fall back to plain text.
    `event` marks a notice about the conversation rather than an answer (a
    person joined or left it, a channel joined or left it), which a channel
    may show as a line in its timeline; `channels` are the channels the
    conversation is joined with after such a change.
    """

    text: str
    sender: Literal["bot", "agent"] = "bot"
    buttons: tuple[Button, ...] = ()
    images: tuple[Image, ...] = ()
    links: tuple[Link, ...] = ()
    reply_to: str | None = None
    agent_name: str | None = None
    event: ConversationEvent | None = None
    channels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One line of a customer's conversation, as stored and replayed."""

    sender: Sender
    channel: str
    text: str
    ts: float
    buttons: tuple[Button, ...] = ()
    agent_name: str | None = None
    event: ConversationEvent | None = None
    # The agent's username, on a note (who may be asked about it).
    agent: str | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "sender": self.sender,
            "channel": self.channel,
            "text": self.text,
            "ts": self.ts,
        }
        if self.buttons:
            data["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.agent_name:
            data["agent_name"] = self.agent_name
        if self.event:
            data["event"] = self.event
        if self.agent:
            data["agent"] = self.agent
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HistoryEntry:
        return cls(
            sender=data["sender"],
            channel=data["channel"],
            text=data["text"],
            ts=data["ts"],
            buttons=tuple(Button(b["title"], b["payload"]) for b in data.get("buttons", ())),
            agent_name=data.get("agent_name"),
            event=data.get("event"),
            agent=data.get("agent"),
        )

    @classmethod
    def of_inbound(cls, inbound: Inbound) -> HistoryEntry:
        return cls(sender="customer", channel=inbound.channel, text=inbound.text, ts=inbound.ts)

    @classmethod
    def internal(cls, event: ConversationEvent, text: str, ts: float, *,
                 agent_name: str | None = None) -> HistoryEntry:
        """A step of the team's in the timeline (queued, claimed, closed, ...)."""
        return cls(sender="internal", channel=CONSOLE, text=text, ts=ts,
                   agent_name=agent_name, event=event)

    @classmethod
    def of_outbound(cls, outbound: Outbound, channel: str, ts: float) -> HistoryEntry:
        return cls(
            sender=outbound.sender,
            channel=channel,
            text=outbound.text,
            ts=ts,
            buttons=outbound.buttons,
            agent_name=outbound.agent_name,
            event=outbound.event,
        )


def is_public(entry: HistoryEntry) -> bool:
    """Whether the customer may see this line: not a note or a step of the team's."""
    return entry.sender not in PRIVATE_SENDERS


def public_entries(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """What a customer is shown of their history."""
    return [entry for entry in entries if is_public(entry)]
