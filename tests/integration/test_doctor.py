"""`segue doctor` as an operator runs it: the store (real Redis servers with
and without persistence, refusing CONFIG, not there, silent, a cluster, a
Sentinel set), the web chat settings, the configuration and the dialogs;
and the command as a process. The platform checks are in
test_doctor_platforms."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from bot.assembly.cli import main
from tests.support.doctor_rig import (
    REDIS_PASSWORD,
    SECRETS,
    SIGNING_SECRET,
    TELEGRAM_TOKEN,
    Doctor,
    RunDoctor,
    assert_well_formed,
    doctor_runner,
    empty_config,
    persistent_redis_server,
    slack_env,
    slack_fake,
    telegram_fake,
    web_chat_env,
    webhook_env,
    with_password,
)
from tests.support.redis_cluster import ClusterNodes
from tests.support.redis_sentinel import SentinelSet, redis_sentinel_set
from tests.support.redis_server import free_port, redis_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return empty_config(tmp_path)


@pytest.fixture
def doctor(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
           config_file: Path) -> RunDoctor:
    return doctor_runner(monkeypatch, capsys, config_file)


@pytest.fixture(scope="module")
def persistent_redis() -> Iterator[str]:
    with persistent_redis_server() as url:
        yield url


@pytest.fixture(scope="module")
def forgetful_redis() -> Iterator[str]:
    """A Redis that keeps nothing across a restart and evicts keys when full."""
    with redis_server() as url:
        with redis.Redis.from_url(url) as client:
            client.config_set("appendonly", "no")
            client.config_set("save", "")
            client.config_set("maxmemory-policy", "allkeys-lru")
        yield url


@pytest.fixture(scope="module")
def sentinels() -> Iterator[SentinelSet]:
    with redis_sentinel_set() as found:
        yield found


# Nothing configured.

async def test_nothing_configured_warns_of_the_memory_store_and_open_web_chat(
        doctor: RunDoctor) -> None:
    ran = await doctor({})
    assert ran.code == 0
    assert ran.line("store") == (
        "warn  store: SEGUE_REDIS_URL is not set: the in-memory store, so data is lost on "
        "restart\n  fix: set SEGUE_REDIS_URL to a Redis with persistence (redis://host:6379/0)")
    assert ran.level("web chat secret") == "warn"
    assert ran.level("web chat origins") == "warn"
    assert ran.level("dialogs") == "ok"
    assert "telegram" not in ran.out and "slack" not in ran.out


async def test_several_workers_without_redis_fail_and_without_web_chat_secret_warn(
        doctor: RunDoctor) -> None:
    ran = await doctor({"SEGUE_WORKERS": "2"})
    assert ran.code == 1
    assert ran.level("store") == "FAIL"
    # `segue run` gives its workers one secret: only a restart ends sessions.
    assert ran.line("web chat secret") == (
        "warn  web chat secret: SEGUE_WEBCHAT_SECRET is not set: `segue run` gives its 2 "
        "workers one at random, so web chat sessions and resume links end when it restarts\n"
        "  fix: set SEGUE_WEBCHAT_SECRET to a long random value "
        "(python -c 'import secrets; print(secrets.token_urlsafe(32))')")


# The store.

async def test_redis_without_persistence_and_with_eviction_warns(
        doctor: RunDoctor, forgetful_redis: str) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": forgetful_redis, **web_chat_env()})
    assert ran.code == 0
    assert ran.level("store") == "ok"
    assert ran.line("store persistence").startswith(
        "warn  store persistence: neither AOF nor RDB snapshots")
    assert "fix: CONFIG SET appendonly yes" in ran.line("store persistence")
    assert ran.line("store eviction").startswith(
        "warn  store eviction: maxmemory-policy allkeys-lru: when memory is full")


async def test_redis_snapshots_count_as_persistence(
        doctor: RunDoctor, forgetful_redis: str) -> None:
    with redis.Redis.from_url(forgetful_redis) as client:
        client.config_set("save", "3600 1")
        try:
            ran = await doctor({"SEGUE_REDIS_URL": forgetful_redis})
        finally:
            client.config_set("save", "")
    assert ran.line("store persistence") == "ok    store persistence: RDB snapshots (save 3600 1)"


async def test_a_redis_refusing_config_is_told_as_unreadable_without_its_password(
        doctor: RunDoctor, persistent_redis: str) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": with_password(persistent_redis), **web_chat_env()})
    assert ran.code == 0
    assert ran.level("store") == "ok"
    assert "redis://127.0.0.1:" in ran.line("store") and "doctor:" not in ran.out
    assert ran.line("store persistence").startswith(
        "warn  store persistence: cannot read (CONFIG GET refused: ")
    assert ran.level("store eviction") == "warn"


async def test_a_wrong_redis_password_fails_without_showing_it(
        doctor: RunDoctor, persistent_redis: str) -> None:
    url = with_password(persistent_redis).replace(REDIS_PASSWORD, REDIS_PASSWORD + "-wrong")
    ran = await doctor({"SEGUE_REDIS_URL": url})
    assert ran.code == 1
    assert ran.line("store").startswith(
        f"FAIL  store: Redis at {persistent_redis} answers with an error: invalid "
        "username-password pair")
    assert REDIS_PASSWORD not in ran.out


async def test_a_redis_error_reply_is_shown_not_taken_for_silence(
        doctor: RunDoctor, persistent_redis: str) -> None:
    url = persistent_redis.removesuffix("/0") + "/9999"
    ran = await doctor({"SEGUE_REDIS_URL": url})
    assert ran.code == 1
    assert ran.line("store") == (
        f"FAIL  store: Redis at {url} answers with an error: DB index is out of range\n"
        "  fix: correct SEGUE_REDIS_URL (database number, user, password) or the Redis "
        "user's rights")


async def test_a_password_given_as_a_url_option_is_not_shown(
        doctor: RunDoctor, persistent_redis: str) -> None:
    url = f"{persistent_redis}?username=doctor&password={REDIS_PASSWORD}"
    ran = await doctor({"SEGUE_REDIS_URL": url})
    assert f"at {persistent_redis} answers" in ran.line("store")
    assert ran.level("store persistence") == "warn"  # CONFIG refused to this user


async def test_an_unreachable_redis_fails_quickly(doctor: RunDoctor) -> None:
    port = free_port()
    started = time.monotonic()
    ran = await doctor({"SEGUE_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    assert time.monotonic() - started < 10
    assert ran.code == 1
    assert ran.line("store").startswith(
        f"FAIL  store: Redis at redis://127.0.0.1:{port}/0 does not answer: ")
    assert "fix: start Redis, or correct SEGUE_REDIS_URL" in ran.line("store")
    assert "store persistence" not in ran.out


async def test_a_silent_redis_does_not_hang_the_command(doctor: RunDoctor) -> None:
    # Accepts connections, never answers.
    accepted: list[asyncio.StreamWriter] = []
    server = await asyncio.start_server(lambda r, w: accepted.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        started = time.monotonic()
        ran = await doctor({"SEGUE_REDIS_URL": f"redis://127.0.0.1:{port}/0"})
        assert time.monotonic() - started < 15
    finally:
        server.close()
        for writer in accepted:
            writer.close()
            await writer.wait_closed()
        await server.wait_closed()
    assert ran.code == 1
    assert "does not answer: no answer within 5 s" in ran.line("store")


async def test_a_redis_cluster_is_checked_on_every_primary(
        doctor: RunDoctor, cluster_url: str, redis_cluster_session: ClusterNodes) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": cluster_url})
    assert re.search(r"store: Redis Cluster \d+\.\d+\.\d+ at redis\+cluster://", ran.line("store"))
    assert ran.level("store eviction") == "ok"
    # Every primary but one keeps an append-only file.
    *kept, forgetful = redis_cluster_session.clients()
    try:
        for client in kept:
            client.config_set("appendonly", "yes")
        ran = await doctor({"SEGUE_REDIS_URL": cluster_url})
    finally:
        for client in kept:
            client.config_set("appendonly", "no")
            client.close()
        forgetful.close()
    port = forgetful.connection_pool.connection_kwargs["port"]
    assert ran.line("store persistence").startswith(
        f"warn  store persistence: neither AOF nor RDB snapshots on 127.0.0.1:{port}: ")


async def test_replicas_asked_for_but_missing_fail_and_the_password_stays_hidden(
        doctor: RunDoctor, persistent_redis: str) -> None:
    for url in (f"{persistent_redis}?replicas=1", f"{with_password(persistent_redis)}?replicas=1"):
        ran = await doctor({"SEGUE_REDIS_URL": url})
        assert ran.code == 1
        assert f"at {persistent_redis} answers" in ran.line("store")
        assert ran.line("store replicas") == (
            "FAIL  store replicas: every message would be refused: Redis has 0 replica(s), "
            "the URL asks for 1\n"
            "  fix: add replicas to the master, or lower ?replicas in SEGUE_REDIS_URL")
    assert "doctor:" not in ran.out


async def test_replicas_without_the_option_are_not_checked(
        doctor: RunDoctor, persistent_redis: str) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": f"{persistent_redis}?replicas=0"})
    assert ran.level("store") == "ok" and "store replicas" not in ran.out


async def test_a_sentinel_master_with_the_replicas_asked_for_passes(
        doctor: RunDoctor, sentinels: SentinelSet) -> None:
    enough = await doctor({"SEGUE_REDIS_URL": f"{sentinels.url}?replicas=1"})
    assert enough.line("store replicas") == (
        "ok    store replicas: 1 connected to the master; the URL asks for 1 to hold each "
        "acknowledged write")
    too_many = await doctor({"SEGUE_REDIS_URL": f"{sentinels.url}?replicas=2"})
    assert too_many.code == 1
    assert too_many.line("store replicas").startswith(
        "FAIL  store replicas: every message would be refused: Redis has 1 replica(s), the "
        "URL asks for 2")


async def test_a_sentinel_url_reaches_the_master(
        doctor: RunDoctor, sentinels: SentinelSet) -> None:
    ran = await doctor({"SEGUE_REDIS_URL": sentinels.url})
    assert re.search(r"ok    store: Redis \d+\.\d+\.\d+ at redis\+sentinel://127\.0\.0\.1:\d+,"
                     r".*/\w+ answers", ran.line("store"))
    assert ran.level("store persistence") == "warn"  # the test set keeps nothing


# The web chat, the configuration and the dialogs.

async def test_plain_http_public_url_warns(doctor: RunDoctor) -> None:
    ran = await doctor({"SEGUE_PUBLIC_URL": "http://bot.example.com"})
    assert ran.line("public url").startswith(
        "warn  public url: http://bot.example.com is not https")


async def test_a_config_problem_is_one_failing_check_each(
        doctor: RunDoctor, config_file: Path) -> None:
    config_file.write_text("port: 99999\nno_such_setting: 1\n")
    ran = await doctor({"SEGUE_TELEGRAM_TOKEN": TELEGRAM_TOKEN})
    assert ran.code == 1
    fails = [text for text in ran.lines if text.startswith("FAIL")]
    assert len(fails) == 2, ran.out
    assert f"FAIL  config: {config_file}:1: port: " in ran.out
    assert f"FAIL  config: {config_file}:2: no_such_setting: " in ran.out


async def test_a_dialog_problem_fails(doctor: RunDoctor, tmp_path: Path) -> None:
    dialogs = tmp_path / "dialogs"
    dialogs.mkdir()
    (dialogs / "flows.yml").write_text("flows: [unclosed\n")
    ran = await doctor({"SEGUE_DIALOGS_DIR": str(dialogs)})
    assert ran.code == 1
    assert re.search(r"^FAIL  dialogs: .*flows\.yml", ran.out, re.MULTILINE)


# The command as a process.

def test_help_lists_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["doctor", "--help"])
    assert ended.value.code == 0
    shown = capsys.readouterr().out
    for check in ("config", "store", "store persistence", "store eviction", "store replicas",
                  "telegram token", "telegram username", "telegram webhook",
                  "telegram delivery", "slack token", "slack socket mode", "slack events",
                  "web chat secret", "web chat origins", "public url", "dialogs", "clock"):
        assert re.search(rf"^  {check}  ", shown, re.MULTILINE), f"{check!r} in:\n{shown}"


async def test_python_m_bot_doctor_prints_no_secret_and_exits_1_on_failure(
        persistent_redis: str, config_file: Path) -> None:
    env = {name: value for name, value in os.environ.items() if not name.startswith("SEGUE_")}
    async with telegram_fake() as telegram, slack_fake() as slack:
        env.update({"SEGUE_REDIS_URL": with_password(persistent_redis),
                    **webhook_env(telegram, SEGUE_TELEGRAM_BOT_USERNAME="another_bot"),
                    **slack_env(slack, SEGUE_SLACK_SIGNING_SECRET=SIGNING_SECRET),
                    **web_chat_env()})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "doctor", "--config", str(config_file), cwd=ROOT,
            env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    ran = Doctor(proc.returncode or 0, out.decode())
    assert_well_formed(ran)
    assert ran.code == 1
    assert [text.split(":")[0] for text in ran.lines if not text.startswith("  fix")] == [
        "ok    config", "ok    store", "warn  store persistence", "warn  store eviction",
        "ok    telegram token", "FAIL  telegram username", "warn  telegram webhook",
        "ok    telegram delivery", "ok    slack token", "ok    slack socket mode",
        "ok    web chat secret", "ok    web chat origins", "ok    public url",
        "ok    dialogs", "ok    clock"]
    for secret in SECRETS:
        assert secret not in err.decode()
