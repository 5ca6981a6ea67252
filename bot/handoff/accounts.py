"""Agent accounts and console logins: argon2 password hashes, session tokens
with an expiry, and login attempts slowed down per (username, client address)
and capped per client address.

The login rule: each (username, address) pair gets a few attempts at once,
then each further attempt must wait a delay that doubles (1 s, 2 s, 4 s ...,
at most a few minutes) or is answered `TooManyLogins`; a success clears the
pair. Guesses from elsewhere never slow the real agent at their own address.
One address may also fail only so often across all usernames per window.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import math
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from bot.core import metrics
from bot.core.backoff import Backoff
from bot.core.errors import SegueError
from bot.handoff.ports import (
    ROLES,
    AccountStore,
    AgentAccount,
    AgentSession,
    AgentSessionStore,
    LoginAttemptStore,
    Role,
)

log = logging.getLogger(__name__)

USERNAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
MAX_PASSWORD = 1024


class AgentError(SegueError):
    """An agent-facing refusal; `code` names it for the API."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class LoginRefused(AgentError):
    def __init__(self) -> None:
        super().__init__("bad_credentials", "wrong username or password")


class TooManyLogins(AgentError):
    def __init__(self, retry_after: int) -> None:
        super().__init__("too_many_logins", "too many failed logins: try again later")
        self.retry_after = retry_after


class NotAuthenticated(AgentError):
    def __init__(self, message: str = "log in first") -> None:
        super().__init__("unauthenticated", message)


@dataclass(frozen=True, slots=True)
class AuthOptions:
    session_seconds: float = 12 * 3600
    # Attempts of one (username, address) pair before the delays start.
    failures_before_delay: int = 5
    first_delay_seconds: float = 1.0
    max_delay_seconds: float = 300.0
    # Failed attempts of one address, over all usernames, per window.
    max_failures_per_address: int = 20
    # How long counts live: an address's from its first failure, a pair's
    # from the end of its last delay.
    window_seconds: int = 900
    # Each argon2 computation takes 64 MiB: a burst of logins waits its turn
    # rather than taking the worker's memory.
    max_parallel_hashes: int = 2


@dataclass(frozen=True, slots=True)
class Login:
    token: str
    agent: AgentAccount
    expires_at: float


