"""The processes of the soak test (`bench/soak.py`): a redis-server that keeps
its data in an append-only file across a restart, and Segue workers
(`python -m bot run`) that are killed and started again.

The workers answer with a small dialog written for the soak (`ECHO_DIALOG`):
"soak message N" is answered with exactly one reply, "got N", in every state,
so that each reply says which message it answers.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import aiohttp
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]

# `everysec`, not `always`: the soak restarts Redis as a process (SIGTERM),
# and a process that stops, even killed, loses nothing it acknowledged: Redis
# writes the AOF before it answers, and only the fsync waits for the second.
# An fsync guards against the machine losing power, which the soak does not
# simulate; `always` would add a disk flush to every write and measure the
# disk instead of Segue.
REDIS_FSYNC = "everysec"
READY_SECONDS = 60.0
STOP_SECONDS = 20.0
# Polling a starting process: it offers nothing to await.
POLL_SECONDS = 0.05

ECHO_DIALOG = """\
intents:
  numbered:
    examples: [soak message, a soak message, soak message number]
entities:
  seq: {regex: '\\b(\\d{1,9})\\b'}
slots:
  seq:
    type: text
    entity: seq
    prompt: utter_which
fallback:
  response: utter_not_numbered
  # Never hand a soak customer to a person: the bot would fall silent.
  handoff_after: 0
flows:
  echo:
    triggers: [numbered]
    steps:
      - ask: seq
      - say: utter_got
responses:
  utter_got:
    text: "got {seq}"
  utter_which:
    text: "which number?"
  utter_not_numbered:
    text: "not a numbered message"
"""


async def terminate(proc: asyncio.subprocess.Process | None) -> None:
    """Stop a process politely, then not, and reap it."""
    if proc is None or proc.returncode is not None:
        return
    proc.terminate()
    try:
        await asyncio.wait_for(proc.wait(), STOP_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()


def write_dialogs(directory: Path) -> Path:
    """The echo dialog in `directory`, which becomes the workers' dialogs_dir."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "echo.yml").write_text(ECHO_DIALOG, encoding="utf-8")
    return directory


class RedisProcess:
    """A redis-server on a loopback port with the append-only file on."""

    def __init__(self, binary: str, port: int, workdir: Path, log: IO[bytes]) -> None:
        self.binary = binary
        self.port = port
        self.workdir = workdir
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--appendonly", "yes", "--appendfsync", REDIS_FSYNC, "--save", "",
            "--dir", str(self.workdir), "--protected-mode", "yes",
            stdout=self.log, stderr=self.log,
        )
        deadline = time.monotonic() + READY_SECONDS
        client = aioredis.Redis.from_url(self.url)
        try:
            while True:
                if self.proc.returncode is not None:
                    raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
                with suppress(aioredis.ConnectionError, aioredis.BusyLoadingError, OSError):
                    if await client.ping():
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                await asyncio.sleep(POLL_SECONDS)
        finally:
            await client.aclose()

    async def restart(self) -> RedisRestart:
        """SIGTERM, then start again on the same files; what came back."""
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        marker = secrets.token_hex(8)
        try:
            # Written last before the stop: if it comes back, so did the rest.
            await client.set("soak:marker", marker)
            keys_before = int(await client.dbsize())
        finally:
            await client.aclose()
        began = time.monotonic()
        await self.stop()
        await self.start()
        down = time.monotonic() - began
        client = aioredis.Redis.from_url(self.url, decode_responses=True)
        try:
            kept = await client.get("soak:marker") == marker
            keys_after = int(await client.dbsize())
            await client.delete("soak:marker")
        finally:
            await client.aclose()
        return RedisRestart(down, keys_before, keys_after, kept)

    async def stop(self) -> None:
        await terminate(self.proc)


@dataclass(frozen=True, slots=True)
class RedisRestart:
    """What one Redis restart cost and kept."""

    down_seconds: float
    keys_before: int
    keys_after: int
    marker_kept: bool


