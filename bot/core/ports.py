"""What the core asks of storage, in slices: each caller names the few
methods it uses; `ContextStore` is all of them, what a store implements.
`WebPresenceStore` is offered by the agent stores (`bot.handoff.ports`) but
is about web chat sockets, not agents, so the web chat asks for it here.

A turn costs three calls, each one round trip on Redis:
`resolve_customer`, `lock_and_load`, `save_and_unlock`. None of them reads or
rewrites the history; state is one small JSON value. The turn's replies are
saved with it, in the customer's outbox (`OutboxStore`), and delivered from
there (`bot.core.outbox`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from bot.core.model import Address, ChannelIdentity, HistoryEntry


@dataclass(frozen=True, slots=True)
class StoreLimits:
    """Caps and lifetimes the store applies on every write."""

    history_max: int = 1000
    retention_seconds: int = 90 * 86400  # 0: customer data never expires
    dedup_ttl_seconds: int = 3 * 86400
    # Outlives any cached identity -> customer mapping (see Engine).
    moved_marker_seconds: int = 86400
    # How long a merge waits for both customers' turns to finish.
    merge_lock_wait_seconds: float = 20.0


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What `lock_and_load` found.

    `duplicate`: the message was processed already (no lock was taken).
    `moved`: this customer id was merged into another or erased; resolve the
    channel identity again (no lock was taken).
    `locked`: the caller now holds the customer's lock and `state` is current.
    None of these: someone else holds the lock; try again.
    """

    locked: bool
    duplicate: bool = False
    moved: bool = False
    state: str | None = None
    # With `index_outbox`: the mark of the customer's outbox index entry that
    # this call left (see `OutboxStore`); 0 otherwise.
    mark: int = 0


@dataclass(frozen=True, slots=True)
class Saved:
    """What `save_and_unlock` did; falsy if the lock was lost (nothing written).
    `first_seq`: the first outbox item's number (the others follow; 0: none);
    `claimed`: the saving token now holds the customer's outbox claim;
    `earlier`: undelivered items of earlier saves (they go first)."""

    ok: bool
    first_seq: int = 0
    claimed: bool = False
    earlier: int = 0

    def __bool__(self) -> bool:
        return self.ok


# How many partitions the inbox's lanes are hashed onto. Changing it moves
# lanes between partitions: drain the inbox first, or some items of a lane
# may be handled out of order.
INBOX_PARTITIONS = 16


@dataclass(frozen=True, slots=True)
class InboxItem:
    """A durably queued payload; `attempts` counts deliveries to a worker.
    `stale_ms`: how long it stays its taker's without an `inbox_keep` before
    it may be handed out again (0: the store does not say)."""

    item_id: str
    payload: str
    attempts: int
    stale_ms: int = 0


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """One reply waiting in a customer's outbox. `seq` orders a customer's
    items; `due` (seconds, on the store's clock) is when a sweeper may take
    it: until then the worker that saved it has it to itself."""

    seq: int
    payload: str
    due: float


@dataclass(frozen=True, slots=True)
class OutboxClaim:
    """What `outbox_claim` found. `claimed`: the caller holds the outbox and
    `items` are all undelivered ones, in order. `busy`: another holds it, its
    first item is not due, or a turn holds the lock; `retry_in` seconds is
    when that may change. `idle`: nothing to deliver, no turn in progress."""

    status: Literal["claimed", "busy", "idle"]
    items: tuple[OutboxItem, ...] = ()
    retry_in: float = 0.0


def merge_histories(*histories: Sequence[HistoryEntry]) -> list[HistoryEntry]:
    """Entries of several histories in time order (stable for equal times)."""
    return sorted((e for h in histories for e in h), key=lambda e: e.ts)


@runtime_checkable
class StoreHealth(Protocol):
    """Whether the store answers, and closing it."""

    async def ping(self) -> None:
        """Raise `StoreUnavailable` unless the store answers."""

    async def close(self) -> None: ...


