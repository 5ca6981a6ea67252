"""`segue run` and `segue check` as an operator runs them."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

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
    env = {"SEGUE_REDIS_URL": redis_url, "SEGUE_WEBCHAT_SECRET": "restart-secret"}
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
