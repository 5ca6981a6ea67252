"""The visitor's typing in the web chat, for the agents watching the conversation.

A `typing` frame is never a message: nothing is stored, acknowledged or
counted against the message limits. While the conversation is handed off
(queued or claimed) it goes over the bus to every worker's consoles as a
`typing` event, which the hub shows to the holder (to everyone while
queued) and to admins; otherwise nobody watches and it is dropped.

However fast a client sends, a socket passes on an `on` at most every
`ON_EVERY_SECONDS` (an `off` between does not reset that) and an `off` only
to end an `on` it passed on: at most one event a second per socket, each
after one read of the conversation's state.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.core.bus import Bus
from bot.core.conversation import ConversationState
from bot.core.errors import BadInput, StoreError
from bot.core.ports import ConversationReader
from bot.handoff.desk import AGENTS_TOPIC
from bot.handoff.state import is_active, is_claimed
from connectors.webchat_frames import WebClient

log = logging.getLogger(__name__)

ON_EVERY_SECONDS = 2.0


@dataclass(slots=True)
class _Shown:
    """One socket's typing as the consoles were told it."""

    # When this socket's last `on` got past the throttle (published or not).
    on_at: float = -math.inf
    # The customer whose consoles were told "on", until they are told "off".
    customer: str | None = None


def typing_on(frame: dict[str, Any]) -> bool:
    """A `typing` frame's `on`, or `BadInput` saying what is wrong."""
    on = frame.get("on")
    if not isinstance(on, bool):
        raise BadInput("bad_typing", "'on' must be true or false")
    return on


class CustomerTyping:
    """Typing frames of this worker's web chat sockets, passed on to the
    consoles over `bus` (None: there are no consoles, frames are dropped)."""

    def __init__(self, *, store: ConversationReader, bus: Bus | None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.bus = bus
        self.clock = clock
        self._sockets: dict[WebClient, _Shown] = {}

    async def on_frame(self, client: WebClient, frame: dict[str, Any]) -> None:
        """A `typing` frame of `client`: refused, dropped or published."""
        if client.session is None or client.customer_id is None:
            raise BadInput("hello_required", "send a hello frame first")
        on = typing_on(frame)
        shown = self._sockets.setdefault(client, _Shown())
        if on:
            now = self.clock()
            if now - shown.on_at < ON_EVERY_SECONDS:
                return
            shown.on_at = now
            customer = client.customer_id
            if await self._publish(customer, True):
                shown.customer = customer
        elif shown.customer is not None:
            customer, shown.customer = shown.customer, None
            await self._publish(customer, False)

    async def closed(self, client: WebClient) -> None:
        """The socket closed: an `on` it passed on ends with it."""
        shown = self._sockets.pop(client, None)
        if shown is not None and shown.customer is not None:
            await self._publish(shown.customer, False)

    async def _publish(self, customer: str, on: bool) -> bool:
        """Tell the consoles, with the holder the hub shows it by. An `on`
        only while the conversation is handed off; an `off` whenever it ends
        an `on`, so consoles that showed it stop (a lost one, when the store
        cannot be read, runs out in the console)."""
        if self.bus is None:
            return False
        try:
            handoff = ConversationState.from_json(await self.store.load_state(customer)).handoff
        except StoreError as exc:
            log.debug("visitor typing not passed on: %s", exc)
            return False
        if on and not is_active(handoff):
            return False
        holder = handoff.agent if is_claimed(handoff) else None
        await self.bus.publish(AGENTS_TOPIC, {"type": "typing", "customer": customer,
                                              "agent": holder, "on": on})
        return True
