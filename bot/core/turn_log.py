"""Which turn a log line belongs to: its turn id, channel and customer id,
kept in a context variable so that no signature has to carry them.

A connector opens `turn(...)` where an inbound update arrives; the engine
names the customer (`identify`) once it has resolved who wrote. Every record
logged meanwhile is stamped with the ids (`stamp_records` installs the
record factory that does it), by whatever logger, Segue's or a library's:
an awaited coroutine runs in its task's context, and a task started during
the turn (a typing indicator) starts with a copy of it.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

# The LogRecord attribute the ids are stamped on; a name of its own, so an
# `extra={"channel": ...}` of any library never collides with it.
RECORD_ATTRIBUTE = "segue_turn"


@dataclass(frozen=True, slots=True)
class TurnIds:
    """What a log line of one turn is stamped with."""

    turn_id: str
    channel: str | None = None
    customer_id: str | None = None


_current: ContextVar[TurnIds | None] = ContextVar("segue_turn", default=None)


def current() -> TurnIds | None:
    """The ids of the turn in hand, or None outside any turn."""
    return _current.get()


def new_turn_id() -> str:
    """A short random turn id, for a message whose own id cannot tell two
    customers' turns apart."""
    return secrets.token_hex(6)


@contextmanager
def turn(turn_id: str | None = None, *, channel: str | None = None,
         customer_id: str | None = None) -> Iterator[TurnIds]:
    """Log the lines of the body as one turn's (a new random id if
    `turn_id` is None). Inside a turn of the same id, the body carries on
    with the ids already known, so what it learns stays after it."""
    now = _current.get()
    if now is not None and turn_id is not None and now.turn_id == turn_id:
        if customer_id is not None:
            identify(customer_id)
        yield _current.get() or now
        return
    ids = TurnIds(turn_id or new_turn_id(), channel, customer_id)
    token = _current.set(ids)
    try:
        yield ids
    finally:
        # Back to what was before, whatever the body set meanwhile.
        _current.reset(token)


def ensure_turn(*, channel: str | None = None) -> AbstractContextManager[TurnIds]:
    """The turn in hand, or a new one for the body (a caller that opened
    none: a test, a script)."""
    now = _current.get()
    return turn(now.turn_id if now is not None else None, channel=channel)


def identify(customer_id: str) -> None:
    """The customer of the turn in hand is now known: later lines of the
    turn (the connector's too, after the engine returns) carry it."""
    now = _current.get()
    if now is not None and now.customer_id != customer_id:
        _current.set(replace(now, customer_id=customer_id))


def stamp_records() -> None:
    """Have every LogRecord made from now on carry the ids of the turn in
    hand as `segue_turn` (None outside a turn). Installed once however
    often it is called."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "stamps_turns", False):
        return
    logging.setLogRecordFactory(_stamping(previous))


def _stamping(make: Callable[..., logging.LogRecord]) -> Callable[..., logging.LogRecord]:
    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        setattr(record, RECORD_ATTRIBUTE, _current.get())
        return record

    stamped.stamps_turns = True  # type: ignore[attr-defined]
    return stamped


def ids_of(record: logging.LogRecord) -> TurnIds | None:
    """The turn ids a record was stamped with, if any."""
    ids = getattr(record, RECORD_ATTRIBUTE, None)
    return ids if isinstance(ids, TurnIds) else None
