"""Telegram webhook updates per second through aiogram's parsing: Bot API
`Update` JSON (message updates shaped as Telegram sends them) POSTed with the
secret header to `segue run`'s `/telegram/webhook`, its replies going to the
local Bot API fake of the tests, served from this process. Many Telegram users
at once, each posting its updates in order; Segue answers an update once its
turn is saved and its replies sent.

Baseline: `bench/webhook_baseline.py telegram` (secret check, aiogram's
`Update.model_validate`, one Redis GET and SET, one `sendMessage`, then 200),
on the same Redis and the same fake, in alternating rounds.

Usage: python -m bench.telegram_webhook [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from bench.procs import ROOT, SEGUE_ENV, segue_command, started_async
from bench.table import Row, Sizes, count, row_main
from bench.webchat_turns import TEXTS
from bench.webhook_load import REPLIES_PER_TEXT, HookRound, Replies, Request, hook_round, hook_rows
from tests.fakes.telegram_api import CUSTOMER, TOKEN, FakeTelegram, message_update
from tests.support.redis_server import free_port, redis_server

SECRET = "bench-Webhook_secret"
PATH = "/telegram/webhook"
FIRST_USER = 7_000_000


def replies_of(fake: FakeTelegram) -> Replies:
    return Replies(
        wait=lambda count, timeout: fake.wait_for("sendMessage", count, timeout=timeout),
        times=lambda: [c.at for c in fake.sent("sendMessage")],
        clear=fake.calls.clear,
    )


def _request(update: dict[str, Any]) -> Request:
    return json.dumps(update).encode(), {"Content-Type": "application/json",
                                         "X-Telegram-Bot-Api-Secret-Token": SECRET}


def load(users: itertools.count[int], update_ids: itertools.count[int], senders: int,
         updates: int) -> list[list[Callable[[], Request]]]:
    """New users each round, so every round holds the same conversations."""
    batches: list[list[Callable[[], Request]]] = []
    for _ in range(senders):
        user = {**CUSTOMER, "id": next(users)}
        batches.append([partial(_request, message_update(next(update_ids),
                                                         TEXTS[i % len(TEXTS)], user=user))
                        for i in range(updates)])
    return batches


async def measure(sizes: Sizes) -> dict[str, list[HookRound]]:
    rounds: dict[str, list[HookRound]] = {"baseline": [], "segue": []}
    users, update_ids = itertools.count(FIRST_USER), itertools.count(1)
    segue_replies = sizes.senders * sum(REPLIES_PER_TEXT[TEXTS[i % len(TEXTS)]]
                                        for i in range(sizes.updates))
    with redis_server() as redis_url:
        async with FakeTelegram() as fake:
            seg_port, base_port = free_port(), free_port()
            segue_env = {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url, "SEGUE_TELEGRAM_TOKEN": TOKEN,
                         "SEGUE_TELEGRAM_MODE": "webhook", "SEGUE_TELEGRAM_WEBHOOK_SECRET": SECRET,
                         "SEGUE_TELEGRAM_API_URL": fake.url}
            base_cmd = [sys.executable, str(ROOT / "bench" / "webhook_baseline.py"), "telegram",
                        str(base_port), redis_url, fake.url, SECRET, TOKEN]
            async with (started_async(segue_command(seg_port), segue_env, seg_port) as segue,
                        started_async(base_cmd, {}, base_port) as base):
                servers = [("baseline", base_port, base.pid, sizes.senders * sizes.updates),
                           ("segue", seg_port, segue.pid, segue_replies)]
                for _, port, pid, _ in servers:  # warm-up
                    await hook_round(f"http://127.0.0.1:{port}{PATH}", pid,
                                     load(users, update_ids, 4, 4), replies_of(fake), 0)
                for _ in range(sizes.rounds):
                    for name, port, pid, expected in servers:
                        rounds[name].append(await hook_round(
                            f"http://127.0.0.1:{port}{PATH}", pid,
                            load(users, update_ids, sizes.senders, sizes.updates),
                            replies_of(fake), expected))
    return rounds


def run(sizes: Sizes) -> list[Row]:
    rounds = asyncio.run(measure(sizes))
    return hook_rows("Telegram webhook", "updates", rounds["segue"], rounds["baseline"],
                     f"{sizes.senders} users at once, {sizes.updates} updates each, "
                     f"{count(sizes.rounds, 'round')}")


if __name__ == "__main__":
    row_main(run, __doc__)
