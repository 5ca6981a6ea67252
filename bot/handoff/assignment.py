"""Automatic assignment: waiting conversations go to online agents in turn,
each up to their capacity of open conversations.

Beside the manual claim: an agent with the console open whose capacity
(their account's, else `SEGUE_AGENT_CAPACITY`) is above the number of
conversations they hold gets the oldest waiting one, round-robin by
username after the agent chosen last. One worker at a time assigns, under
the store's lease, so two workers never hand out the same free place twice;
the claim itself is the desk's, under the customer's lock, so an agent's
own claim at the same moment wins or loses cleanly. A pass runs when the
consoles' events say the work or the free places changed, and every few
seconds to catch what an event missed (an agent's console closing, a worker
that died mid-pass). With every capacity 0 (the default) nothing is ever
assigned, and a pass reads only the accounts and who is online.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol

from bot.core.bus import Bus
from bot.core.errors import LockLost, LockTimeout, StoreError
from bot.handoff.desk import AGENTS_TOPIC, DeskError, HandoffDesk
from bot.handoff.ports import (
    AccountStore,
    AgentAccount,
    AgentPresenceStore,
    AssignmentStore,
    HandoffQueueStore,
)

log = logging.getLogger(__name__)

# Events after which free places or waiting conversations may have changed.
TRIGGERS = frozenset({"queued", "released", "closed", "transferred", "online", "moved"})
PASS_EVERY_SECONDS = 2.0
LEASE_SECONDS = 15.0


class AssignerStore(AssignmentStore, HandoffQueueStore, AgentPresenceStore, AccountStore,
                    Protocol):
    """What the assigner reads beside the desk: the lease, the queue and
    claims, who is online and the accounts' capacities."""


def next_agent(free: Sequence[str], last: str | None) -> str:
    """Round-robin: the first of `free` (sorted usernames) after `last`."""
    for name in free:
        if last is None or name > last:
            return name
    return free[0]


class Assigner:
    """One worker's automatic assignment; `worker` names its lease."""

    def __init__(self, desk: HandoffDesk, store: AssignerStore, bus: Bus, worker: str, *,
                 every_seconds: float = PASS_EVERY_SECONDS) -> None:
        self.desk = desk
        self.store = store
        self.worker = worker
        self.every_seconds = every_seconds
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        bus.subscribe(AGENTS_TOPIC, self._on_event)

    async def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") in TRIGGERS:
            self._wake.set()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.every_seconds)
            except TimeoutError:
                pass
            self._wake.clear()
            try:
                await self.assign_waiting()
            except StoreError as exc:
                log.warning("automatic assignment skipped a pass: %s", exc)
            except Exception:
                log.exception("automatic assignment failed a pass")

    async def capacities(self) -> dict[str, AgentAccount]:
        """Online agents who may be given conversations at all, by username."""
        online = await self.store.agents_online()
        if not online:
            return {}
        return {a.username: a for a in await self.store.agents()
                if a.username in online and self.desk.capacity_of(a) > 0}

    async def assign_waiting(self) -> list[tuple[str, str]]:
        """One pass: (customer, agent) for each conversation it assigned."""
        candidates = await self.capacities()
        if not candidates:
            return []
        if not await self.store.take_assignment_lease(self.worker, LEASE_SECONDS):
            return []  # another worker is at it; its pass covers this one's
        try:
            return await self._assign(candidates)
        finally:
            await self.store.drop_assignment_lease(self.worker)

    async def _assign(self, candidates: dict[str, AgentAccount]) -> list[tuple[str, str]]:
        held = Counter((await self.store.claimed()).values())
        free = {name: self.desk.capacity_of(account) - held[name]
                for name, account in candidates.items()}
        free = {name: places for name, places in free.items() if places > 0}
        if not free:
            return []
        # Some listed ones may have been answered meanwhile: read a few more.
        waiting = await self.store.queued(sum(free.values()) + 20)
        last = await self.store.last_assigned()
        assigned: list[tuple[str, str]] = []
        for tried, entry in enumerate(waiting):
            if not free:
                break
            # A claim may wait long for the customer's lock: the lease is
            # renewed before each further one, and a pass that outlived it
            # ends, as another worker may be counting the free places now.
            if tried and not await self.store.take_assignment_lease(
                    self.worker, LEASE_SECONDS):
                break
            name = next_agent(sorted(free), last)
            try:
                await self.desk.claim(candidates[name], entry.customer, assigned=True)
            except DeskError as exc:
                # Claimed by hand, answered or gone since it was listed.
                if exc.code == "unknown_customer":
                    await self.store.index_closed(entry.customer)
                continue
            except (LockTimeout, LockLost):
                continue  # in a long turn right now: the next pass tries again
            assigned.append((entry.customer, name))
            last = name
            await self.store.set_last_assigned(name)
            free[name] -= 1
            if free[name] == 0:
                del free[name]
        if assigned:
            log.info("assigned %d waiting conversations automatically", len(assigned))
        return assigned