def session_id(token: str) -> str:
    """What the store keeps: a digest, so a copy of the store opens no console."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> str:
    if not USERNAME.match(username):
        raise AgentError("bad_username", "a username is 1 to 64 characters: a-z, 0-9, _ . - "
                                         "(starting with a letter or digit)")
    return username


@runtime_checkable
class AuthStore(AccountStore, AgentSessionStore, LoginAttemptStore, Protocol):
    """The slices of the agent store that logins use."""


class AgentAuth:
    """Creates accounts, logs agents in and out, and checks session tokens."""

    def __init__(self, store: AuthStore, *, options: AuthOptions | None = None,
                 hasher: PasswordHasher | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.options = options or AuthOptions()
        self.hasher = hasher or PasswordHasher()
        self.clock = clock
        self._dummy_hash: str | None = None
        self._hashing = asyncio.Semaphore(self.options.max_parallel_hashes)
        self._backoff = Backoff(free=self.options.failures_before_delay,
                                first_delay=self.options.first_delay_seconds,
                                max_delay=self.options.max_delay_seconds,
                                window_seconds=self.options.window_seconds)

    async def add(self, username: str, password: str, *, role: Role = "agent",
                  display_name: str | None = None,
                  capacity: int | None = None) -> AgentAccount:
        """Create or replace an account. A new password ends the account's
        sessions; the same password again (accounts given at every start)
        keeps them. Without a `capacity`, an existing account keeps its own."""
        check_username(username)
        if role not in ROLES:
            raise AgentError("bad_role", f"role must be one of {', '.join(ROLES)}")
        if not password or len(password) > MAX_PASSWORD:
            raise AgentError("bad_password", f"a password is 1 to {MAX_PASSWORD} characters")
        existing = await self.store.get_agent(username)
        if existing is not None and await self._matches(existing.password_hash, password) \
                and not self.hasher.check_needs_rehash(existing.password_hash):
            hashed = existing.password_hash
        else:
            async with self._hashing:
                hashed = await asyncio.to_thread(self.hasher.hash, password)
        if capacity is None and existing is not None:
            capacity = existing.capacity
        if capacity is not None and capacity < 0:
            raise AgentError("bad_capacity", "a capacity is 0 or more")
        account = AgentAccount(username=username, display_name=display_name or username,
                               role=role, password_hash=hashed, capacity=capacity)
        await self.store.put_agent(account)
        return account

    async def login(self, username: str, password: str, *, address: str) -> Login:
        """A new session, or a refusal. Every attempt is counted before its
        password is checked, so a burst of concurrent guesses gets no more
        checks than the limits allow."""
        address_key = f"addr:{address}"
        window = self.options.window_seconds
        if await self.store.add_failure(address_key, window) \
                > self.options.max_failures_per_address:
            metrics.rate_limited("logins-addr").inc()
            log.warning("console logins from %s held back: too many failures", address)
            raise TooManyLogins(window)
        if USERNAME.match(username) is None:
            # No account can have this name: refused without a hash or a
            # counter of its own, so made-up names leave no keys behind.
            log.info("console login with a malformed username from %s", address)
            raise LoginRefused()
        # Unknown names are counted like real ones: a refusal must not tell them apart.
        pair_key = attempts_key(username, address)
        wait = await self.store.add_attempt(pair_key, self._backoff, self.clock())
        if wait > 0:
            metrics.rate_limited("logins-user").inc()
            log.warning("console logins for %r from %s held back: too many failures",
                        username, address)
            raise TooManyLogins(max(1, math.ceil(wait)))
        account = await self.store.get_agent(username)
        if not await self._verify(account, password):
            log.info("failed console login for %r from %s", username, address)
            raise LoginRefused()
        assert account is not None
        await self.store.clear_attempts(pair_key)
        await self.store.forgive_failure(address_key)
        token = secrets.token_urlsafe(32)
        expires_at = self.clock() + self.options.session_seconds
        await self.store.put_session(session_id(token), AgentSession(
            username, expires_at, stamp=credential_stamp(account)))
        return Login(token=token, agent=account, expires_at=expires_at)

    async def _verify(self, account: AgentAccount | None, password: str) -> bool:
        if account is None and self._dummy_hash is None:
            async with self._hashing:
                self._dummy_hash = await asyncio.to_thread(self.hasher.hash,
                                                           secrets.token_hex(16))
        # An unknown username costs a verification too, so timing tells nothing.
        hashed = account.password_hash if account is not None else self._dummy_hash
        assert hashed is not None
        return await self._matches(hashed, password) and account is not None

    async def _matches(self, hashed: str, password: str) -> bool:
        async with self._hashing:
            try:
                await asyncio.to_thread(self.hasher.verify, hashed, password[:MAX_PASSWORD])
            except (VerificationError, InvalidHashError):
                return False
        return True

    async def authenticate(self, token: str | None) -> AgentAccount:
        """The account of a live session token; `NotAuthenticated` otherwise."""
        if not token:
            raise NotAuthenticated()
        session = await self.store.get_session(session_id(token))
        if session is None:
            raise NotAuthenticated("the session is unknown or has ended: log in again")
        if session.expires_at <= self.clock():
            await self.store.drop_session(session_id(token))
            raise NotAuthenticated("the session has expired: log in again")
        account = await self.store.get_agent(session.username)
        if account is None:
            raise NotAuthenticated("the account no longer exists")
        if not hmac.compare_digest(session.stamp, credential_stamp(account)):
            await self.store.drop_session(session_id(token))
            raise NotAuthenticated("the password has changed: log in again")
        return account

    async def logout(self, token: str) -> None:
        await self.store.drop_session(session_id(token))


def attempts_key(username: str, address: str) -> str:
    """Where a (username, address) pair's attempts are counted. A username
    has no `@`, so no two pairs share a key."""
    return f"pair:{username}@{address}"


def credential_stamp(account: AgentAccount) -> str:
    """Names the password a session was opened with: a new password (a new
    hash) no longer matches the stamp its older sessions carry."""
    return hashlib.sha256(account.password_hash.encode()).hexdigest()[:32]


def parse_agent_list(spec: str) -> list[tuple[str, str, Role]]:
    """`name:password[:role],...` (SEGUE_AGENTS) as (name, password, role)."""
    accounts: list[tuple[str, str, Role]] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        name, sep, rest = item.partition(":")
        if not sep or not rest:
            raise AgentError("bad_agents", "SEGUE_AGENTS entries look like name:password[:role]")
        password, _, role = rest.rpartition(":")
        if role not in ROLES or not password:
            password, role = rest, "agent"
        accounts.append((check_username(name), password, role))  # type: ignore[arg-type]
    return accounts
