"""What the handoff to people keeps outside a customer's own keys, in slices
like `bot.core.ports`: each caller names the few methods it uses;
`AgentStore` is all of them, what an agent store implements.

Agent accounts and their sessions; login-attempt counters and delays; the index of
handed-off conversations (the queue, oldest first, and who holds each claimed
one); presence: which agents have the console open and which worker holds
a web chat session's sockets; the canned replies agents insert; the
anonymous records of closed handoffs the report counts; and the lease that
lets one worker at a time assign waiting conversations. The conversation's
own handoff status lives in its `ConversationState` and is changed under the
customer's lock; the index here only lists it, so it can be rebuilt from the
states.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from bot.core.backoff import Backoff
from bot.core.ports import WebPresenceStore

Role = Literal["agent", "admin"]
ROLES: tuple[Role, ...] = ("agent", "admin")


@dataclass(frozen=True, slots=True)
class AgentAccount:
    """A person who may log in to the console. `password_hash` is an argon2 hash."""

    username: str
    display_name: str
    role: Role
    password_hash: str
    # Open conversations automatic assignment may give this agent; None:
    # the deployment's default (`SEGUE_AGENT_CAPACITY`).
    capacity: int | None = None

    def to_json(self) -> str:
        data: dict[str, Any] = {"username": self.username, "display_name": self.display_name,
                                "role": self.role, "password_hash": self.password_hash}
        if self.capacity is not None:
            data["capacity"] = self.capacity
        return json.dumps(data)

    @classmethod
    def from_json(cls, raw: str) -> AgentAccount:
        data: dict[str, Any] = json.loads(raw)
        capacity = data.get("capacity")
        return cls(username=data["username"], display_name=data["display_name"],
                   role=data["role"], password_hash=data["password_hash"],
                   capacity=int(capacity) if capacity is not None else None)


@dataclass(frozen=True, slots=True)
class AgentSession:
    """A logged-in console. Stored under a digest of its token, never the token."""

    username: str
    expires_at: float  # time.time()
    # Names the password the session was opened with (see bot.handoff.accounts).
    stamp: str = ""

    def to_json(self) -> str:
        return json.dumps({"username": self.username, "expires_at": self.expires_at,
                           "stamp": self.stamp})

    @classmethod
    def from_json(cls, raw: str) -> AgentSession:
        data: dict[str, Any] = json.loads(raw)
        return cls(username=data["username"], expires_at=float(data["expires_at"]),
                   stamp=str(data.get("stamp", "")))


@dataclass(frozen=True, slots=True)
class QueueEntry:
    """A conversation waiting for a person since `since` (time.time())."""

    customer: str
    since: float


@dataclass(frozen=True, slots=True)
class CannedReply:
    """A reply an admin keeps under a shortcut (`bot.handoff.canned` has its rules)."""

    shortcut: str
    text: str


@dataclass(frozen=True, slots=True)
class HandoffRecord:
    """One handoff a person closed, as the report counts it: times, the
    agent who held it and the customer's score; no customer id and no text,
    so it may outlive the customer's erase. Times are time.time()."""

    id: str
    agent: str
    agent_name: str
    queued_at: float
    claimed_at: float | None
    first_response_at: float | None
    closed_at: float
    csat: int | None = None

    def to_json(self) -> str:
        return json.dumps({"id": self.id, "agent": self.agent, "agent_name": self.agent_name,
                           "queued_at": self.queued_at, "claimed_at": self.claimed_at,
                           "first_response_at": self.first_response_at,
                           "closed_at": self.closed_at, "csat": self.csat})

    @classmethod
    def from_json(cls, raw: str) -> HandoffRecord:
        data: dict[str, Any] = json.loads(raw)
        return cls(id=data["id"], agent=data["agent"], agent_name=data["agent_name"],
                   queued_at=float(data["queued_at"]), claimed_at=data.get("claimed_at"),
                   first_response_at=data.get("first_response_at"),
                   closed_at=float(data["closed_at"]), csat=data.get("csat"))


@runtime_checkable
class AccountStore(Protocol):
    """Agent accounts."""

    async def put_agent(self, account: AgentAccount) -> None:
        """Create or replace an account."""

    async def get_agent(self, username: str) -> AgentAccount | None: ...

    async def agents(self) -> list[AgentAccount]:
        """Every account, by username."""


@runtime_checkable
class AgentSessionStore(Protocol):
    """Logged-in consoles, by a digest of their token."""

    async def put_session(self, session_id: str, session: AgentSession) -> None:
        """Keep a session until its `expires_at`."""

    async def get_session(self, session_id: str) -> AgentSession | None: ...

    async def drop_session(self, session_id: str) -> None: ...


