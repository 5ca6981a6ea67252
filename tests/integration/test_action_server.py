"""Custom actions on a real Rasa action server, and what a broken one does to a turn."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.core.conversation import ConversationState
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from dialogs.actions import InProcessActions, RemoteActions, domain_of, webhook_payload
from dialogs.build import build_dialog_policy
from dialogs.check import check_dialogs
from dialogs.runtime import DialogPolicy
from tests.support.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def action_server() -> AsyncIterator[str]:
    """`python -m rasa_sdk --actions dialogs.demo.actions` on a free port; its webhook URL."""
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "rasa_sdk", "--actions", "dialogs.demo.actions",
        "--port", str(port),
        cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = asyncio.create_task(process.stdout.read())
    try:
        await _until_healthy(f"http://127.0.0.1:{port}/health", output)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        # Sanic shuts its workers down cleanly on SIGINT.
        process.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(15):
                await process.wait()
        except TimeoutError:
            os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
        await output


async def _until_healthy(url: str, output: asyncio.Task[bytes]) -> None:
    """The server logs that it is up before Sanic listens, so ask it instead."""
    async with aiohttp.ClientSession() as http, asyncio.timeout(30):
        while True:
            if output.done():
                raise AssertionError("action server exited:\n" + output.result().decode())
            try:
                async with http.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.05)  # nothing to await: the port opens in another process


@pytest.fixture
async def broken_server() -> AsyncIterator[dict[str, str]]:
    """Two action servers that fail: one never answers, one answers 500."""
    release = asyncio.Event()
    calls: list[str] = []

    async def hang(request: web.Request) -> web.Response:
        calls.append("hang")
        await release.wait()
        return web.json_response({"events": [], "responses": []})

    async def fail(request: web.Request) -> web.Response:
        calls.append("fail")
        return web.json_response({"error": "boom"}, status=500)

    app = web.Application()
    app.router.add_post("/hang/webhook", hang)
    app.router.add_post("/fail/webhook", fail)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield {
            "hang": f"http://{host}:{port}/hang/webhook",
            "fail": f"http://{host}:{port}/fail/webhook",
            "closed": f"http://127.0.0.1:{free_port()}/webhook",
        }
    finally:
        release.set()
        await runner.cleanup()


class Chat:
    """One customer talking to a policy directly, state kept as the engine keeps it."""

    def __init__(self, policy: DialogPolicy) -> None:
        self.policy = policy
        self.state = ConversationState()
        self.n = 0

    async def say(self, text: str) -> list[Outbound]:
        self.n += 1
        inbound = Inbound(ChannelIdentity("web", "s1"), Address("web", "s1"), f"m{self.n}", text)
        # A JSON round trip, as through the store.
        self.state = ConversationState.from_json(self.state.to_json())
        return await self.policy.decide(TurnContext("cust-1", inbound, self.state))


def payload_for(order_id: str) -> dict[str, object]:
    dialogs, problems = check_dialogs(ROOT / "dialogs")
    assert dialogs is not None, problems
    return webhook_payload(
        action="action_order_status", sender_id="cust-1", slots={"order_id": order_id},
        latest_message={"text": order_id, "intent": {}, "entities": []},
        domain=domain_of(dialogs),
    )


async def test_a_real_action_server_answers_as_in_process(action_server: str) -> None:
    remote = RemoteActions(action_server, timeout_seconds=5)
    local = InProcessActions.from_module("dialogs.demo.actions", Settings())
    for order_id in ("A1001", "A1002", "A1003", "A9999"):
        payload = payload_for(order_id)
        assert await remote.run(payload) == await local.run(payload)
    found = await remote.run(payload_for("A1003"))
    assert found.messages[0].text and found.messages[0].text.startswith("Order A1003 is delivered")

    # The same conversation, turn by turn, through the whole policy.
    remote_chat = Chat(build_dialog_policy(Settings(action_server_url=action_server)))
    local_chat = Chat(build_dialog_policy(Settings()))
    replies: list[str] = []
    for text in ["where is my order", "A9999", "A1002", "where is order a1001?"]:
        replies = [r.text for r in await remote_chat.say(text)]
        assert replies == [r.text for r in await local_chat.say(text)]
    assert replies[0].startswith("Order A1001 is shipped.")


@pytest.mark.parametrize("kind", ["hang", "fail", "closed"])
async def test_a_broken_server_gets_a_polite_reply_and_frees_the_conversation(
    kind: str, broken_server: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(action_server_url=broken_server[kind], action_timeout_seconds=0.3)
    chat = Chat(build_dialog_policy(settings))
    await chat.say("where is my order")
    with caplog.at_level(logging.ERROR, logger="dialogs.runtime"):
        [reply] = await chat.say("A1001")
    assert "can't look that up right now" in reply.text
    assert [b.payload for b in reply.buttons] == ["order_status", "human"]
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "action" in errors[0]
    # Nothing waits for the failed action: the next message starts afresh.
    assert chat.state.dialog["flow"] is None
    [greeting] = await chat.say("hi")
    assert "order" in greeting.text
