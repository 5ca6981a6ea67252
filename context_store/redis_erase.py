"""Erase for `RedisContextStore`, and the records that make it complete.

What a customer leaves in Redis, and how erase finds each:

- recorded as it is written, in the customer's own hash-tagged keys: the
  customers joined into them (`merged`, kept by every merge), the one-time
  tokens issued for them (`tokens`: link codes, deep links), the customers
  whose pending link offer names them (`offers`);
- read from the customer's keys: their identities (and so the identity
  mappings);
- found by one SCAN of the whole keyspace, because nothing names them from
  the customer's side: every key of their hash tag and of the customers
  joined into them (state, history, dedup marks, outbox, ...), counters and
  tokens named by one of their ids or channel identities (rate limits,
  wrong link codes and their waits), and indexes outside any customer
  (the handoff queue and claims, the outbox index) with an id of theirs as
  a member; then the entries of every stream (the inbox) and the items of
  every list (the parked items) that hold one of their ids.

Erase is rare and the SCAN costs one pass over the keyspace (on a Redis
Cluster, over every primary); the turn path pays only for the records, and
only in the turns that write them (a link code, a merge). What stays: an
empty `moved` marker under each id for a day, so that workers that cached an
id resolve the identity again instead of writing under it.

No step touches two hash slots at once, so erase runs on a cluster as it
does on one Redis, and each step can run again: the marker, the lock, the
offers withdrawn, the identity mappings (each deleted only if it still names
an erased id), the keys, the shared indexes and streams, the joined ids'
markers emptied, and last the records that led to all of these. An erase
that stops half-way is finished by erasing the customer again.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.core.conversation import ConversationState, LinkOffer
from bot.core.errors import LockTimeout
from bot.core.model import ChannelIdentity
from bot.core.ports import StoreLimits
from bot.core.privacy import mentions, named_by, needles
from context_store.keys import KeyBuilder, identity_member, parse_identity_member
from context_store.redis_client import RedisClient, Script, ScriptCall, run_redis, run_scripts, scan
from context_store.steps import Steps

log = logging.getLogger(__name__)

_BATCH = 500
# The customer's keys that lead erase to the rest; deleted last.
_RECORDS = ("identities", "tokens", "offers", "merged")
# KEYS: an identity's mapping. ARGV: the ids being erased. Deleted if it
# still names one of them.
_DROP_MAPPING = """
local c = redis.call('GET', KEYS[1])
for _, id in ipairs(ARGV) do
  if c == id then return redis.call('DEL', KEYS[1]) end
