"""`segue run` and `segue check` as an operator runs them."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
import redis.asyncio as aioredis

from bot.assembly.cli import main
from bot.core.conversation import ConversationState
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from context_store import RedisContextStore
from tests.fakes.telegram_api import FakeTelegram
from tests.support.privacy_rig import Ran, keyspace
from tests.support.redis_server import free_port
from tests.support.webchat_client import WebChatClient

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def segue_run(env: dict[str, str]) -> AsyncIterator[str]:
    """Start `segue run` on a free port; yields its base URL once it serves."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--port", str(port),
        cwd=ROOT, env={**os.environ, **env}, stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    try:
        while True:
            line = (await asyncio.wait_for(proc.stderr.readline(), 20)).decode()
            assert line, "segue run exited before serving"
            if "is serving on" in line:
                break
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.terminate()
        assert await asyncio.wait_for(proc.wait(), 20) == 0
        await proc.stderr.read()


async def test_run_on_redis_replays_history_after_a_restart(redis_url: str) -> None:
    env = {"SEGUE_REDIS_URL": redis_url, "SEGUE_WEBCHAT_SECRET": "restart-secret-long-enough"}
    async with aiohttp.ClientSession() as http:
        async with segue_run(env) as base:
            async with http.get(f"{base}/readyz") as response:
                assert response.status == 200
            client = await WebChatClient.connect(http, f"{base}/webchat/ws")
            replies = await client.turn("hello")
            assert replies[0]["sender"] == "bot" and replies[0]["text"]
            await client.close()
        async with segue_run(env) as base:
            again = await WebChatClient.connect(http, f"{base}/webchat/ws", session=client.session)
            assert again.customer == client.customer
            assert [m["text"] for m in again.history][:2] == ["hello", replies[0]["text"]]
            await again.close()


async def test_run_without_redis_says_it_uses_memory() -> None:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--port", str(port), cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")},
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines = []
    while not lines or "is serving on" not in lines[-1]:
        lines.append((await asyncio.wait_for(proc.stderr.readline(), 20)).decode())
        assert lines[-1], "".join(lines)
    proc.terminate()
    await proc.wait()
    assert sum("in-memory store" in line for line in lines) == 1


async def test_run_with_unreachable_redis_fails_loudly() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--port", str(free_port()), cwd=ROOT,
        env={**os.environ, "SEGUE_REDIS_URL": url}, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode != 0
    assert "Redis is unreachable" in err.decode()
    assert "in-memory" not in err.decode()


async def test_run_on_a_port_in_use_says_so_in_one_line_and_exits_2() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--port", str(port), cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")},
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        taken.close()
    assert proc.returncode == 2
    assert f"cannot start: cannot listen on 127.0.0.1:{port}" in err.decode()
    assert "Traceback" not in err.decode()


async def test_run_with_a_token_telegram_refuses_stops_cleanly_and_exits_2() -> None:
    async with FakeTelegram() as telegram:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}
        env.update(SEGUE_TELEGRAM_TOKEN="123456:" + "Wrong" * 7,
                   SEGUE_TELEGRAM_API_URL=telegram.url)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--port", str(free_port()), cwd=ROOT,
            env=env, stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2
    said = err.decode()
    assert "cannot start: Telegram refused the request: TelegramUnauthorizedError" in said
    # What had started is stopped, and no client is left open.
    assert "store closed" in said
    assert "Unclosed" not in said and "Traceback" not in said


async def test_check_reports_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("port: 80\nmax_text_length: -1\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", "--config", str(bad), cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert re.search(rf"{re.escape(str(bad))}:2: max_text_length:", err.decode())


async def test_check_accepts_the_shipped_configuration() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "OK" in out.decode()


async def a_customer(redis_url: str) -> str:
    """A Telegram customer part-way through a flow, written as a turn writes one."""
    store = RedisContextStore.from_url(redis_url)
    try:
        identity = ChannelIdentity("telegram", "5551234")
        customer = await store.resolve_customer(identity, "c0ffee0123456789")
        assert (await store.lock_and_load(customer, token="t", ttl_seconds=5,
                                          message_key="telegram:5551234:1")).locked
        state = ConversationState(turns=1, dialog={"flow": "order_status",
                                                   "slots": {"order": "A1001"}})
        address = Address("telegram", "5551234")
        assert await store.save_and_unlock(
            customer, token="t", state=state.to_json(), message_key="telegram:5551234:1",
            entries=[HistoryEntry(sender="customer", channel="telegram", text="A1001", ts=1.0)],
            identity=identity, address=address)
        return customer
    finally:
        await store.close()


def customers(command: str, customer: str, capsys: pytest.CaptureFixture[str]) -> Ran:
    """`segue customers COMMAND CUSTOMER` through `main`, in this process."""
    status = main(["customers", command, customer])
    out, err = capsys.readouterr()
    return Ran(status, out, err)


def test_customers_export_prints_everything_and_erase_removes_it(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    customer = asyncio.run(a_customer(redis_url))
    exported = customers("export", customer, capsys)
    assert exported.status == 0, exported.err
    document = json.loads(exported.out)
    assert document["customer"] == customer
    assert document["identities"] == [{"channel": "telegram", "user_id": "5551234"}]
    assert document["addresses"]["telegram"]["target"] == "5551234"
    assert document["conversation"]["dialog"] == {"flow": "order_status",
                                                  "slots": {"order": "A1001"}}
    assert [e["text"] for e in document["history"]] == ["A1001"]
    assert (document["handoff"], document["merged"]) == (None, [])

    erased = customers("erase", customer, capsys)
    assert (erased.status, erased.out) == (0, f"customer {customer} erased\n"), erased.err
    # Only the empty marker that turns stale caches away is left.
    assert asyncio.run(everything(redis_url)) == {f"segue:{{c:{customer}}}:moved": '""'}
    for command in ("export", "erase"):
        again = customers(command, customer, capsys)
        assert (again.status, again.out) == (2, "")
        assert f"no customer '{customer}'" in again.err


def test_customers_commands_refuse_unknown_ids_and_say_when_redis_is_missing(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SEGUE_REDIS_URL", redis_url)
    for command in ("export", "erase"):
        for unknown in ("0123456789abcdef", "*", "{c:x}"):
            ran = customers(command, unknown, capsys)
            assert (ran.status, ran.out) == (2, ""), (command, unknown)
            assert "no customer" in ran.err
    assert asyncio.run(everything(redis_url)) == {}
    monkeypatch.delenv("SEGUE_REDIS_URL")
    ran = customers("erase", "0123456789abcdef", capsys)
    assert ran.status == 2 and "SEGUE_REDIS_URL is not set" in ran.err
    monkeypatch.setenv("SEGUE_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    ran = customers("export", "0123456789abcdef", capsys)
    assert ran.status == 3 and "Redis is unreachable" in ran.err


async def everything(redis_url: str) -> dict[str, str]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        return await keyspace(client)
    finally:
        await client.aclose()