@runtime_checkable
class TurnStore(Protocol):
    """What one turn costs: three calls, each one round trip on Redis.

    `resolve_customer`, `lock_and_load`, `save_and_unlock`; the lock can be
    kept alive or given back, and a customer erased after their last turn."""

    async def resolve_customer(
        self, identity: ChannelIdentity, new_customer_id: str, *, provisional_ttl: int = 0
    ) -> str:
        """The customer of `identity`, creating it as `new_customer_id` if new.
        A mapping created with `provisional_ttl` lives that long unless a later
        call (the identity's first message) extends it to the retention time."""

    async def lock_and_load(
        self,
        customer_id: str,
        *,
        token: str,
        ttl_seconds: float,
        message_key: str | None,
        identity: ChannelIdentity | None = None,
        index_outbox: bool = False,
    ) -> LoadResult:
        """Take the customer's lock and read their state, unless `message_key`
        was already processed or the lock is held. With `identity`: answer
        `moved` if the customer's recorded identities no longer include it
        (it was unlinked, perhaps by another worker). With `index_outbox`
        (the caller may save replies under this lock): first, in the same
        round trip, index the customer for the outbox sweeper, to be looked
        at `ttl_seconds` from now, so a worker that dies after saving
        replies still leaves them findable (`LoadResult.mark`)."""

    async def save_and_unlock(
        self,
        customer_id: str,
        *,
        token: str,
        state: str | None,
        entries: Sequence[HistoryEntry],
        message_key: str | None,
        identity: ChannelIdentity | None,
        address: Address | None = None,
        outbox: Sequence[str] = (),
        claim_seconds: float = 30.0,
    ) -> Saved:
        """Atomically write state (unless None), append `entries`, mark
        `message_key` processed, record `identity` and the latest `address`
        of its channel, add `outbox` (encoded replies) to the customer's
        outbox, due `claim_seconds` from now, taking the outbox claim for
        `token` for that long if no one else holds it, and release the lock.
        Falsy, writing nothing, if `token` no longer holds the lock."""

    async def extend_lock(self, customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        """Give the lock `ttl_seconds` more if `token` still holds it."""

    async def unlock(self, customer_id: str, *, token: str) -> None:
        """Release the lock if `token` still holds it."""

    async def erase(self, customer_id: str) -> None:
        """Remove every key of the customer, and their identities' mappings,
        leaving only a marker that makes `lock_and_load` answer `moved`, so
        workers that cached the old id resolve the identity again."""


@runtime_checkable
class ConversationReader(Protocol):
    """Reading a customer's conversation outside their turn."""

    async def load_state(self, customer_id: str) -> str | None: ...

    async def load_states(self, customer_ids: Sequence[str]) -> list[str | None]:
        """`load_state` of many customers in one round trip, in their order."""

    async def addresses(self, customer_id: str) -> dict[str, Address]:
        """The latest address the customer wrote from, by channel."""

    async def history(self, customer_id: str, limit: int) -> list[HistoryEntry]:
        """The last `limit` entries, oldest first."""

    async def find_customer(self, identity: ChannelIdentity) -> str | None:
        """The customer `identity` belongs to, or None: never creates one."""

    async def identities(self, customer_id: str) -> list[ChannelIdentity]:
        """Every channel identity that has written as this customer."""


@runtime_checkable
class IdentityStore(Protocol):
    """Joining and separating customers' channel identities."""

    async def append(self, customer_id: str, entries: Sequence[HistoryEntry]) -> None:
        """Append to the history outside a turn (agent replies, notices)."""

    async def merge(
        self,
        source: str,
        target: str,
        *,
        lock_ttl_seconds: float,
        also: Sequence[ChannelIdentity] = (),
    ) -> None:
        """Join customer `source` into `target`: histories merged in time
        order, `source`'s identities now resolve to `target`, `target`'s state
        kept, and `source` answers `moved` from then on. `also` names
        identities of `source` that may not have written yet (so are not
        recorded) and must move too; so do `source`'s dedup marks. Takes both
        customers' locks; raises `LockTimeout` if it cannot, `CustomerGone`
        if either was erased or merged away meanwhile."""

    async def unlink(self, customer_id: str, identity: ChannelIdentity) -> None:
        """Detach one channel identity; its next message starts a new customer."""


@runtime_checkable
class TokenStore(Protocol):
    """One-time tokens: link codes, deep links, waits."""

    async def put_token(self, key: str, value: str, ttl_seconds: int) -> bool:
        """Store a one-time token unless the key exists; False if it does."""

    async def peek_token(self, key: str) -> str | None:
        """A token's value without using it up."""

    async def take_token(self, key: str) -> str | None:
        """Use a token up: its value, once; None to every later or concurrent call."""


@runtime_checkable
class CounterStore(Protocol):
    """Counters shared by every worker (rate limits)."""

    async def incr(self, key: str, ttl_seconds: int) -> int:
        """Increment a shared counter that expires `ttl_seconds` after creation."""


@runtime_checkable
class ParkingStore(Protocol):
    """Items no worker could handle, kept for an operator."""

    async def park(self, record: str) -> None:
        """Keep a failed item (JSON) for an operator; the newest are kept."""

    async def parked(self, limit: int) -> list[str]:
        """Parked items, newest first."""


@runtime_checkable
class InboxStore(Protocol):
    """A durable queue of work shared by the workers.

    Items queued in a lane (one sender's channel identity) are handed out in
    the order queued, one at a time: lanes are hashed onto partitions, and a
    partition hands out its next item only once the one before is
    acknowledged, or gone stale (its taker stopped keeping it: it probably
    died), in which case that one is handed out again first. Items without
    a lane are handed out in any order, several at a time."""

    async def inbox_add(self, payload: str, *, lane: str | None = None) -> str:
        """Queue a payload durably, behind the earlier items of `lane`;
        returns its id."""

    async def inbox_take(self, consumer: str, *, count: int, block_ms: int) -> list[InboxItem]:
        """Up to `count` items for `consumer`: without a lane, new ones and
        ones another consumer took more than the stale time ago without
        acknowledging; and the next item of each partition, as `inbox_read`.
        Waits up to `block_ms` for an item without a lane if there is none."""

    async def inbox_read(
        self, consumer: str, partition: int | None, *, count: int, block_ms: int
    ) -> list[InboxItem]:
        """The next item of a partition (0 to `INBOX_PARTITIONS` - 1) for
        `consumer`, unless one is out and not stale; waits up to `block_ms`
        for a new item if it has none to give. None: up to `count` items
        without a lane, as `inbox_take`."""

    async def inbox_keep(self, consumer: str, item_id: str) -> bool:
        """`consumer` is still handling the item: it is not stale for another
        stale time. False if `consumer` no longer holds it (it was taken
        over, or acknowledged)."""

    async def inbox_release(self, consumer: str) -> None:
        """`consumer` stops: every item it holds may be handed out again at
        once, as if stale."""

    async def inbox_ack(self, item_id: str) -> None:
        """The item is done; it is never handed out again."""


@runtime_checkable
class OutboxStore(Protocol):
    """Replies saved with their turn and delivered from there, one customer's
    in order, by one holder of the customer's outbox claim at a time
    (`bot.core.outbox`). An index of customers who may have undelivered
    replies lets every worker's sweeper find what a dead worker left
    without scanning keys; each index entry carries a mark that changes
    whenever it is written again, so an entry is dropped only by someone who
    saw it as it still is."""

    async def outbox_due(self, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` indexed customers whose time to be looked at has
        come, earliest first, each with its entry's mark."""

    async def outbox_claim(
        self, customer_id: str, *, token: str, ttl_seconds: float, due_only: bool = False
    ) -> OutboxClaim:
        """Hold the customer's outbox for `ttl_seconds` (or keep holding it,
        if `token` does) and read every undelivered item. With `due_only`
        (a sweeper): only once the first item is due."""

    async def outbox_extend(self, customer_id: str, *, token: str, ttl_seconds: float) -> bool:
        """Give `token`'s outbox claim `ttl_seconds` more, if it still holds it."""

    async def outbox_delivered(
        self, customer_id: str, seq: int, *, release: str | None = None, mark: int | None = None
    ) -> None:
        """Item `seq` is sent: it is never handed out again. With `release`
        (a claim token): also give that claim back, and, if nothing is left
        to deliver and no turn holds the customer's lock, drop their index
        entry if it still carries `mark`."""

    async def outbox_reindex(
        self, customer_id: str, mark: int, *, after_seconds: float | None
    ) -> None:
        """If the customer's index entry still carries `mark`: look at them
        again `after_seconds` from now, or with None drop the entry."""


@runtime_checkable
class WebPresenceStore(Protocol):
    """Which worker holds a web chat session's sockets."""

    async def touch_web(self, sessions: Sequence[str], worker: str, ttl_seconds: float) -> None:
        """`worker` holds sockets of these web chat sessions."""

    async def drop_web(self, session: str, worker: str) -> None: ...

    async def web_workers(self, session: str) -> set[str]:
        """Workers holding a socket of this web chat session now."""


@runtime_checkable
class DeliveringStore(TurnStore, OutboxStore, Protocol):
    """Turns and the replies they leave: what the engine and the locks ask for."""


@runtime_checkable
class ContextStore(StoreHealth, TurnStore, ConversationReader, IdentityStore, TokenStore,
                   CounterStore, ParkingStore, InboxStore, OutboxStore, Protocol):
    """Every slice: what one store implementation offers. Callers ask for the
    slices they use."""

    limits: StoreLimits


@runtime_checkable
class CustomerRecordStore(Protocol):
    """What erase and export need beyond the conversation itself, recorded in
    the customer's own keys when it is written, so that neither has to search
    for it: the customers joined into one, the one-time tokens issued for
    one, and the customers whose pending link offer names one.

    Both stores offer it (`tests/contract/test_customer_records.py`), beside
    `ContextStore` rather than in it; `bot.core.privacy.records_of` hands a
    store out as this slice. `TurnStore.erase` uses these records."""

    async def note_tokens(self, customer_id: str, keys: Sequence[str], ttl_seconds: int) -> None:
        """One-time token keys (as given to `TokenStore.put_token`) issued for
        the customer and living `ttl_seconds`: erase takes them."""

    async def note_offer(self, customer_id: str, holder: str) -> None:
        """Customer `holder`'s state now holds a link offer naming
        `customer_id` (and what was last said to them): erase clears it."""

    async def merged_ids(self, customer_id: str) -> list[str]:
        """The customer ids joined into this one, directly or through others."""
