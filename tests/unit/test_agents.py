"""Agent accounts and logins on the memory agent store."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from argon2 import PasswordHasher

from bot.handoff.accounts import (
    AgentAuth,
    AgentError,
    AuthOptions,
    LoginRefused,
    NotAuthenticated,
    TooManyLogins,
    parse_agent_list,
    session_id,
)
from context_store.agents_memory import MemoryAgentStore

CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def auth(clock: Clock) -> AgentAuth:
    options = AuthOptions(session_seconds=3600, failures_before_delay=3,
                          max_failures_per_address=5, window_seconds=60)
    return AgentAuth(MemoryAgentStore(clock=clock), options=options, hasher=CHEAP, clock=clock)


class PeakHasher(PasswordHasher):
    """The real argon2 hasher, noting how many hashes run at once."""

    def __init__(self) -> None:
        super().__init__(time_cost=2, memory_cost=16 * 1024, parallelism=1)
        self.running = 0
        self.peak = 0
        self._lock = threading.Lock()

    def _counted(self, work: Any) -> Any:
        with self._lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return work()
        finally:
            with self._lock:
                self.running -= 1

    def hash(self, password: str | bytes, *, salt: bytes | None = None) -> str:
        return self._counted(lambda: super(PeakHasher, self).hash(password, salt=salt))

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        return self._counted(lambda: super(PeakHasher, self).verify(hash, password))


async def test_passwords_are_stored_as_argon2_hashes(auth: AgentAuth) -> None:
    account = await auth.add("ann", "s3cret-pass", role="admin", display_name="Ann Lee")
    assert account.password_hash.startswith("$argon2id$")
    assert "s3cret-pass" not in account.to_json()
    assert (account.display_name, account.role) == ("Ann Lee", "admin")


async def test_login_session_expiry_and_logout(auth: AgentAuth, clock: Clock) -> None:
    await auth.add("ann", "pw-1")
    login = await auth.login("ann", "pw-1", address="10.0.0.1")
    assert (await auth.authenticate(login.token)).username == "ann"
    # The store keeps a digest of the token, never the token itself.
    assert await auth.store.get_session(login.token) is None
    assert await auth.store.get_session(session_id(login.token)) is not None
    clock.now += 3601
    with pytest.raises(NotAuthenticated, match="expired"):
        await auth.authenticate(login.token)
    second = await auth.login("ann", "pw-1", address="10.0.0.1")
    await auth.logout(second.token)
    with pytest.raises(NotAuthenticated):
        await auth.authenticate(second.token)
    with pytest.raises(NotAuthenticated):
        await auth.authenticate(None)


async def test_failures_slow_down_the_pair_then_the_address_stops(auth: AgentAuth) -> None:
    await auth.add("ann", "pw-1")
    await auth.add("bob", "pw-2")
    for _ in range(3):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.1")
    with pytest.raises(TooManyLogins):
        await auth.login("ann", "pw-1", address="10.0.0.1")
    # Guesses from one address never hold the agent back at another.
    assert (await auth.login("ann", "pw-1", address="10.0.0.2")).agent.username == "ann"
    # One more failure from the first address reaches its limit of five.
    with pytest.raises(LoginRefused):
        await auth.login("nobody", "wrong", address="10.0.0.1")
    with pytest.raises(TooManyLogins):
        await auth.login("bob", "pw-2", address="10.0.0.1")
    assert (await auth.login("bob", "pw-2", address="10.0.0.3")).agent.username == "bob"


async def test_each_further_attempt_waits_twice_as_long(clock: Clock) -> None:
    options = AuthOptions(failures_before_delay=2, max_delay_seconds=8,
                          max_failures_per_address=100, window_seconds=60)
    auth = AgentAuth(MemoryAgentStore(clock=clock), options=options, hasher=CHEAP, clock=clock)
    await auth.add("ann", "pw-1")
    waits = []
    for _ in range(2):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.1")
    for _ in range(4):
        with pytest.raises(TooManyLogins) as refused:
            await auth.login("ann", "pw-1", address="10.0.0.1")
        waits.append(refused.value.retry_after)
    assert waits == [2, 4, 8, 8]  # every attempt counts, even a refused one
    clock.now += 7
    with pytest.raises(TooManyLogins):
        await auth.login("ann", "pw-1", address="10.0.0.1")
    clock.now += 8  # waited as told: the attempt is checked
    assert (await auth.login("ann", "pw-1", address="10.0.0.1")).agent.username == "ann"
    # The success cleared the pair: mistakes go through at once again.
    with pytest.raises(LoginRefused):
        await auth.login("ann", "wrong", address="10.0.0.1")


async def test_a_success_clears_the_pairs_count(auth: AgentAuth) -> None:
    await auth.add("ann", "pw-1")
    for _ in range(2):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.1")
    await auth.login("ann", "pw-1", address="10.0.0.1")
    for _ in range(2):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.1")
    await auth.login("ann", "pw-1", address="10.0.0.1")


async def test_concurrent_guesses_get_no_more_checks_than_the_limits(
    clock: Clock,
) -> None:
    options = AuthOptions(failures_before_delay=5, max_failures_per_address=20,
                          window_seconds=900)
    auth = AgentAuth(MemoryAgentStore(clock=clock), options=options, hasher=CHEAP, clock=clock)
    await auth.add("ann", "right-one")
    guesses = [auth.login("ann", f"guess-{n}", address="10.0.0.1") for n in range(60)]
    outcomes = await asyncio.gather(*guesses, return_exceptions=True)
    refused = [type(o) for o in outcomes]
    assert refused.count(LoginRefused) == 5
    assert refused.count(TooManyLogins) == 55
    # The right password, from that address, waits like any guess; from
    # another it goes through.
    with pytest.raises(TooManyLogins):
        await auth.login("ann", "right-one", address="10.0.0.1")
    assert (await auth.login("ann", "right-one", address="10.0.0.2")).agent.username == "ann"
    clock.now += 901
    assert (await auth.login("ann", "right-one", address="10.0.0.1")).agent.username == "ann"


async def test_a_success_does_not_count_against_the_address(auth: AgentAuth) -> None:
    for name in ("ann", "bob", "cy", "dee", "eve", "fay", "gus"):
        await auth.add(name, f"{name}-pass")
        await auth.login(name, f"{name}-pass", address="10.0.0.1")  # one office, one address
    for n in range(5):
        with pytest.raises(LoginRefused):
            await auth.login(f"zoe{n}", "wrong", address="10.0.0.1")
    with pytest.raises(TooManyLogins):
        await auth.login("ann", "ann-pass", address="10.0.0.1")


async def test_malformed_names_leave_no_counters_and_old_ones_are_purged(
    auth: AgentAuth, clock: Clock
) -> None:
    store = auth.store
    assert isinstance(store, MemoryAgentStore)
    for n in range(3):
        with pytest.raises(LoginRefused):
            await auth.login(f"Not A Name {n}", "x", address="10.0.0.1")
    assert set(store._failures) == {"addr:10.0.0.1"}
    with pytest.raises(LoginRefused):
        await auth.login("zed", "x", address="10.0.0.2")
    clock.now += 3600
    with pytest.raises(LoginRefused):
        await auth.login("yan", "x", address="10.0.0.3")
    assert set(store._failures) == {"addr:10.0.0.3"}
    assert set(store._attempts) == {"pair:yan@10.0.0.3"}


async def test_password_checks_run_a_few_at_a_time(clock: Clock) -> None:
    hasher = PeakHasher()
    auth = AgentAuth(MemoryAgentStore(clock=clock), hasher=hasher, clock=clock,
                     options=AuthOptions(max_parallel_hashes=2))
    names = [f"agent{n}" for n in range(8)]
    await asyncio.gather(*(auth.add(name, f"{name}-pass") for name in names))
    logins = await asyncio.gather(*(auth.login(name, f"{name}-pass", address=f"10.0.0.{n}")
                                    for n, name in enumerate(names)))
    assert [login.agent.username for login in logins] == names
    assert hasher.peak == 2


async def test_a_new_password_ends_the_accounts_sessions(auth: AgentAuth) -> None:
    await auth.add("ann", "pw-1")
    await auth.add("bob", "pw-b")
    first = await auth.login("ann", "pw-1", address="10.0.0.1")
    second = await auth.login("ann", "pw-1", address="10.0.0.2")
    bobs = await auth.login("bob", "pw-b", address="10.0.0.3")
    # The same password again (accounts given at every start) keeps them.
    await auth.add("ann", "pw-1", role="admin")
    assert (await auth.authenticate(first.token)).role == "admin"
    await auth.add("ann", "pw-2")
    for login in (first, second):
        with pytest.raises(NotAuthenticated, match="password has changed"):
            await auth.authenticate(login.token)
        assert await auth.store.get_session(session_id(login.token)) is None
    assert (await auth.authenticate(bobs.token)).username == "bob"
    fresh = await auth.login("ann", "pw-2", address="10.0.0.1")
    assert (await auth.authenticate(fresh.token)).username == "ann"


@pytest.mark.parametrize(("username", "password", "role"), [
    ("Ann Lee", "pw", "agent"), ("", "pw", "agent"), ("ann", "", "agent"),
    ("ann", "pw", "root"), ("ann", "x" * 2000, "agent"),
])
async def test_bad_accounts_are_refused_and_not_stored(
    auth: AgentAuth, username: str, password: str, role: str
) -> None:
    with pytest.raises(AgentError):
        await auth.add(username, password, role=role)  # type: ignore[arg-type]
    assert await auth.store.agents() == []


def test_the_agents_setting() -> None:
    assert parse_agent_list("ann:pw-1, bob:p:w:admin ,carl:pw:agent,") == [
        ("ann", "pw-1", "agent"), ("bob", "p:w", "admin"), ("carl", "pw", "agent")]
    with pytest.raises(AgentError):
        parse_agent_list("ann")
    with pytest.raises(AgentError):
        parse_agent_list("Bad Name:pw")
