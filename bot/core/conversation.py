"""A customer's conversation state: small, bounded, one JSON value in the store.

The handoff and linking steps keep their parts of it here, typed, because
they are saved with every turn; what those parts mean (when a handoff is
active, what a link offer asks) is theirs, in `bot.handoff` and `bot.linking`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from bot.core.model import Address, HistoryEntry
from bot.core.profile import Profile, profile_of, profiles_from_json


@dataclass(frozen=True, slots=True)
class HandoffState:
    """A conversation waiting for (`queued`) or held by (`claimed`) a person.

    `started_turn` is set only in the turn that queued it; `claimed_at` once a
    person took it; `confirm_erase` while the customer is asked whether to
    erase their data. Its JSON is the `handoff` object of the agent API.
    """

    # A state saved by another version may hold any status; only the two
    # above make the handoff active (see `bot.handoff.state.is_active`).
    status: str
    since: float
    reason: str | None
    agent: str | None = None
    agent_name: str | None = None
    started_turn: int | None = None
    claimed_at: float | None = None
    confirm_erase: bool = False
    # When a person first answered the customer in this handoff.
    first_response_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": self.status, "since": self.since,
                                "reason": self.reason, "agent": self.agent,
                                "agent_name": self.agent_name}
        if self.started_turn is not None:
            data["started_turn"] = self.started_turn
        if self.claimed_at is not None:
            data["claimed_at"] = self.claimed_at
        if self.confirm_erase:
            data["confirm_erase"] = True
        if self.first_response_at is not None:
            data["first_response_at"] = self.first_response_at
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HandoffState:
        return cls(
            status=data.get("status", ""),
            since=data.get("since", 0),
            reason=data.get("reason"),
            agent=data.get("agent"),
            agent_name=data.get("agent_name"),
            started_turn=data.get("started_turn"),
            claimed_at=data.get("claimed_at"),
            confirm_erase=bool(data.get("confirm_erase")),
            first_response_at=data.get("first_response_at"),
        )


RatingStage = Literal["asked", "comment", "done", "dropped"]


@dataclass(frozen=True, slots=True)
class ClosedHandoff:
    """The last handoff a person closed: its times, and the customer's
    rating of it. `rating` says where the rating stands: `asked` (the 1-5
    question is open), `comment` (scored; an optional comment may follow),
    `done`, or `dropped` (the customer wrote something else instead).
    `record` names its anonymous copy in the report's records."""

    record: str
    agent: str | None
    agent_name: str | None
    queued_at: float
    claimed_at: float | None
    first_response_at: float | None
    closed_at: float
    rating: RatingStage = "asked"
    score: int | None = None
    comment: str | None = None
    rated_at: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {"record": self.record, "agent": self.agent, "agent_name": self.agent_name,
                "queued_at": self.queued_at, "claimed_at": self.claimed_at,
                "first_response_at": self.first_response_at, "closed_at": self.closed_at,
                "rating": self.rating, "score": self.score, "comment": self.comment,
                "rated_at": self.rated_at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClosedHandoff:
        rating = data.get("rating")
        return cls(
            record=str(data.get("record", "")),
            agent=data.get("agent"),
            agent_name=data.get("agent_name"),
            queued_at=float(data.get("queued_at", 0)),
            claimed_at=data.get("claimed_at"),
            first_response_at=data.get("first_response_at"),
            closed_at=float(data.get("closed_at", 0)),
            rating=rating if rating in ("asked", "comment", "done", "dropped") else "dropped",
            score=data.get("score"),
            comment=data.get("comment"),
            rated_at=data.get("rated_at"),
        )


@dataclass(frozen=True, slots=True)
class LinkOffer:
    """A link code typed (`ask="code"`) or a deep link opened (`ask="link"`)
    here, waiting for a yes/no: it would join this chat into `customer_id`'s
    conversation, last written on `channel`. `resume` is what was last said
    there, to pick up from."""

    ask: Literal["code", "link"]
    customer_id: str
    channel: str
    resume: HistoryEntry | None = None
    code: str | None = None
    nonce: str | None = None

    def to_json(self) -> dict[str, Any]:
        # Keys in the order each kind has always been saved in.
        data: dict[str, Any] = {"ask": self.ask}
        if self.ask == "code" and self.code is not None:
            data["code"] = self.code
        data["customer"] = self.customer_id
        data["channel"] = self.channel
        data["resume"] = self.resume.to_json() if self.resume is not None else None
        if self.ask == "link" and self.code is not None:
            data["code"] = self.code
        if self.nonce is not None:
            data["nonce"] = self.nonce
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinkOffer:
        resume = data.get("resume")
        return cls(
            # Offers saved before links could be opened have no "ask": codes.
            ask="code" if data.get("ask", "code") == "code" else "link",
            customer_id=data.get("customer", ""),
            channel=data.get("channel", ""),
            resume=HistoryEntry.from_json(resume) if resume else None,
            code=data.get("code"),
            nonce=data.get("nonce"),
        )


@dataclass(frozen=True, slots=True)
class PendingMerge:
    """A yes given in this turn: once the turn is saved, this customer is
    joined into `merge_into`, whose conversation came from `origin_channel`."""

    merge_into: str
    origin_channel: str

    def to_json(self) -> dict[str, Any]:
        return {"merge_into": self.merge_into, "origin_channel": self.origin_channel}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PendingMerge:
        return cls(merge_into=data["merge_into"], origin_channel=data.get("origin_channel", ""))


PendingLink = LinkOffer | PendingMerge


def _pending_link_from_json(data: dict[str, Any] | None) -> PendingLink | None:
    """Both shapes are stored under one key, told apart by their keys."""
    if not data:
        return None
    if "merge_into" in data:
        return PendingMerge.from_json(data)
    if "ask" in data or "code" in data:
        return LinkOffer.from_json(data)
    return None


@dataclass(slots=True)
class ConversationState:
    """What the engine needs between turns; never the history itself.

    `dialog` belongs to the dialog policy (active flow, step, slots); the engine
    only stores it, so it moves with the customer between channels.
    """

    last_address: Address | None = None
    dialog: dict[str, Any] = field(default_factory=dict)
    turns: int = 0
    # Owned by the handoff step: queued / claimed, by whom, since when.
    handoff: HandoffState | None = None
    # Owned by the linking step: a link offer waiting for a yes/no, or a
    # merge to do once the turn is saved.
    pending_link: PendingLink | None = None
    # The customer's language ("de"), kept by the dialog policy; it follows
    # the customer to every channel. `locale_from` says what set it: "hint"
    # (a channel's setting, which a later channel's hint may change) or
    # "text" (what the customer wrote, which only their writing changes).
    locale: str | None = None
    locale_from: str | None = None
    # The question the bot waits for an answer to, as last asked, kept by the
    # dialog policy: asked again when a person hands the conversation back.
    question: HistoryEntry | None = None
    # What each channel last said about the customer (`bot.core.profile`),
    # by channel: kept with the state, so an erase takes it and an export
    # shows it. A join keeps the target's; the joined channel's comes back
    # with its next message.
    profile: dict[str, Profile] = field(default_factory=dict)
    # Owned by the handoff step: the last handoff a person closed, and its rating.
    closed_handoff: ClosedHandoff | None = None
    # Owned by the public API: what each message sent with an idempotency key
    # answered, by the key's digest, for a day; saved with the message itself,
    # so a repeated key can never send twice.
    api_sends: dict[str, dict[str, Any]] = field(default_factory=dict)

    def note_profile(self, channel: str, values: Mapping[str, str] | None) -> bool:
        """Keep `values` as `channel`'s profile; whether it changed. A
        channel that says nothing this time leaves what it said before."""
        profile = profile_of(**values) if values else None
        if profile is None or self.profile.get(channel) == profile:
            return False
        self.profile[channel] = profile
        return True

    def to_json(self) -> str:
        data: dict[str, Any] = {"turns": self.turns, "dialog": self.dialog}
        if self.last_address is not None:
            data["last_address"] = self.last_address.to_json()
        if self.handoff is not None:
            data["handoff"] = self.handoff.to_json()
        if self.pending_link is not None:
            data["pending_link"] = self.pending_link.to_json()
        if self.locale is not None:
            data["locale"] = self.locale
            data["locale_from"] = self.locale_from
        if self.question is not None:
            data["question"] = self.question.to_json()
        if self.profile:
            data["profile"] = self.profile
        if self.closed_handoff is not None:
            data["closed_handoff"] = self.closed_handoff.to_json()
        if self.api_sends:
            data["api_sends"] = self.api_sends
        return orjson.dumps(data).decode()

    @classmethod
    def from_json(cls, raw: str | None) -> ConversationState:
        if not raw:
            return cls()
        data = orjson.loads(raw)
        address = data.get("last_address")
        handoff = data.get("handoff")
        closed = data.get("closed_handoff")
        return cls(
            last_address=Address.from_json(address) if address else None,
            dialog=data.get("dialog", {}),
            turns=data.get("turns", 0),
            handoff=HandoffState.from_json(handoff) if handoff is not None else None,
            pending_link=_pending_link_from_json(data.get("pending_link")),
            locale=data.get("locale"),
            locale_from=data.get("locale_from"),
            question=HistoryEntry.from_json(data["question"]) if data.get("question") else None,
            profile=profiles_from_json(data.get("profile")),
            closed_handoff=ClosedHandoff.from_json(closed) if closed else None,
            api_sends=data.get("api_sends", {}),
        )
