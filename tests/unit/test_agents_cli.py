"""`segue agents add`: the password from stdin, the account in Redis."""

from __future__ import annotations

import asyncio
import io

import pytest
import redis

from bot.assembly.cli import main
from bot.handoff.accounts import AgentAuth, NotAuthenticated
from bot.handoff.ports import AgentAccount
from context_store.agents_redis import RedisAgentStore
from context_store.redis_client import connect


@pytest.fixture(autouse=True)
def no_config(tmp_path: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # type: ignore[arg-type]
    monkeypatch.delenv("SEGUE_REDIS_URL", raising=False)


def test_adds_an_account_to_redis(redis_url: str, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["agents", "add", "ann", "--role", "admin", "--name", "Ann Lee"]) == 0
    assert "'ann' (admin) saved" in capsys.readouterr().out
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        account = AgentAccount.from_json(client.hget("segue:{agents}:accounts", "ann"))
    assert (account.role, account.display_name) == ("admin", "Ann Lee")
    assert account.password_hash.startswith("$argon2id$")


def test_a_new_password_ends_the_agents_sessions(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)

    async def log_in() -> str:
        client = connect(redis_url)
        try:
            auth = AgentAuth(RedisAgentStore(client))
            return (await auth.login("ann", "old horse", address="10.0.0.1")).token
        finally:
            await client.aclose()

    async def who(token: str) -> str:
        client = connect(redis_url)
        try:
            return (await AgentAuth(RedisAgentStore(client)).authenticate(token)).username
        finally:
            await client.aclose()

    monkeypatch.setattr("sys.stdin", io.StringIO("old horse\n"))
    assert main(["agents", "add", "ann"]) == 0
    token = asyncio.run(log_in())
    monkeypatch.setattr("sys.stdin", io.StringIO("old horse\n"))
    assert main(["agents", "add", "ann", "--role", "admin"]) == 0  # the same password
    assert asyncio.run(who(token)) == "ann"
    monkeypatch.setattr("sys.stdin", io.StringIO("new horse\n"))
    assert main(["agents", "add", "ann"]) == 0
    with pytest.raises(NotAuthenticated, match="password has changed"):
        asyncio.run(who(token))


def test_refuses_without_redis_and_stores_nothing(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("pw\n"))
    assert main(["agents", "add", "ann"]) == 2
    err = capsys.readouterr().err
    assert "SEGUE_REDIS_URL is not set" in err and "SEGUE_AGENTS" in err


@pytest.mark.parametrize(("args", "stdin"), [
    (["agents", "add", "ann"], "\n"),
    (["agents", "add", "Not Valid"], "pw\n"),
])
def test_bad_input_exits_2_and_stores_nothing(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, args: list[str], stdin: str
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    assert main(args) == 2
    with redis.Redis.from_url(redis_url) as client:
        assert client.dbsize() == 0


def test_an_unknown_role_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["agents", "add", "ann", "--role", "root"])
    assert exited.value.code == 2


def stored_capacity(redis_url: str, name: str) -> int | None:
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        return AgentAccount.from_json(client.hget("segue:{agents}:accounts", name)).capacity


def test_capacity_is_kept_and_stays_when_added_again_without_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["agents", "add", "ann", "--capacity", "3"]) == 0
    assert "'ann' (agent, capacity 3) saved" in capsys.readouterr().out
    assert stored_capacity(redis_url, "ann") == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["agents", "add", "ann", "--name", "Ann Lee"]) == 0
    assert stored_capacity(redis_url, "ann") == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    assert main(["agents", "add", "ann", "--capacity", "0"]) == 0
    assert stored_capacity(redis_url, "ann") == 0


@pytest.mark.parametrize("capacity", ["-1", "two", "1.5", "1001"])
def test_a_bad_capacity_is_refused_and_nothing_is_stored(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    capacity: str,
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse\n"))
    with pytest.raises(SystemExit) as exited:
        main(["agents", "add", "zed", "--capacity", capacity])
    assert exited.value.code == 2
    assert "--capacity" in capsys.readouterr().err
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        assert client.hget("segue:{agents}:accounts", "zed") is None
