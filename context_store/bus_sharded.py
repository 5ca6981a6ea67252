"""One bus channel's subscriber on a Redis Cluster: sharded pub/sub.

A shard channel lives in a hash slot like a key: `SPUBLISH` reaches only the
subscribers on the nodes serving that slot. So the reader connects to the
node that serves its channel's slot and `SSUBSCRIBE`s there. When the slot
moves (resharding, a replica promoted), Redis ends the subscription with an
`sunsubscribe` nobody asked for, and a lost node ends the connection; either
way the reader says the subscription is lost, and subscribing again asks the
cluster where the slot is now.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

log = logging.getLogger(__name__)

# How long to wait for Redis to confirm a subscription.
CONFIRM_SECONDS = 5.0


class SubscriptionLost(ConnectionError):
    """The node no longer serves the channel's slot."""


class ShardReader:
    """`SSUBSCRIBE` to one channel on the node serving it (a `bus_redis.Reader`)."""

    def __init__(self, cluster: RedisCluster, channel: str) -> None:
        self.cluster = cluster
        self.channel = channel
        self._node: aioredis.Redis | None = None
        self._pubsub: Any = None
        # After a failure, the slot map the cluster client holds may still
        # name the node that failed or gave the slot away.
        self._map_is_stale = False

    @property
    def subscribed(self) -> bool:
        return self._pubsub is not None

    async def subscribe(self) -> None:
        if self._map_is_stale:
            await self.cluster.nodes_manager.initialize()
            self._map_is_stale = False
        else:
            await self.cluster.initialize()
        where = self.cluster.get_node_from_key(self.channel)
        if where is None:
            raise SubscriptionLost(f"no node serves {self.channel} now")
        settings = self.cluster.get_connection_kwargs()
        self._node = aioredis.Redis(
            host=where.host, port=int(where.port), username=settings.get("username"),
            password=settings.get("password"), decode_responses=True,
            socket_connect_timeout=settings.get("socket_connect_timeout"))
        self._pubsub = self._node.pubsub(ignore_subscribe_messages=False)
        await self._pubsub.ssubscribe(self.channel)
        # Only once confirmed are later publications ours. A node that does
        # not serve the slot (the map was stale) answers MOVED: an error here.
        message = await self._pubsub.get_message(timeout=CONFIRM_SECONDS)
        if message is None or message["type"] != "ssubscribe":
            raise TimeoutError(f"{where.name} did not confirm the subscription to "
                               f"{self.channel}")

    async def next_message(self) -> tuple[str, str] | None:
        message = await self._pubsub.get_message(timeout=1.0)
        if message is None:
            return None
        if message["type"] == "sunsubscribe":
            # Not asked for: the node gave the slot to another.
            raise SubscriptionLost(f"{self.channel} moved to another node")
        if message["type"] != "smessage":
            return None
        return str(message["channel"]), str(message["data"])

    async def close(self) -> None:
        self._map_is_stale = True
        pubsub, self._pubsub = self._pubsub, None
        node, self._node = self._node, None
        for closing in (pubsub, node):
            try:
                if closing is not None:
                    await closing.aclose()
            except Exception:  # already broken; nothing else to release
                log.debug("closing a broken shard subscription failed", exc_info=True)
