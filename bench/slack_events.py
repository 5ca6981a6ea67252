"""Slack events per second through the inbox: signed Events API requests
(`message.im` event callbacks, signed as Slack signs them) POSTed to `segue
run`'s `/slack/events`, its replies going to the local Slack Web API fake of
the tests, served from this process. Many Slack users at once, each posting
its messages in order. Segue answers a request once the event is queued in
Redis, and the inbox worker runs the turn and posts the replies afterwards:
"accepted" is how fast events are taken in, "until the last reply" how fast
they are answered.

Baseline: `bench/webhook_baseline.py slack` (signature check with slack_sdk,
the JSON parsed, one Redis GET and SET, 200, then one `chat.postMessage`), on
the same Redis and the same fake, in alternating rounds.

Usage: python -m bench.slack_events [--size full|quick|tiny] [--out FILE]
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Callable
from functools import partial

from bench.procs import ROOT, SEGUE_ENV, segue_command, started_async
from bench.table import Row, Sizes, count, row_main
from bench.webchat_turns import TEXTS
from bench.webhook_load import REPLIES_PER_TEXT, HookRound, Replies, Request, hook_round, hook_rows
from tests.fakes.slack_api import FakeSlackApi, signed_headers
from tests.support.redis_server import free_port, redis_server
from tests.support.slack_rig import SECRET, TOKEN, dm

PATH = "/slack/events"


def replies_of(api: FakeSlackApi) -> Replies:
    return Replies(
        wait=lambda count, timeout: api.wait_posted(count, timeout=timeout),
        times=lambda: [c.at for c in api.calls_to("chat.postMessage") if c.status == 200],
        clear=api.calls.clear,
    )


def _request(user: str, channel: str, event_id: str, text: str) -> Request:
    # Signed when sent: Slack's signature holds a timestamp.
    body = json.dumps(dm(text, event_id=event_id, user=user, channel=channel)).encode()
    return body, {**signed_headers(SECRET, body), "Content-Type": "application/json"}


def load(users: itertools.count[int], senders: int,
         events: int) -> list[list[Callable[[], Request]]]:
    """New users each round, so every round holds the same conversations."""
    batches: list[list[Callable[[], Request]]] = []
    for _ in range(senders):
        n = next(users)
        batches.append([partial(_request, f"U{n:08d}", f"D{n:08d}", f"Ev{n:08d}x{i:05d}",
                                TEXTS[i % len(TEXTS)]) for i in range(events)])
    return batches


async def measure(sizes: Sizes) -> dict[str, list[HookRound]]:
    rounds: dict[str, list[HookRound]] = {"baseline": [], "segue": []}
    users = itertools.count(1)
    segue_replies = sizes.senders * sum(REPLIES_PER_TEXT[TEXTS[i % len(TEXTS)]]
                                        for i in range(sizes.updates))
    with redis_server() as redis_url:
        async with FakeSlackApi(token=TOKEN) as api:
            seg_port, base_port = free_port(), free_port()
            segue_env = {**SEGUE_ENV, "SEGUE_REDIS_URL": redis_url,
                         "SEGUE_SLACK_BOT_TOKEN": TOKEN, "SEGUE_SLACK_SIGNING_SECRET": SECRET,
                         "SEGUE_SLACK_API_URL": api.url}
            base_cmd = [sys.executable, str(ROOT / "bench" / "webhook_baseline.py"), "slack",
                        str(base_port), redis_url, api.url, SECRET, TOKEN]
            async with (started_async(segue_command(seg_port), segue_env, seg_port) as segue,
                        started_async(base_cmd, {}, base_port) as base):
                servers = [("baseline", base_port, base.pid, sizes.senders * sizes.updates),
                           ("segue", seg_port, segue.pid, segue_replies)]
                for name, port, pid, _ in servers:  # warm-up: 4 users, 4 messages each
                    warm = 4 * (4 if name == "baseline" else 5)
                    await hook_round(f"http://127.0.0.1:{port}{PATH}", pid, load(users, 4, 4),
                                     replies_of(api), warm)
                for _ in range(sizes.rounds):
                    for name, port, pid, expected in servers:
                        rounds[name].append(await hook_round(
                            f"http://127.0.0.1:{port}{PATH}", pid,
                            load(users, sizes.senders, sizes.updates), replies_of(api), expected))
    return rounds


def run(sizes: Sizes) -> list[Row]:
    rounds = asyncio.run(measure(sizes))
    return hook_rows("Slack events", "events", rounds["segue"], rounds["baseline"],
                     f"{sizes.senders} users at once, {sizes.updates} messages each, "
                     f"{count(sizes.rounds, 'round')}")


if __name__ == "__main__":
    row_main(run, __doc__)
