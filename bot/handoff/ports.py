"""What the handoff to people keeps outside a customer's own keys, in slices
like `bot.core.ports`: each caller names the few methods it uses;
`AgentStore` is all of them, what an agent store implements.

Agent accounts and their sessions; login-attempt counters and delays; the index of
handed-off conversations (the queue, oldest first, and who holds each claimed
one); presence: which agents have the console open and which worker holds
a web chat session's sockets; and the canned replies agents insert. The
conversation's own handoff status lives in its `ConversationState` and is
changed under the customer's lock; the index here only lists it, so it can be
rebuilt from the states.
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

    def to_json(self) -> str:
        return json.dumps({"username": self.username, "display_name": self.display_name,
                           "role": self.role, "password_hash": self.password_hash})

    @classmethod
    def from_json(cls, raw: str) -> AgentAccount:
        data: dict[str, Any] = json.loads(raw)
        return cls(username=data["username"], display_name=data["display_name"],
                   role=data["role"], password_hash=data["password_hash"])


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
class AgentStore(AccountStore, AgentSessionStore, LoginAttemptStore, HandoffQueueStore,
                 AgentPresenceStore, WebPresenceStore, CannedReplyStore, Protocol):
    """Every slice: what one agent store implementation offers (accounts,
    sessions, login attempts, the handoff index, presence and canned replies,
    shared by the workers). Callers ask for the slices they use."""
