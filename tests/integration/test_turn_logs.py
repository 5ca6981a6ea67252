"""The log of a turn, as a log collector reads it: JSON lines, each line of
one turn carrying its turn id and its customer's id, from the connector
through the engine and the store to delivery, on the web chat and on a
Telegram webhook, and no customer text in it."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.assembly.log_format import JsonFormatter
from bot.assembly.log_setup import BODY_LOGGERS, setup_logging
from bot.core.model import ChannelIdentity, Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from connectors.slack_parse import identity
from context_store import RedisContextStore
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi
from tests.fakes.telegram_api import CUSTOMER, FakeTelegram
from tests.support.app_server import serve_echo
from tests.support.redis_server import free_port
from tests.support.slack_rig import dm, running_segue
from tests.support.telegram_rig import segue_on_fake
from tests.support.webchat_client import WebChatClient

ROOT = Path(__file__).resolve().parents[2]
# What the customers write: it must never reach the log.
SECRET = "card 4111-1111-1111-1111"
OTHER_CUSTOMER = {**CUSTOMER, "id": 5559876, "first_name": "Ola", "username": "ola"}

policy_log = logging.getLogger("dialogs.turn_logs_test")
SHARED_TASKS = ("redis-autopipeline-",)
# Segue's own server keeps no access log; the Slack fake's does.
FAKES_ACCESS_LOG = "aiohttp.access"


class LoggingEchoPolicy:
    """Echoes, logging a line before and after it decides, as a dialog's
    actions do; with `together` set, each turn waits there for the other,
    so two turns are in flight at once."""

    def __init__(self) -> None:
        self.together: asyncio.Barrier | None = None

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        policy_log.info("deciding")
        if self.together is not None:
            await self.together.wait()
        policy_log.info("decided")
        return [Outbound(text=f"You said: {turn.inbound.text}")]


class JsonLines(logging.Handler):
    """Every record logged, as the JSON formatter writes it, each line also
    naming the asyncio task that logged it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.texts: list[str] = []
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = self.format(record)
        self.texts.append(text)
        # Every line parses, on its own.
        line = json.loads(text)
        task = asyncio.current_task() if _in_loop() else None
        line["task"] = task.get_name() if task is not None else None
        self.lines.append(line)

    def since(self, mark: int) -> list[dict[str, Any]]:
        """The lines Segue logged since `mark`, but for those of the store's
        shared Redis writer and reader: they send and read many turns'
        commands at once, so no line of theirs is one turn's. (The platform
        fakes, in this process too, log each request they serve.)"""
        return [line for line in self.lines[mark:]
                if not (line["task"] or "").startswith(SHARED_TASKS)
                and line["logger"] != FAKES_ACCESS_LOG]

    def mark(self) -> int:
        return len(self.lines)


@pytest.fixture(params=["INFO", "DEBUG"])
def logged(request: pytest.FixtureRequest) -> Iterator[JsonLines]:
    """The process's log set up as `segue run` sets it (JSON, at INFO or
    DEBUG, no customer text), every line of it kept."""
    root = logging.getLogger()
    bodies = [logging.getLogger(name) for name in BODY_LOGGERS]
    saved = root.level, [b.level for b in bodies]
    setup_logging(Settings(log_format="json", log_level=request.param))
    root.setLevel(request.param)
    handler = JsonLines()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    logging.captureWarnings(False)
    root.setLevel(saved[0])
    for body, level in zip(bodies, saved[1], strict=True):
        body.setLevel(level)


def _in_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def assert_one_turn(lines: list[dict[str, Any]], customer: str) -> str:
    """Every line carries one turn id, and `customer` from the line its
    customer is known on; that turn id."""
    assert lines, "the turn logged nothing"
    turn_ids = {line.get("turn_id") for line in lines}
    assert len(turn_ids) == 1 and None not in turn_ids, lines
    assert_named_from_identification(lines, customer)
    assert_policy_knew_the_customer(lines)
    (turn_id,) = turn_ids
    assert isinstance(turn_id, str)
    return turn_id


def assert_named_from_identification(lines: list[dict[str, Any]], customer: str) -> None:
    """`customer` on every line from the first that names one (lines logged
    before the engine resolved who wrote cannot know it)."""
    named = [line.get("customer_id") for line in lines]
    first = next((i for i, name in enumerate(named) if name is not None), len(named))
    assert named[first:] == [customer] * (len(named) - first), lines


