"""Joining one customer into another on Redis, in steps a crash cannot spoil.

A merge touches two customers' hash tags and one identity mapping per
channel identity: on a Redis Cluster these are different slots, so no script
or MULTI may span them. It runs as steps, each one slot, each idempotent,
in an order that leaves every crash recoverable, under both customers'
locks (taken in sorted order, so two merges of one pair cannot deadlock):

1. `join`: the target gets the source's history merged into its own by
   time (the source's entries it already holds are not added again), the
   source's identities and addresses, and the source (and whoever was
   joined into it) in its `merged` record; one MULTI on the target.
   Before this step nothing changed; after it, the source is still whole
   and still answers its identities: a crash here is finished by running
   the merge again, which the source's next turn does (its state still
   holds the pending merge).
2. `marks`: the source's dedup marks are copied to the target (a message
   the source processed stays a duplicate under the target). Copying again
   is harmless.
3. `retire`: the source's `moved` marker names the target, and its state,
   history, identities and addresses go; one MULTI on the source. This is
   the point of no return: from here every turn under the source's id is
   answered `moved`. The marker is kept as long as the customer's data
   until step 5, because identities may still point at the source.
4. `point`: each identity mapping that still names the source (or none)
   names the target. A crash part-way leaves some identities pointing at
   the retired source; their next turn finds the marker, and
   `lock_and_load` moves that identity on to the target (the same script),
   so the next turn completes this step for each identity.
5. `settle`: the marker gets its usual short life (a day: longer than any
   worker caches an identity's customer).

Running the merge again after step 3 (the source's marker already names the
target) does steps 4 and 5 for the target's identities and succeeds.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson

from bot.core.errors import CustomerGone
from bot.core.model import Address, ChannelIdentity, HistoryEntry
from bot.core.ports import StoreLimits, merge_histories
from context_store.keys import KeyBuilder, identity_member
from context_store.redis_client import (
    RedisClient,
    Script,
    ScriptCall,
    run_redis,
    run_scripts,
    scan,
)
from context_store.steps import Steps

# KEYS: an identity's mapping. ARGV: source, target, retention seconds.
# Points the identity at the target unless it names someone else by now
# (it was unlinked and is another customer's): 1 if it names the target.
POINT = """
local c = redis.call('GET', KEYS[1])
if c and c ~= ARGV[1] and c ~= ARGV[2] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
return 1
"""

MERGE_STEPS = ("join", "marks", "retire", "point", "settle")


class RedisMergeMixin:
    """`IdentityStore.merge` for `RedisContextStore`, on its client, keys and
    limits; its lock and reading helpers come from the store."""

    client: RedisClient
    keys: KeyBuilder
    limits: StoreLimits
    _point: Script

    def _init_merge(self) -> None:
        self._point = self.client.register_script(POINT)

    async def _wait_lock(self, customer_id: str, token: str, ttl_seconds: float) -> None:
        raise NotImplementedError  # RedisContextStore's

    async def unlock(self, customer_id: str, *, token: str) -> None:
        raise NotImplementedError  # RedisContextStore's

    async def history(self, customer_id: str, limit: int) -> list[HistoryEntry]:
        raise NotImplementedError  # RedisContextStore's

    async def identities(self, customer_id: str) -> list[ChannelIdentity]:
        raise NotImplementedError  # RedisContextStore's

    async def addresses(self, customer_id: str) -> dict[str, Address]:
        raise NotImplementedError  # RedisContextStore's

    if TYPE_CHECKING:  # RedisEraseMixin's, a sibling: a stub here would hide it
        async def merged_ids(self, customer_id: str) -> list[str]: ...

        def _note_merge(self, pipe: Any, source: str, target: str,
                        earlier: Sequence[str]) -> None: ...

    async def merge(
        self,
        source: str,
        target: str,
        *,
        lock_ttl_seconds: float,
        also: Sequence[ChannelIdentity] = (),
    ) -> None:
        # Locks in a fixed order, so two merges of the same pair cannot deadlock.
        tokens = {source: secrets.token_hex(8), target: secrets.token_hex(8)}
        held: list[str] = []
        try:
            for customer_id in sorted(tokens):
                await self._wait_lock(customer_id, tokens[customer_id], lock_ttl_seconds)
                held.append(customer_id)
            await (await self.merge_steps(source, target, also)).run()
        finally:
            for customer_id in held:
                await self.unlock(customer_id, token=tokens[customer_id])

    async def merge_steps(self, source: str, target: str,
                          also: Sequence[ChannelIdentity] = ()) -> Steps:
        """The steps left to join `source` into `target` (the caller holds
        both locks); `CustomerGone` if either is erased, or merged elsewhere."""
        k = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.get(k.customer(source, "moved"))
            pipe.get(k.customer(target, "moved"))
            source_moved, target_moved = await run_redis(pipe.execute())
        if target_moved is not None or source_moved not in (None, target):
            raise CustomerGone(f"customer {source} or {target} was erased or merged")
        moving: list[ChannelIdentity] = []

        async def join() -> None:
            moving[:] = await self._join(source, target, also)

        async def point() -> None:
            await self._point_identities(moving, source, target)

        async def point_again() -> None:
            # The source's identity record went with step 3: the target's
            # holds them all, and only mappings still naming the source move.
            await self._point_identities(await self.identities(target), source, target)

        steps = Steps()
        if source_moved is None:
            steps.add("join", join)
            steps.add("marks", lambda: self._copy_dedup_marks(source, target))
            steps.add("retire", lambda: self._retire(source, target))
            steps.add("point", point)
        else:
            steps.add("point", point_again)
        steps.add("settle", lambda: self._settle(source))
        return steps

    async def _join(self, source: str, target: str,
                    also: Sequence[ChannelIdentity]) -> list[ChannelIdentity]:
        """Step 1; the identities that move."""
        k = self.keys
        cap = self.limits.history_max
        theirs, ours = await self.history(source, cap), await self.history(target, cap)
        # Once joined, the source's entries are the target's: a second run
        # (after a crash) must not add them twice.
        held = {_entry_key(e) for e in ours}
        merged = merge_histories([e for e in theirs if _entry_key(e) not in held], ours)
        moving = sorted(set(await self.identities(source)) | set(also))
        earlier = await self.merged_ids(source)
        addresses = await self.addresses(source)
        history, members = k.customer(target, "history"), k.customer(target, "identities")
        where = k.customer(target, "addresses")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(history)
            if merged:
                pipe.rpush(history, *(orjson.dumps(e.to_json()) for e in merged[-cap:]))
            if moving:
                pipe.sadd(members, *(identity_member(i) for i in moving))
            for channel, address in addresses.items():
                # The target's own latest address on a channel wins.
                pipe.hsetnx(where, channel, orjson.dumps(address.to_json()).decode())
            self._note_merge(pipe, source, target, earlier)
            for key in (history, members, where):
                if self.limits.retention_seconds:
                    pipe.expire(key, self.limits.retention_seconds)
                else:
                    pipe.persist(key)
            await run_redis(pipe.execute())
        return moving

    async def _copy_dedup_marks(self, source: str, target: str) -> None:
        """Step 2: a redelivery of a message the source processed is still a
        duplicate once its identity resolves to the target. The marks share
        the source's slot: on a cluster, one node is scanned."""
        prefix = self.keys.seen(source, "")
        marks = [key async for key in scan(self.client, prefix + "*", slot_of=prefix)]
        if not marks:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key in marks:
                pipe.pttl(key)
            ttls = await run_redis(pipe.execute())
        async with self.client.pipeline(transaction=False) as pipe:
            for key, ttl in zip(marks, ttls, strict=True):
                if ttl > 0:
                    pipe.set(self.keys.seen(target, key[len(prefix):]), "1", px=ttl)
            await run_redis(pipe.execute())

    async def _retire(self, source: str, target: str) -> None:
        """Step 3: one MULTI on the source's slot."""
        k = self.keys
        # Until `settle`, identities may still point here: the marker that
        # sends them on lives as long as they do.
        keep = max(self.limits.retention_seconds, self.limits.moved_marker_seconds)
        async with self.client.pipeline(transaction=True) as pipe:
            if self.limits.retention_seconds:
                pipe.set(k.customer(source, "moved"), target, ex=keep)
            else:
                pipe.set(k.customer(source, "moved"), target)
            for part in ("state", "history", "identities", "addresses"):
                pipe.delete(k.customer(source, part))
            await run_redis(pipe.execute())

    async def _point_identities(self, identities: Sequence[ChannelIdentity],
                                source: str, target: str) -> None:
        """Step 4: one script per identity (each its own slot), sent together."""
        calls: list[ScriptCall] = [
            (self._point, [self.keys.identity(i)],
             [source, target, self.limits.retention_seconds])
            for i in identities]
        await run_scripts(self.client, *calls)

    async def forward(self, identity: ChannelIdentity, source: str, target: str) -> None:
        """Step 4 for one identity, done by its next turn: the identity still
        names a customer whose marker says it moved to `target`."""
        await self._point_identities([identity], source, target)

    async def _settle(self, source: str) -> None:
        """Step 5."""
        key = self.keys.customer(source, "moved")
        await run_redis(self.client.expire(key, self.limits.moved_marker_seconds))


def _entry_key(entry: HistoryEntry) -> bytes:
    return orjson.dumps(entry.to_json())