@runtime_checkable
class LoginAttemptStore(Protocol):
    """Login attempts: counts per window, and delays that grow."""

    async def failures(self, key: str) -> int:
        """Login attempts counted under `key` in the current window."""

    async def add_failure(self, key: str, window_seconds: int) -> int:
        """Count one attempt, atomically, and return the count; the count
        expires `window_seconds` after the first."""

    async def forgive_failure(self, key: str) -> None:
        """Take back one counted attempt (it succeeded); never starts a count."""

    async def clear_failures(self, key: str) -> None: ...

    async def add_attempt(self, key: str, rule: Backoff, now: float) -> float:
        """Count one attempt under `key`, atomically: 0.0 if it may go ahead,
        else the seconds to wait (the refused attempt is counted all the same
        and pushes the wait on). `now` is time.time()."""

    async def clear_attempts(self, key: str) -> None: ...


@runtime_checkable
class HandoffQueueStore(Protocol):
    """The index of handed-off conversations: the queue and the claims."""

    async def index_queued(self, customer: str, since: float) -> None:
        """The conversation waits for a person (and is held by nobody)."""

    async def index_claimed(self, customer: str, agent: str) -> None:
        """The conversation is held by `agent` (and no longer waits)."""

    async def index_closed(self, customer: str) -> None:
        """The conversation is back with the bot (or gone)."""

    async def index_closed_all(self, customers: Sequence[str]) -> None:
        """`index_closed` for many conversations at once."""

    async def queued(self, limit: int | None = None) -> list[QueueEntry]:
        """Waiting conversations, oldest first: the oldest `limit`, or all."""

    async def queue_length(self) -> int: ...

    async def claimed(self) -> dict[str, str]:
        """Held conversations: customer -> agent username."""


@runtime_checkable
class AgentPresenceStore(Protocol):
    """Which agents have the console open, on which worker."""

    async def touch_agent(self, username: str, worker: str, ttl_seconds: float) -> None:
        """`username` has a console open on `worker`, for the next `ttl_seconds`."""

    async def drop_agent(self, username: str, worker: str) -> None: ...

    async def agents_online(self) -> set[str]:
        """Usernames with a console open on any worker."""


@runtime_checkable
class CannedReplyStore(Protocol):
    """Canned replies, by shortcut, shared by every console."""

    async def put_canned(self, reply: CannedReply, limit: int) -> bool:
        """Create or replace, atomically: a new shortcut only while fewer than
        `limit` are kept; False, with nothing stored, when it would be one too many."""

    async def get_canned(self, shortcut: str) -> CannedReply | None: ...

    async def canned_replies(self) -> list[CannedReply]:
        """Every canned reply, by shortcut."""

    async def drop_canned(self, shortcut: str) -> bool:
        """Remove it; whether there was one."""


@runtime_checkable
class HandoffRecordStore(Protocol):
    """The records of closed handoffs, by when they were closed: the report's figures."""

    async def put_record(self, record: HandoffRecord, keep_seconds: float) -> None:
        """Keep `record`; records closed more than `keep_seconds` before it may go."""

    async def rate_record(self, record_id: str, score: int) -> bool:
        """Set the record's score, once: False for an unknown id or one rated already."""

    async def records_between(self, start: float, end: float,
                              limit: int) -> list[HandoffRecord]:
        """Records closed at `start` <= closed_at < `end`, oldest first, at most `limit`."""


@runtime_checkable
class AssignmentStore(Protocol):
    """What lets the workers assign waiting conversations one at a time, in turn."""

    async def take_assignment_lease(self, holder: str, ttl_seconds: float) -> bool:
        """Atomically: True if nobody else holds the lease (it is now
        `holder`'s, or kept for `holder` for `ttl_seconds` more)."""

    async def drop_assignment_lease(self, holder: str) -> None:
        """Give it up, if `holder` holds it."""

    async def last_assigned(self) -> str | None:
        """The username that automatic assignment chose last."""

    async def set_last_assigned(self, username: str) -> None: ...


@runtime_checkable
class AgentStore(AccountStore, AgentSessionStore, LoginAttemptStore, HandoffQueueStore,
                 AgentPresenceStore, WebPresenceStore, CannedReplyStore, HandoffRecordStore,
                 AssignmentStore, Protocol):
    """Every slice: what one agent store implementation offers (accounts,
    sessions, login attempts, the handoff index, presence, canned replies,
    handoff records and the assignment lease, shared by the workers).
    Callers ask for the slices they use."""