def assert_policy_knew_the_customer(lines: list[dict[str, Any]]) -> None:
    """What the test's policy logs names the customer: the engine had named
    them by then."""
    decided = [line for line in lines if line["logger"] == policy_log.name]
    assert decided and all(line.get("customer_id") for line in decided), lines


def assert_two_turns(lines: list[dict[str, Any]], customers: set[str]) -> None:
    """Every line carries a turn id; each turn is one customer's, each
    customer's lines one turn's."""
    assert all(line.get("turn_id") for line in lines), lines
    by_turn: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_turn.setdefault(line["turn_id"], []).append(line)
    assert len(by_turn) == len(customers), by_turn
    named = set()
    for turn_lines in by_turn.values():
        customer = next(line["customer_id"] for line in turn_lines if line.get("customer_id"))
        assert_named_from_identification(turn_lines, customer)
        assert_policy_knew_the_customer(turn_lines)
        named.add(customer)
    assert named == customers


def assert_no_customer_text(handler: JsonLines) -> None:
    assert handler.texts, "the capture was off"
    assert not [text for text in handler.texts if "4111" in text]


async def test_every_line_of_a_web_chat_turn_names_the_turn_and_its_customer(
    redis_url: str, http: aiohttp.ClientSession, logged: JsonLines,
) -> None:
    policy = LoggingEchoPolicy()
    async with serve_echo(redis_url, policy=policy) as app:
        ann = await WebChatClient.connect(http, app.ws_url)
        bob = await WebChatClient.connect(http, app.ws_url)
        assert ann.customer and bob.customer
        mark = logged.mark()
        (reply,) = await ann.turn(f"hello, my {SECRET}")
        assert SECRET in reply["text"]
        first = assert_one_turn(logged.since(mark), ann.customer)

        mark = logged.mark()
        (again,) = await ann.turn("and again")
        assert assert_one_turn(logged.since(mark), ann.customer) != first

        mark = logged.mark()
        policy.together = asyncio.Barrier(2)
        await asyncio.gather(ann.turn(f"ann's {SECRET}"), bob.turn(f"bob's {SECRET}"))
        assert_two_turns(logged.since(mark), {ann.customer, bob.customer})
        await ann.close()
        await bob.close()
    assert_no_customer_text(logged)


async def test_every_line_of_a_telegram_update_names_the_turn_and_its_customer(
    telegram_api: FakeTelegram, redis_store: RedisContextStore, logged: JsonLines,
) -> None:
    policy = LoggingEchoPolicy()
    async with segue_on_fake(telegram_api, redis_store, policy=policy) as segue:
        update = telegram_api.message(f"hello, my {SECRET}")
        mark = logged.mark()
        assert await telegram_api.post_update(update) == 200
        dana = await segue.store.resolve_customer(
            ChannelIdentity("telegram", str(CUSTOMER["id"])), "-")
        lines = logged.since(mark)
        # The update's own id: Telegram's, and the engine's for its message.
        assert assert_one_turn(lines, dana) == str(update["update_id"])
        # From the connector (aiogram's dispatcher) through the engine.
        assert {"aiogram.event", "dialogs.turn_logs_test"} <= {line["logger"] for line in lines}
        assert {line.get("channel") for line in lines} == {"telegram"}

        mark = logged.mark()
        policy.together = asyncio.Barrier(2)
        statuses = await asyncio.gather(
            telegram_api.post_update(telegram_api.message(f"dana's {SECRET}")),
            telegram_api.post_update(telegram_api.message(f"ola's {SECRET}",
                                                          user=OTHER_CUSTOMER)))
        assert list(statuses) == [200, 200]
        ola = await segue.store.resolve_customer(
            ChannelIdentity("telegram", str(OTHER_CUSTOMER["id"])), "-")
        assert_two_turns(logged.since(mark), {dana, ola})
    assert len(telegram_api.sent()) == 3
    assert_no_customer_text(logged)


