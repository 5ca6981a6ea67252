"""One Segue worker as its own process, for tests that kill workers
(no tests here): the real app with the Slack connector on a loopback port,
against a shared Redis and the fake Slack Web API, answering every message
with `echo: <text>`.

    python -m tests.support.slack_worker REDIS_URL SLACK_API_URL PORT STALE_MS

It prints `serving` once it serves. On SIGUSR1 it freezes: every turn that
reaches the dialog from then on waits forever. Each time every queued
message it is handling waits there, and more of them than the last time, it
prints `quiet <how many>`: nothing it has taken is then between saving a
turn and sending its replies, so a test that kills it knows what it left
behind (turns not saved) and what it finished (turns saved and answered).
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from bot.assembly.app import build_app, create_segue
from bot.assembly.http_server import start_http_server
from bot.core.model import Outbound
from bot.core.policy import TurnContext
from bot.core.settings import Settings
from context_store import RedisContextStore
from tests.support.slack_rig import SECRET, TOKEN

# Short enough that a dead worker's customer locks are free again soon.
LOCK_TTL_SECONDS = 3.0


class Worker:
    """Counts the queued messages being handled and those waiting frozen."""

    def __init__(self) -> None:
        self.frozen = False
        self.handling = 0
        self.waiting = 0
        self.reported = 0  # how many waited when `quiet` was last printed

    async def decide(self, turn: TurnContext) -> list[Outbound]:
        if self.frozen:
            self.waiting += 1
            self.check()
            await asyncio.Event().wait()  # until the process is killed
        return [Outbound(text=f"echo: {turn.inbound.text}")]

    def freeze(self) -> None:
        self.frozen = True
        self.check()

    def check(self) -> None:
        if self.frozen and self.handling == self.waiting > self.reported:
            self.reported = self.waiting
            print(f"quiet {self.waiting}", flush=True)


async def main(redis_url: str, api_url: str, port: int, stale_ms: int) -> None:
    settings = Settings(
        slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=api_url,
        webchat_secret="web-secret-for-tests", redis_url=redis_url,
        lock_ttl_seconds=LOCK_TTL_SECONDS,
    )
    worker = Worker()
    store = RedisContextStore.from_url(redis_url, inbox_stale_ms=stale_ms)
    segue = await create_segue(settings, store=store, policy=worker)
    connector: Any = segue.connectors["slack"]
    handle_item = connector.handle_item

    async def counted(data: dict[str, Any]) -> None:
        worker.handling += 1
        try:
            await handle_item(data)
        finally:
            worker.handling -= 1
            worker.check()

    # Before the app starts the connector, which hands this to its inbox worker.
    connector.handle_item = counted
    runner = await start_http_server(build_app(segue), settings, "127.0.0.1", port)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGUSR1, worker.freeze)
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    print("serving", flush=True)
    try:
        await stopped.wait()
    finally:
        await runner.cleanup()


if __name__ == "__main__":
    url, api, port_text, stale_text = sys.argv[1:5]
    asyncio.run(main(url, api, int(port_text), int(stale_text)))
