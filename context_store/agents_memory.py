"""`AgentStore` in process memory, for the embedded store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.core.backoff import Backoff
from bot.handoff.ports import AgentAccount, AgentSession, CannedReply, HandoffRecord, QueueEntry
from context_store.apikeys_memory import MemoryApiKeysMixin

# How often the memory store drops login counters whose window has passed.
PURGE_SECONDS = 60.0


class MemoryAgentStore(MemoryApiKeysMixin):
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
        self._canned: dict[str, str] = {}
        self._records: dict[str, HandoffRecord] = {}
        # (holder, until in self.clock()), and the last agent assigned.
        self._lease: tuple[str, float] | None = None
        self._last_assigned: str | None = None

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

    async def put_canned(self, reply: CannedReply, limit: int) -> bool:
        if reply.shortcut not in self._canned and len(self._canned) >= limit:
            return False
        self._canned[reply.shortcut] = reply.text
        return True

    async def get_canned(self, shortcut: str) -> CannedReply | None:
        text = self._canned.get(shortcut)
        return None if text is None else CannedReply(shortcut, text)

    async def canned_replies(self) -> list[CannedReply]:
        return [CannedReply(name, self._canned[name]) for name in sorted(self._canned)]

    async def drop_canned(self, shortcut: str) -> bool:
        return self._canned.pop(shortcut, None) is not None

    async def put_record(self, record: HandoffRecord, keep_seconds: float) -> None:
        self._records[record.id] = record
        cutoff = record.closed_at - keep_seconds
        for old in [r.id for r in self._records.values() if r.closed_at < cutoff]:
            del self._records[old]

    async def rate_record(self, record_id: str, score: int) -> bool:
        record = self._records.get(record_id)
        if record is None or record.csat is not None:
            return False
        self._records[record_id] = replace(record, csat=score)
        return True

    async def records_between(self, start: float, end: float,
                              limit: int) -> list[HandoffRecord]:
        inside = [r for r in self._records.values() if start <= r.closed_at < end]
        return sorted(inside, key=lambda r: (r.closed_at, r.id))[:limit]

    async def take_assignment_lease(self, holder: str, ttl_seconds: float) -> bool:
        now = self.clock()
        if self._lease is not None and self._lease[0] != holder and self._lease[1] > now:
            return False
        self._lease = (holder, now + ttl_seconds)
        return True

    async def drop_assignment_lease(self, holder: str) -> None:
        if self._lease is not None and self._lease[0] == holder:
            self._lease = None

    async def last_assigned(self) -> str | None:
        return self._last_assigned

    async def set_last_assigned(self, username: str) -> None:
        self._last_assigned = username