end
return 0
"""
ERASE_STEPS = ("mark", "lock", "offers", "mappings", "keys", "shared", "markers", "records")
# A lock held this long by an erase is plenty: it deletes, it does not think.
_ERASE_LOCK_SECONDS = 30.0


class RedisEraseMixin:
    """`erase` and `CustomerRecordStore` for `RedisContextStore`, on its
    client, keys and limits; its lock helpers come from the store."""

    client: RedisClient
    keys: KeyBuilder
    limits: StoreLimits

    def _init_erase(self) -> None:
        self._drop_mapping: Script = self.client.register_script(_DROP_MAPPING)

    async def _wait_lock(self, customer_id: str, token: str, ttl_seconds: float) -> None:
        raise NotImplementedError  # RedisContextStore's

    async def unlock(self, customer_id: str, *, token: str) -> None:
        raise NotImplementedError  # RedisContextStore's

    # The records.

    async def note_tokens(self, customer_id: str, keys: Sequence[str], ttl_seconds: int) -> None:
        if not keys:
            return
        name = self.keys.customer(customer_id, "tokens")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(name, *keys)
            # The newest tokens live longest: the record outlives them all.
            pipe.expire(name, ttl_seconds)
            await run_redis(pipe.execute())

    async def note_offer(self, customer_id: str, holder: str) -> None:
        name = self.keys.customer(customer_id, "offers")
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.sadd(name, holder)
            self._keep(pipe, name)
            await run_redis(pipe.execute())

    async def merged_ids(self, customer_id: str) -> list[str]:
        members = await run_redis(self.client.smembers(self.keys.customer(customer_id, "merged")))
        return sorted(members)

    def _note_merge(self, pipe: Any, source: str, target: str, earlier: Sequence[str]) -> None:
        """In the merge's write to the target: `source`, and whoever was
        joined into it before (`earlier`), are joined into `target` now."""
        name = self.keys.customer(target, "merged")
        pipe.sadd(name, source, *earlier)
        self._keep(pipe, name)

    def _keep(self, pipe: Any, name: str) -> None:
        # Like the customer's data, but never shorter than what a joined
        # customer leaves behind (dedup marks, the `moved` marker).
        limits = self.limits
        if limits.retention_seconds:
            pipe.expire(name, max(limits.retention_seconds, limits.dedup_ttl_seconds,
                                  limits.moved_marker_seconds))
        else:
            pipe.persist(name)

    # Erase.

    async def erase(self, customer_id: str) -> None:
        await self.erase_steps(customer_id).run()

    def erase_steps(self, customer_id: str) -> Steps:
        """`ERASE_STEPS`, each one slot at a time (a Redis Cluster allows no
        more) and safe to run again: the records that lead to everything
        else go last, so an erase stopped half-way is finished by erasing
        again."""
        k = self.keys
        found = _Found([customer_id])

        async def mark() -> None:
            # No turn starts under this id from now on.
            await run_redis(self.client.set(k.customer(customer_id, "moved"), "",
                                            ex=self.limits.moved_marker_seconds))

        async def lock() -> None:
            # A turn already running saves before the delete.
            try:
                await self._wait_lock(customer_id, secrets.token_hex(8), _ERASE_LOCK_SECONDS)
            except LockTimeout:
                log.warning("erasing customer %s while a turn still holds them", customer_id)
            found.ids = [customer_id, *await self.merged_ids(customer_id)]
            found.identities, found.tokens, found.holders = await self._records(found.ids)

        async def offers() -> None:
            for holder in sorted(found.holders - set(found.ids)):
                await self._drop_offer(holder, found.ids)

        async def keys() -> None:
            found.others = await self._drop_keys(found.ids, found.identities, found.tokens)

        async def shared() -> None:
            wanted = needles(found.ids, found.identities)
            await self._drop_from_shared(found.others, found.ids, wanted)

        async def markers() -> None:
            async with self.client.pipeline(transaction=False) as pipe:
                for gone in found.ids[1:]:
                    # Emptied, not deleted: it still turns stale caches away.
                    pipe.set(k.customer(gone, "moved"), "", xx=True, keepttl=True)
                await run_redis(pipe.execute())

        steps = Steps()
        steps.add("mark", mark)
        steps.add("lock", lock)
        steps.add("offers", offers)
        steps.add("mappings", lambda: self._drop_mappings(found.identities, found.ids))
        steps.add("keys", keys)
        steps.add("shared", shared)
        steps.add("markers", markers)
        steps.add("records", lambda: self._drop_records(found.ids))
        return steps

    async def _records(
        self, ids: Sequence[str]
    ) -> tuple[list[ChannelIdentity], set[str], set[str]]:
        k = self.keys
        async with self.client.pipeline(transaction=False) as pipe:
            for customer_id in ids:
                pipe.smembers(k.customer(customer_id, "identities"))
                pipe.smembers(k.customer(customer_id, "tokens"))
                pipe.smembers(k.customer(customer_id, "offers"))
            replies = await run_redis(pipe.execute())
        identities = sorted({parse_identity_member(m) for r in replies[0::3] for m in r})
        tokens = {t for r in replies[1::3] for t in r}
        holders = {h for r in replies[2::3] for h in r}
        return identities, tokens, holders

    async def _drop_offer(self, holder: str, ids: Collection[str]) -> None:
        """Another customer was asked whether to join one of `ids`: the
        question, and what it quoted, goes; their answer finds nothing."""
        token = secrets.token_hex(8)
        try:
            await self._wait_lock(holder, token, _ERASE_LOCK_SECONDS)
        except LockTimeout:
            log.warning("customer %s kept a link offer to an erased customer: "
                        "their turn held the lock", holder)
            return
        try:
            key = self.keys.customer(holder, "state")
            raw = await run_redis(self.client.get(key))
            state = ConversationState.from_json(raw)
            offer = state.pending_link
            if raw is not None and isinstance(offer, LinkOffer) and offer.customer_id in ids:
                state.pending_link = None
                await run_redis(self.client.set(key, state.to_json(), xx=True, keepttl=True))
        finally:
            await self.unlock(holder, token=token)

    async def _drop_mappings(self, identities: Sequence[ChannelIdentity],
                             ids: Collection[str]) -> None:
        # One that points elsewhere was unlinked and is someone else's now.
        calls: list[ScriptCall] = [(self._drop_mapping, [self.keys.identity(i)], list(ids))
                                   for i in identities]
        await run_scripts(self.client, *calls)

    async def _drop_records(self, ids: Sequence[str]) -> None:
        """Last: what led the erase to the rest. The erased customer's own
        `merged` record, which names the others, goes after theirs."""
        for customer_id in [*ids[1:], ids[0]]:
            await run_redis(self.client.delete(
                *(self.keys.customer(customer_id, part) for part in _RECORDS)))

    async def _drop_keys(self, ids: Sequence[str], identities: Sequence[ChannelIdentity],
                         tokens: Collection[str]) -> list[str]:
        """The one SCAN: delete the keys named by the customers; return the
        keys outside any customer (indexes, streams, lists) to look into."""
        k = self.keys
        prefix = f"{k.prefix}:"
        tags = tuple(f"{prefix}{{c:{customer_id}}}:" for customer_id in ids)
        kept = {k.customer(customer_id, part)
                for customer_id in ids for part in ("moved", *_RECORDS)}
        named = [*ids, *(identity_member(i) for i in identities)]
        doomed = [k.token(t) for t in sorted(tokens)]
        others: list[str] = []
        # Every primary of a cluster: counters and tokens are spread over all.
        async for key in scan(self.client, _glob_escape(prefix) + "*", count=1000):
            rest = key[len(prefix):]
            if rest.startswith("{c:"):
                if key.startswith(tags) and key not in kept:
                    doomed.append(key)
            elif rest.startswith(("counter:", "token:")):
                if named_by(rest.partition(":")[2], named):
                    doomed.append(key)
            elif not rest.startswith("{i:"):
                others.append(key)
        for start in range(0, len(doomed), _BATCH):
            await run_redis(self.client.delete(*doomed[start:start + _BATCH]))
        return others

    async def _drop_from_shared(self, keys: Sequence[str], ids: Sequence[str],
                                wanted: Collection[str]) -> None:
        if not keys:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.type(key)
            kinds = await run_redis(pipe.execute())
        async with self.client.pipeline(transaction=False) as pipe:
            # Indexes hold customer ids as members (never user ids, which
            # could equal an agent's name): the handoff queue and claims,
            # the outbox index.
            for key, kind in zip(keys, kinds, strict=True):
                if kind == "zset":
                    pipe.zrem(key, *ids)
                elif kind == "hash":
                    pipe.hdel(key, *ids)
                elif kind == "set":
                    pipe.srem(key, *ids)
            await run_redis(pipe.execute())
        for key, kind in zip(keys, kinds, strict=True):
            if kind == "stream":
                await self._drop_entries(key, wanted)
            elif kind == "list":
                await self._drop_items(key, wanted)

    async def _drop_entries(self, stream: str, wanted: Collection[str]) -> None:
        """Queued work holding the customers' ids (the inbox): acknowledged
        for every group, so no worker is handed it again, and deleted."""
        doomed: list[str] = []
        start = "-"
        while True:
            entries = await run_redis(self.client.xrange(stream, start, "+", count=_BATCH))
            doomed.extend(entry_id for entry_id, fields in entries
                          if any(mentions(v, wanted) for v in (fields or {}).values()))
            if len(entries) < _BATCH:
                break
            start = f"({entries[-1][0]}"
        if not doomed:
            return
        groups = await run_redis(self.client.xinfo_groups(stream))
        async with self.client.pipeline(transaction=True) as pipe:
            for group in groups:
                pipe.xack(stream, group["name"], *doomed)
            pipe.xdel(stream, *doomed)
            await run_redis(pipe.execute())

    async def _drop_items(self, name: str, wanted: Collection[str]) -> None:
        """Items holding the customers' ids (the parked list)."""
        items = await run_redis(self.client.lrange(name, 0, -1))
        doomed = {item for item in items if mentions(item, wanted)}
        if doomed:
            async with self.client.pipeline(transaction=True) as pipe:
                for item in doomed:
                    pipe.lrem(name, 0, item)
                await run_redis(pipe.execute())


@dataclass(slots=True)
class _Found:
    """What one erase learns as it goes, for its later steps."""

    ids: list[str]
    identities: list[ChannelIdentity] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    holders: set[str] = field(default_factory=set)
    others: list[str] = field(default_factory=list)


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)
