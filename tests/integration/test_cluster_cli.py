"""Segue pointed at a Redis Cluster by `SEGUE_REDIS_URL=redis+cluster://…`:
`segue check` accepts the URL, the app's store is the cluster's, and a
customer is exported and erased there (`segue customers erase`). A real
local cluster of three masters."""

from __future__ import annotations

import asyncio
import os
import sys

from redis.asyncio.cluster import RedisCluster

from bot.assembly.app import open_store
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.privacy import export_customer
from bot.core.settings import Settings
from context_store import RedisContextStore
from tests.support.privacy_rig import ROOT, keyspace, segue_customers

TELEGRAM = ChannelIdentity("telegram", "5551234")


async def segue_check(redis_url: str) -> tuple[int, str]:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SEGUE_")},
           "SEGUE_REDIS_URL": redis_url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "check", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_segue_check_accepts_a_cluster_url(cluster_url: str) -> None:
    # What it says of a bad one: tests/unit/test_redis_cluster_url.py.
    status, said = await segue_check(cluster_url)
    assert status == 0, said


async def test_the_app_opens_the_cluster_store_and_finds_it_ready(cluster_url: str) -> None:
    store = await open_store(Settings(redis_url=cluster_url))  # type: ignore[arg-type]
    try:
        assert isinstance(store, RedisContextStore)
        assert isinstance(store.client, RedisCluster)
        await store.ping()
    finally:
        await store.close()


async def test_a_customer_is_exported_and_erased_by_segue_customers_on_the_cluster(
    cluster_url: str,
) -> None:
    store = RedisContextStore.from_url(cluster_url)
    try:
        customer = await store.resolve_customer(TELEGRAM, "c0ffee0123456789")
        assert (await store.lock_and_load(customer, token="t", ttl_seconds=5, message_key="m1",
                                          identity=TELEGRAM)).locked
        assert await store.save_and_unlock(
            customer, token="t", state="{}", message_key="m1", identity=TELEGRAM,
            address=Address("telegram", "5551234"),
            entries=[HistoryEntry(sender="customer", channel="telegram", text="hi", ts=1.0)])
        document = await export_customer(store, customer, history_max=100)
        assert document is not None and [e["text"] for e in document["history"]] == ["hi"]
        erased = await segue_customers("erase", customer, redis_url=cluster_url)
        assert erased.status == 0, erased.err
        left = await keyspace(store.client)
        assert all(customer not in value and "5551234" not in key + value
                   for key, value in left.items() if not key.endswith(":moved")), left
    finally:
        await store.close()
