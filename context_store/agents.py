"""The `AgentStore` protocol: what the handoff to people keeps outside a
customer's own keys, and its in-memory implementation.

Agent accounts and their sessions; login-attempt counters and delays; the index of
handed-off conversations (the queue, oldest first, and who holds each claimed
one); and presence: which agents have the console open and which worker holds
a web chat session's sockets. The conversation's own handoff status lives in
its `ConversationState` and is changed under the customer's lock; the index
here only lists it, so it can be rebuilt from the states.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["agent", "admin"]
ROLES: tuple[Role, ...] = ("agent", "admin")
# How often the memory store drops login counters whose window has passed.
PURGE_SECONDS = 60.0


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
    # Names the password the session was opened with (see bot.agents).
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
class Backoff:
    """Attempts under one key slow down: the first `free` go through at once;
    after that each must come `first_delay * 2**k` seconds (at most
    `max_delay`) after the one before it, or is refused. Refused attempts
    count too, so hammering only pushes the next chance further away. A key
    is forgotten `window_seconds` after its last delay ends."""

    free: int
    first_delay: float
    max_delay: float
    window_seconds: int

    def delay(self, count: int) -> float:
        """The wait that the `count`-th attempt imposes on the next one."""
        if count < self.free:
            return 0.0
        # The exponent is capped so huge counts stay finite floats.
        return float(min(self.max_delay, self.first_delay * 2 ** min(count - self.free, 40)))


@runtime_checkable
class AgentStore(Protocol):
    """Accounts, sessions, the handoff index and presence, shared by workers."""

    async def put_agent(self, account: AgentAccount) -> None:
        """Create or replace an account."""

    async def get_agent(self, username: str) -> AgentAccount | None: ...

    async def agents(self) -> list[AgentAccount]:
        """Every account, by username."""

    async def put_session(self, session_id: str, session: AgentSession) -> None:
        """Keep a session until its `expires_at`."""

    async def get_session(self, session_id: str) -> AgentSession | None: ...

    async def drop_session(self, session_id: str) -> None: ...

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

    async def touch_agent(self, username: str, worker: str, ttl_seconds: float) -> None:
        """`username` has a console open on `worker`, for the next `ttl_seconds`."""

    async def drop_agent(self, username: str, worker: str) -> None: ...

    async def agents_online(self) -> set[str]:
        """Usernames with a console open on any worker."""

    async def touch_web(self, sessions: Sequence[str], worker: str, ttl_seconds: float) -> None:
        """`worker` holds sockets of these web chat sessions."""

    async def drop_web(self, session: str, worker: str) -> None: ...

    async def web_workers(self, session: str) -> set[str]:
        """Workers holding a socket of this web chat session now."""


class MemoryAgentStore:
    """`AgentStore` in process memory, for the embedded store: one worker only."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._agents: dict[str, AgentAccount] = {}
        self._sessions: dict[str, AgentSession] = {}
        self._failures: dict[str, tuple[int, float]] = {}
        self._next_purge = 0.0
        # key -> (count, next attempt not before, forgotten at), in time.time().
        self._attempts: dict[str, tuple[int, float, float]] = {}
        self._next_attempts_purge = 0.0
        self._queue: dict[str, float] = {}
        self._claims: dict[str, str] = {}
        self._online: dict[tuple[str, str], float] = {}
        self._web: dict[str, dict[str, float]] = {}

    async def put_agent(self, account: AgentAccount) -> None:
        self._agents[account.username] = account

    async def get_agent(self, username: str) -> AgentAccount | None:
        return self._agents.get(username)

    async def agents(self) -> list[AgentAccount]:
        return [self._agents[name] for name in sorted(self._agents)]

    async def put_session(self, session_id: str, session: AgentSession) -> None:
        self._sessions[session_id] = session

    async def get_session(self, session_id: str) -> AgentSession | None:
        session = self._sessions.get(session_id)
        if session is not None and session.expires_at <= time.time():
            del self._sessions[session_id]
            return None
        return session

    async def drop_session(self, session_id: str) -> None:
        self._sessions.pop(session_id, None)

    async def failures(self, key: str) -> int:
        count, expires = self._failures.get(key, (0, 0.0))
        return count if expires > self.clock() else 0

    async def add_failure(self, key: str, window_seconds: int) -> int:
        now = self.clock()
        if now >= self._next_purge:
            # Counters of names tried once and never again would pile up.
            self._failures = {k: v for k, v in self._failures.items() if v[1] > now}
            self._next_purge = now + PURGE_SECONDS
        count, expires = self._failures.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + window_seconds
        self._failures[key] = (count + 1, expires)
        return count + 1

    async def forgive_failure(self, key: str) -> None:
        count, expires = self._failures.get(key, (0, 0.0))
        if count > 0 and expires > self.clock():
            self._failures[key] = (count - 1, expires)

    async def clear_failures(self, key: str) -> None:
        self._failures.pop(key, None)

    async def add_attempt(self, key: str, rule: Backoff, now: float) -> float:
        if now >= self._next_attempts_purge:
            self._attempts = {k: v for k, v in self._attempts.items() if v[2] > now}
            self._next_attempts_purge = now + PURGE_SECONDS
        count, not_before, forget_at = self._attempts.get(key, (0, 0.0, 0.0))
        if forget_at <= now:
            count, not_before = 0, 0.0
        delay = rule.delay(count + 1)
        self._attempts[key] = (count + 1, now + delay, now + delay + rule.window_seconds)
        return delay if now < not_before else 0.0

    async def clear_attempts(self, key: str) -> None:
        self._attempts.pop(key, None)

    async def index_queued(self, customer: str, since: float) -> None:
        self._claims.pop(customer, None)
        self._queue[customer] = since

    async def index_claimed(self, customer: str, agent: str) -> None:
        self._queue.pop(customer, None)
        self._claims[customer] = agent

    async def index_closed(self, customer: str) -> None:
        self._queue.pop(customer, None)
        self._claims.pop(customer, None)

    async def index_closed_all(self, customers: Sequence[str]) -> None:
        for customer in customers:
            await self.index_closed(customer)

    async def queued(self, limit: int | None = None) -> list[QueueEntry]:
        entries = sorted(self._queue.items(), key=lambda item: (item[1], item[0]))
        if limit is not None:
            entries = entries[:max(0, limit)]
        return [QueueEntry(customer, since) for customer, since in entries]

    async def queue_length(self) -> int:
        return len(self._queue)

    async def claimed(self) -> dict[str, str]:
        return dict(self._claims)

    async def touch_agent(self, username: str, worker: str, ttl_seconds: float) -> None:
        self._online[(username, worker)] = time.monotonic() + ttl_seconds

    async def drop_agent(self, username: str, worker: str) -> None:
        self._online.pop((username, worker), None)

    async def agents_online(self) -> set[str]:
        now = time.monotonic()
        return {name for (name, _), expires in self._online.items() if expires > now}

    async def touch_web(self, sessions: Sequence[str], worker: str, ttl_seconds: float) -> None:
        expires = time.monotonic() + ttl_seconds
        for session in sessions:
            self._web.setdefault(session, {})[worker] = expires

    async def drop_web(self, session: str, worker: str) -> None:
        workers = self._web.get(session)
        if workers is not None:
            workers.pop(worker, None)
            if not workers:
                del self._web[session]

    async def web_workers(self, session: str) -> set[str]:
        now = time.monotonic()
        return {w for w, expires in self._web.get(session, {}).items() if expires > now}