def worker_env(*, redis_url: str, telegram_api: str, telegram_token: str,
               telegram_secret: str, slack_api: str, slack_token: str, slack_secret: str,
               dialogs_dir: Path) -> dict[str, str]:
    """The `SEGUE_*` settings every worker gets (README "Configuration")."""
    return {
        "SEGUE_REDIS_URL": redis_url,
        "SEGUE_LOG_LEVEL": "WARNING",
        # Shared by both workers, so each accepts the other's session tokens.
        "SEGUE_WEBCHAT_SECRET": "soak-" + secrets.token_hex(16),
        # All load comes from one address at a steady pace: the soak measures
        # delivery, not the per-client limits.
        "SEGUE_RATE_LIMITS": "off",
        "SEGUE_TELEGRAM_TOKEN": telegram_token,
        "SEGUE_TELEGRAM_MODE": "webhook",
        "SEGUE_TELEGRAM_WEBHOOK_SECRET": telegram_secret,
        "SEGUE_TELEGRAM_API_URL": telegram_api,
        "SEGUE_SLACK_BOT_TOKEN": slack_token,
        "SEGUE_SLACK_SIGNING_SECRET": slack_secret,
        "SEGUE_SLACK_API_URL": slack_api,
        "SEGUE_DIALOGS_DIR": str(dialogs_dir),
        # The audit reads every entry: none may be trimmed away.
        "SEGUE_HISTORY_MAX": "1000000",
        # A reconnecting web chat needs no history to resend what was not acked.
        "SEGUE_HISTORY_REPLAY": "5",
    }


class Worker:
    """One `python -m bot run` process on a fixed loopback port."""

    def __init__(self, name: str, port: int, env: dict[str, str], log: IO[bytes]) -> None:
        self.name = name
        self.port = port
        self.env = env
        self.log = log
        self.proc: asyncio.subprocess.Process | None = None
        self.up = False
        self.starts = 0
        self.kills = 0
        self.failed_starts = 0
        self.unexpected_exits = 0
        self._watch: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, http: aiohttp.ClientSession) -> None:
        """Start the process and wait until it answers /readyz; a process that
        exits first (Redis was away at that moment) is started again."""
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            self.starts += 1
            self.log.write(f"--- start {self.starts} of {self.name}\n".encode())
            self.log.flush()
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", "run", "--port", str(self.port),
                cwd=ROOT,
                # The package of this checkout, whatever the venv has installed.
                env={**os.environ, **self.env, "PYTHONPATH": str(ROOT)},
                stdout=self.log, stderr=self.log,
            )
            if await self._ready(http, deadline):
                self.up = True
                self._watch = asyncio.create_task(self._watch_exit(self.proc))
                return
            self.failed_starts += 1
            await self._reap()
        raise RuntimeError(f"{self.name} did not become ready in {READY_SECONDS:.0f} s")

    async def _ready(self, http: aiohttp.ClientSession, deadline: float) -> bool:
        assert self.proc is not None
        while time.monotonic() < deadline:
            if self.proc.returncode is not None:
                return False
            with suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"{self.url}/readyz",
                                    timeout=aiohttp.ClientTimeout(total=2)) as resp:
                    if resp.status == 200:
                        return True
            await asyncio.sleep(POLL_SECONDS)
        return False

    async def _watch_exit(self, proc: asyncio.subprocess.Process) -> None:
        """A worker that exits unasked leaves the balancer and is counted."""
        await proc.wait()
        if proc is self.proc and self.up:
            self.up = False
            self.unexpected_exits += 1

    async def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye, whatever was in flight is cut."""
        self.up = False
        if self.proc is not None and self.proc.returncode is None:
            self.kills += 1
            self.proc.send_signal(signal.SIGKILL)
            await self.proc.wait()

    async def stop(self) -> None:
        self.up = False
        await self._reap()

    async def _reap(self) -> None:
        await terminate(self.proc)