async def test_a_slack_event_s_lines_carry_its_event_id_in_the_request_and_the_inbox_turn(
    slack_api: FakeSlackApi, redis_store: RedisContextStore, logged: JsonLines,
) -> None:
    policy = LoggingEchoPolicy()
    async with running_segue(slack_api, redis_store, policy=policy) as rig:
        # Once answered, the inbox's readers have started (each with a
        # connection of its own, whose opening is logged at DEBUG).
        assert (await rig.post_event(dm("hi", event_id="EvWarmUp"))).status == 200
        await rig.replies(1)
        mark = logged.mark()
        response = await rig.post_event(dm(f"hello, my {SECRET}", event_id="EvTurnLog1"))
        assert response.status == 200
        reply = (await rig.replies(2))[1]
        assert SECRET in reply["text"]
        customer = await redis_store.resolve_customer(identity(TEAM_ID, "U2147483697"), "-")
        # Queued by the request, run by the inbox worker: one turn, the event's id.
        assert assert_one_turn(logged.since(mark), customer) == "EvTurnLog1"

        mark = logged.mark()
        garbled = dm("-", event_id="EvGarbled1")
        garbled["event"]["text"] = {"not": "a string"}
        assert (await rig.post_event(garbled)).status == 200
        # Refused in the request, before any customer is known.
        (refused,) = logged.since(mark)
        assert refused["message"].startswith("Slack event refused (bad_text)")
        assert (refused["turn_id"], refused["channel"]) == ("EvGarbled1", "slack")
    assert_no_customer_text(logged)


@asynccontextmanager
async def segue_run(
    env: dict[str, str], *args: str
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`segue run` on a free port, its stderr piped, and its base URL;
    stopped by SIGTERM at the end."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--port", str(port), *args, cwd=ROOT,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")}, **env},
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield proc, f"http://127.0.0.1:{port}"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 60)


async def read_until(proc: asyncio.subprocess.Process, lines: list[str], needle: str,
                     count: int = 1) -> None:
    """Read stderr lines into `lines` until `count` of them contain `needle`."""
    assert proc.stderr is not None
    while sum(needle in line for line in lines) < count:
        line = (await asyncio.wait_for(proc.stderr.readline(), 30)).decode()
        assert line, "segue run exited early:\n" + "".join(lines)
        lines.append(line)


async def test_segue_run_with_workers_writes_json_lines_to_stderr(
    redis_url: str, http: aiohttp.ClientSession,
) -> None:
    env = {"SEGUE_REDIS_URL": redis_url, "SEGUE_LOG_FORMAT": "json", "SEGUE_LOG_LEVEL": "DEBUG",
           "SEGUE_WEBCHAT_SECRET": "json-lines-secret"}
    lines: list[str] = []
    async with segue_run(env, "--workers", "2") as (proc, base):
        # The supervisor's line comes once both workers serve.
        await read_until(proc, lines, "with 2 workers")
        client = await WebChatClient.connect(http, f"{base}/webchat/ws")
        await client.turn(f"hello, my {SECRET}")
        await client.close()
        await read_until(proc, lines, "turn saved with")
    assert proc.stderr is not None
    lines += (await proc.stderr.read()).decode().splitlines(keepends=True)
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message", "pid"} <= r.keys() for r in records)

    serving = [r for r in records if "is serving on" in r["message"]]
    workers = [r for r in serving if r["message"].startswith("worker ")]
    assert sorted(r["worker"] for r in workers) == [0, 1]
    assert all(f"(pid {r['pid']})" in r["message"] for r in workers)
    # The supervisor: its own pid, and no worker's index.
    (supervisor,) = [r for r in serving if r not in workers]
    assert "worker" not in supervisor and supervisor["pid"] not in {r["pid"] for r in workers}

    by_turn: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        if "turn_id" in record:
            by_turn.setdefault(record["turn_id"], []).append(record)
    # The message's frame, and the hello's if it logged anything.
    assert 1 <= len(by_turn) <= 2
    assert client.customer is not None
    for turn_lines in by_turn.values():
        assert_named_from_identification(turn_lines, client.customer)
        assert len({(r["worker"], r["pid"]) for r in turn_lines}) == 1
    (saved,) = [r for r in records if r["message"].startswith("turn saved with")]
    assert saved["customer_id"] == client.customer
    assert not [line for line in lines if "4111" in line]
