"""A customer's data on request: everything kept about them as one document
(a subject access request), and erasing it.

Both work on store slices, so the console's API and the `segue customers`
command give the same answers. What erase removes, and how the store finds
it, is the store's part (`TurnStore.erase`, helped by `CustomerRecordStore`);
here is what every caller does around it, and what "mentions a customer"
means for the items (parked, queued) that only a search can find.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import Any, Protocol, runtime_checkable

import orjson

from bot.core.conversation import ConversationState
from bot.core.events import CUSTOMER_ERASED, NO_EVENTS, EventSink
from bot.core.model import ChannelIdentity
from bot.core.ports import ConversationReader, CustomerRecordStore, TurnStore

log = logging.getLogger(__name__)

# The ids Segue makes are 16 hex digits; anything outside this is no customer
# (and could not be a key or a SCAN pattern safely). As the agent API checks.
CUSTOMER_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@runtime_checkable
class ExportStore(ConversationReader, CustomerRecordStore, Protocol):
    """What an export reads."""


@runtime_checkable
class EraseStore(TurnStore, ConversationReader, CustomerRecordStore, Protocol):
    """What an erase outside a turn uses."""


Forget = Callable[[str], Awaitable[None]]


# `CustomerRecordStore` is not part of `ContextStore`, so callers handed a
# narrower store type see it through these. Every store of Segue offers it;
# one that did not would leave tokens and joined customers behind on erase,
# so each refuses such a store at once rather than erase in part.


def records_of(store: object) -> CustomerRecordStore:
    """`store` as its `CustomerRecordStore` slice."""
    if not isinstance(store, CustomerRecordStore):
        raise _refused(store, CustomerRecordStore)
    return store


def exportable(store: object) -> ExportStore:
    """`store` as what an export reads."""
    if not isinstance(store, ExportStore):
        raise _refused(store, ExportStore)
    return store


def erasable(store: object) -> EraseStore:
    """`store` as what an erase outside a turn uses."""
    if not isinstance(store, EraseStore):
        raise _refused(store, EraseStore)
    return store


def _refused(store: object, protocol: type) -> TypeError:
    return TypeError(f"{type(store).__name__} keeps no customer records: "
                     f"it is no {protocol.__name__}")


async def known(store: ConversationReader, customer_id: str) -> bool:
    """Whether anything is kept under this id (an id joined into another, or
    erased, has nothing left)."""
    if not CUSTOMER_ID.match(customer_id):
        return False
    if await store.load_state(customer_id) is not None:
        return True
    return bool(await store.identities(customer_id) or await store.history(customer_id, 1))


async def export_customer(store: ExportStore, customer_id: str,
                          *, history_max: int) -> dict[str, Any] | None:
    """Everything kept about a customer, as one JSON-ready document; None if
    nothing is. `history_max` is the store's cap: the whole history."""
    if not await known(store, customer_id):
        return None
    raw = await store.load_state(customer_id)
    state = ConversationState.from_json(raw)
    identities = await store.identities(customer_id)
    addresses = await store.addresses(customer_id)
    history = await store.history(customer_id, history_max)
    return {
        "customer": customer_id,
        "merged": sorted(await store.merged_ids(customer_id)),
        "identities": [{"channel": i.channel, "user_id": i.user_id} for i in identities],
        "addresses": {channel: a.to_json() for channel, a in sorted(addresses.items())},
        "conversation": {
            "turns": state.turns,
            "dialog": state.dialog,
            "last_address": state.last_address.to_json() if state.last_address else None,
            "pending_link": state.pending_link.to_json() if state.pending_link else None,
            # The customer's language, what set it, and the question left open.
            "locale": state.locale,
            "locale_from": state.locale_from,
            "question": state.question.to_json() if state.question is not None else None,
            # What each channel said about the customer, by channel.
            "profile": state.profile,
            # The last handoff a person closed: its times, and the rating
            # and comment the customer gave.
            "closed_handoff": (state.closed_handoff.to_json()
                               if state.closed_handoff is not None else None),
        },
        "handoff": state.handoff.to_json() if state.handoff is not None else None,
        "history": [entry.to_json() for entry in history],
    }


async def erase_customer(store: EraseStore, customer_id: str, *,
                         forget: Forget | None = None, events: EventSink = NO_EVENTS) -> bool:
    """Erase a customer outside their turns (an operator's request): the
    store's erase, then `forget` (the handoff desk: off the queue and the
    claims, the consoles told) for them and every customer joined into them,
    then the `customer.erased` event (after the erase, which takes the
    customer's queued events along). False, touching nothing, if nothing is
    kept under the id."""
    if not await known(store, customer_id):
        return False
    erased = [customer_id, *await store.merged_ids(customer_id)]
    await store.erase(customer_id)
    if forget is not None:
        for gone in erased:
            await forget(gone)
    log.info("erased the data of customer %s at an operator's request", customer_id)
    await events.emit(customer_id, CUSTOMER_ERASED, {"by": "operator"})
    return True


def needles(customer_ids: Iterable[str], identities: Iterable[ChannelIdentity]) -> frozenset[str]:
    """The values that tie a record to these customers: their ids, and each
    identity's user id (for a `team:user` id, the user part too, as a
    platform's own payload carries it)."""
    found = set(customer_ids)
    for identity in identities:
        found.add(identity.user_id)
        _, sep, user = identity.user_id.rpartition(":")
        if sep and user:
            found.add(user)
    return frozenset(v for v in found if v)


def named_by(name: str, parts: Collection[str]) -> bool:
    """Whether a counter or token name has one of `parts` (customer ids,
    `<channel>:<user_id>` identities) as whole `:`-separated segments:
    `rate:codes-cust:<id>`, `link-wrong:id:<channel>:<user_id>`,
    `answered:<channel>:<user_id>:<message_id>`. Whole segments only, so
    identity `telegram:55` never matches `telegram:551`."""
    padded = f":{name}:"
    return any(f":{part}:" in padded for part in parts)


def mentions(record: str, wanted: Collection[str]) -> bool:
    """Whether a stored JSON record (a parked item, a queued payload) holds
    one of `wanted` as a whole value: a string equal to it, a JSON string
    nested inside that does, or a number under an `id` key (Telegram's user
    and chat ids). Whole values only, so another customer's record that
    merely contains the digits is left alone."""
    try:
        return _holds(orjson.loads(record), wanted, None)
    except orjson.JSONDecodeError:
        return record in wanted


def _holds(value: Any, wanted: Collection[str], key: str | None) -> bool:
    if isinstance(value, dict):
        return any(_holds(v, wanted, k) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds(v, wanted, key) for v in value)
    if isinstance(value, str):
        if value in wanted:
            return True
        if value[:1] in ("{", "["):
            try:
                return _holds(orjson.loads(value), wanted, key)
            except orjson.JSONDecodeError:
                return False
        return False
    if isinstance(value, int) and not isinstance(value, bool):
        return key == "id" and str(value) in wanted
    return False
