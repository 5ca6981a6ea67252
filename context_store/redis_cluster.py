"""Segue on a Redis Cluster: the `redis+cluster://` URL and its client.

`redis+cluster://[[user]:password@]host:port[,host:port...]` names one or
more nodes to discover the cluster from (any node will do; more survive one
being down at start). A cluster has only database 0, so a path may only be
empty, `/` or `/0`.

What keeps the stores correct on a cluster is in the key layout
(`context_store.keys`: one hash tag per customer, one per identity) and in
the stores themselves: every script and MULTI touches one slot, and what
spans two slots is done in ordered, idempotent steps (`redis_merge`,
`redis_erase`). Here only the client: redis-py's asyncio `RedisCluster`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from bot.core.settings import CLUSTER_SCHEME, cluster_url_problem

__all__ = ["CLUSTER_SCHEME", "ClusterUrl", "connect_cluster", "parse_cluster_url"]


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """What a `redis+cluster://` URL says."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None = None
    password: str | None = None


def parse_cluster_url(url: str) -> ClusterUrl:
    """The parts of a `redis+cluster://` URL; `ValueError` saying what is
    wrong with one that is not (the settings check it the same way)."""
    if not url.startswith(CLUSTER_SCHEME):
        raise ValueError(f"a Redis Cluster URL starts with {CLUSTER_SCHEME}")
    if (problem := cluster_url_problem(url)) is not None:
        raise ValueError(problem)
    auth, at, where = url.removeprefix(CLUSTER_SCHEME).rpartition("@")
    username = password = None
    if at:
        user, colon, secret = auth.partition(":")
        username = unquote(user) or None
        password = unquote(secret) if colon else None
    nodes = []
    for node in where.partition("/")[0].split(","):
        host, _, port = node.rpartition(":")
        nodes.append((host.removeprefix("[").removesuffix("]"), int(port)))
    return ClusterUrl(tuple(nodes), username, password)


class InitialisedCluster(RedisCluster):
    """redis-py's asyncio cluster client, made to know the cluster's layout
    before it routes a command. redis-py chooses a command's node before it
    reads the layout: commands issued together by a fresh (or just reset)
    client go to random nodes, each MOVED answer counts towards resetting
    the client, and a reset cuts the connections the others are using."""

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        await self.initialize()  # at once if the layout is known
        return await super().execute_command(*args, **kwargs)


def connect_cluster(url: str) -> RedisCluster:
    """redis-py's asyncio cluster client for a `redis+cluster://` URL. Like
    the single-server client, it answers quickly when Redis is down: one
    retry (after finding the cluster's layout again), no backoff, a 2 s
    connect timeout, so a webhook can answer 503 in time."""
    parsed = parse_cluster_url(url)
    return InitialisedCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        decode_responses=True,
        retry=Retry(NoBackoff(), 1),
        socket_connect_timeout=2,
    )
