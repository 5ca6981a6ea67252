"""Agent accounts and logins on the memory agent store."""

from __future__ import annotations

import time

import pytest
from argon2 import PasswordHasher

from bot.agents import (
    AgentAuth,
    AgentError,
    AuthOptions,
    LoginRefused,
    NotAuthenticated,
    TooManyLogins,
    parse_agent_list,
    session_id,
)
from context_store.agents import MemoryAgentStore

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
    options = AuthOptions(session_seconds=3600, max_failures_per_user=3,
                          max_failures_per_address=5, window_seconds=60)
    return AgentAuth(MemoryAgentStore(), options=options, hasher=CHEAP, clock=clock)


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


async def test_failures_are_limited_per_user_then_per_address(auth: AgentAuth) -> None:
    await auth.add("ann", "pw-1")
    await auth.add("bob", "pw-2")
    for _ in range(3):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.1")
    with pytest.raises(TooManyLogins):
        await auth.login("ann", "pw-1", address="10.0.0.2")
    # Two more failures from that address reach its limit of five.
    for name in ("bob", "nobody"):
        with pytest.raises(LoginRefused):
            await auth.login(name, "wrong", address="10.0.0.1")
    with pytest.raises(TooManyLogins):
        await auth.login("bob", "pw-2", address="10.0.0.1")
    assert (await auth.login("bob", "pw-2", address="10.0.0.3")).agent.username == "bob"


async def test_a_success_clears_the_username_count(auth: AgentAuth) -> None:
    await auth.add("ann", "pw-1")
    for _ in range(2):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.1")
    await auth.login("ann", "pw-1", address="10.0.0.1")
    for _ in range(2):
        with pytest.raises(LoginRefused):
            await auth.login("ann", "wrong", address="10.0.0.9")
    await auth.login("ann", "pw-1", address="10.0.0.9")


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
