"""GET /metrics tells what happened: a real app on loopback (web chat,
Telegram and Slack against their fakes, the demo bot, a real Redis), driven
as customers and agents drive it, then scraped over HTTP. With
`segue run --workers 2`, one scrape shows both workers."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.assembly import gauges
from tests.support.channels_rig import ChannelsRig, channels_rig, link_code
from tests.support.handoff_rig import agent_frame
from tests.support.webchat_client import WebChatClient
from tests.support.workers_rig import segue_env, supervised

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(http: aiohttp.ClientSession, base_url: str) -> Samples:
    """Every sample of GET /metrics, by name and labels."""
    async with http.get(f"{base_url}/metrics") as answer:
        assert answer.status == 200
        assert answer.content_type == "text/plain"
        text = await answer.text()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 for one not (yet) exported, as a counter's child
    appears only once counted."""
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scraped_until(http: aiohttp.ClientSession, base_url: str,
                        holds: Callable[[Samples], bool], timeout: float = 10) -> Samples:
    """Scrape until `holds` (for gauges a background task refreshes)."""
    async with asyncio.timeout(timeout):
        while True:
            samples = await scrape(http, base_url)
            if holds(samples):
                return samples
            await asyncio.sleep(0.02)


@pytest.fixture
async def metered(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[ChannelsRig]:
    """Every channel at once, its store-backed gauges refreshed often."""
    monkeypatch.setattr(gauges, "REFRESH_SECONDS", 0.02)
    async with channels_rig(redis_url) as rig:
        yield rig


async def test_a_web_chat_handed_to_an_agent_shows_in_the_metrics(metered: ChannelsRig) -> None:
    http, base = metered.http, metered.app.base_url
    before = await scrape(http, base)

    # A customer talks to the bot over the web chat.
    web = await WebChatClient.connect(http, metered.app.ws_url)
    await web.turn("hello")
    talking = await scrape(http, base)
    assert value(talking, "segue_webchat_sockets") == value(before, "segue_webchat_sockets") + 1
    assert value(talking, "segue_replies_sent_total", channel="web") >= \
        value(before, "segue_replies_sent_total", channel="web") + 1
    assert value(talking, "segue_turns_total", channel="web", outcome="processed") > \
        value(before, "segue_turns_total", channel="web", outcome="processed")
    assert value(talking, "segue_redis_batch_seconds_count") > \
        value(before, "segue_redis_batch_seconds_count")

    # An agent opens the console.
    ann = await metered.agent("ann")
    await ann.listen()
    listening = await scrape(http, base)
    assert value(listening, "segue_agent_consoles") == value(before, "segue_agent_consoles") + 1

    # The customer asks for a person: the queue grows.
    await web.turn("talk to a human", expect=2)
    queued = await scrape(http, base)
    assert value(queued, "segue_handoff_queue_length") == 1

    # The agent claims and answers: the queue shrinks, the wait is measured.
    customer = web.customer or ""
    await ann.act(customer, "claim")
    assert "joined" in (await agent_frame(web))["text"]
    await ann.act(customer, "messages", {"text": "Hi, Ann here."})
    assert (await agent_frame(web))["text"] == "Hi, Ann here."
    claimed = await scrape(http, base)
    assert value(claimed, "segue_handoff_queue_length") == 0
    assert value(claimed, "segue_handoff_wait_seconds_count") == \
        value(before, "segue_handoff_wait_seconds_count") + 1
    assert value(claimed, "segue_replies_sent_total", channel="web") >= \
        value(queued, "segue_replies_sent_total", channel="web") + 2  # "joined", the answer

    # Both leave: the gauges come back down.
    await web.close()
    await ann.close()
    await scraped_until(http, base, lambda now: (
        value(now, "segue_webchat_sockets") == value(before, "segue_webchat_sockets")
        and value(now, "segue_agent_consoles") == value(before, "segue_agent_consoles")))


async def test_link_codes_and_a_limit_show_in_the_metrics(metered: ChannelsRig) -> None:
    http, base = metered.http, metered.app.base_url
    before = await scrape(http, base)

    # A code from Telegram; Slack types a wrong one, then the right one, and says yes.
    await metered.telegram_says("link")
    code = link_code((await metered.telegram_sent(1))[0])
    await metered.slack_says("link ABCD-EFGH")
    await metered.slack_says(f"link {code}")
    await metered.slack_says("yes")
    posted = await metered.slack_posts(3)
    assert posted[2].startswith("Linked!"), posted
    linked = await scrape(http, base)
    assert value(linked, "segue_link_codes_issued_total") == \
        value(before, "segue_link_codes_issued_total") + 1
    assert value(linked, "segue_link_codes_refused_total", reason="invalid") == \
        value(before, "segue_link_codes_refused_total", reason="invalid") + 1
    assert value(linked, "segue_link_codes_redeemed_total", via="code") == \
        value(before, "segue_link_codes_redeemed_total", via="code") + 1
    for channel in ("telegram", "slack"):
        assert value(linked, "segue_replies_sent_total", channel=channel) > \
            value(before, "segue_replies_sent_total", channel=channel)

    # Five more codes in the hour for the joined customer: the sixth is refused.
    for _ in range(5):
        await metered.slack_says("link")
    refusal = (await metered.slack_posts(8))[7]
    assert "several link codes" in refusal, refusal
    limited = await scrape(http, base)
    assert value(limited, "segue_rate_limited_total", limit="codes-cust") == \
        value(before, "segue_rate_limited_total", limit="codes-cust") + 1
    assert value(limited, "segue_link_codes_issued_total") == \
        value(before, "segue_link_codes_issued_total") + 5


async def test_slack_messages_waiting_in_the_inbox_show_as_lag(metered: ChannelsRig) -> None:
    http, base = metered.http, metered.app.base_url
    await scraped_until(http, base, lambda now: value(now, "segue_inbox_lag_seconds") == 0)

    # Slack's Web API hangs: the queued message stays in the inbox until its
    # reply is sent, and the reply waits in the outbox meanwhile.
    metered.slack.hold(seconds=1.5)
    await metered.slack_says("hello")
    await metered.slack.wait_holding()
    waiting = await scraped_until(http, base, lambda now: (
        value(now, "segue_inbox_lag_seconds") > 0
        and value(now, "segue_outbox_backlog_replies") >= 1))
    assert value(waiting, "segue_inbox_lag_seconds") < 60

    # Once it is handled, nothing waits.
    await metered.slack_posts(1)
    await scraped_until(http, base, lambda now: (
        value(now, "segue_inbox_lag_seconds") == 0
        and value(now, "segue_outbox_backlog_replies") == 0))


async def test_two_workers_show_as_one_deployment(redis_url: str,
                                                  http: aiohttp.ClientSession) -> None:
    sockets = 16
    async with supervised(segue_env(redis_url)) as segue, AsyncExitStack() as open_sockets:
        clients = [await WebChatClient.connect(http, segue.ws_url) for _ in range(sockets)]
        for client in clients:
            open_sockets.push_async_callback(client.close)
        # The kernel spreads connections over both workers...
        held = [segue.holder(int(c.ws.get_extra_info("sockname")[1])) for c in clients]
        assert len(set(held)) == 2, held
        for client in clients:
            await client.turn("hello")
        # ...and a scrape, whichever worker answers it, counts them all.
        for _ in range(4):
            async with aiohttp.ClientSession() as fresh:  # a new connection each time
                samples = await scrape(fresh, segue.url)
            assert value(samples, "segue_webchat_sockets") == sockets
            assert value(samples, "segue_turns_total", channel="web",
                         outcome="processed") == sockets
        shared = metrics_dir_of(held[0])

        # A worker killed outright: its sockets no longer count, its turns still do.
        os.kill(held[0], signal.SIGKILL)
        survivors = sum(1 for pid in held if pid != held[0])
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as new:
            await scraped_until(new, segue.url, lambda now: (
                value(now, "segue_webchat_sockets") == survivors
                and value(now, "segue_turns_total", channel="web",
                          outcome="processed") == sockets), timeout=30)
    assert not os.path.exists(shared)  # the supervisor's directory goes with it


def metrics_dir_of(pid: int) -> str:
    """The metrics directory the supervisor gave worker `pid`."""
    with open(f"/proc/{pid}/environ", "rb") as environ:
        variables = dict(v.split(b"=", 1) for v in environ.read().split(b"\0") if b"=" in v)
    shared = variables[b"PROMETHEUS_MULTIPROC_DIR"].decode()
    assert os.path.isdir(shared)
    return shared
