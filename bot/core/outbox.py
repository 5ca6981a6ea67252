"""Delivering from the outbox: a turn's replies are saved with the turn, in
the customer's outbox, and sent from there, so a worker that dies after the
save does not lose them.

The worker that saved a turn sends its replies right away, in order, and
marks each delivered just after its send: a reply is sent twice only if a
worker dies (or loses its claim) between a send and that mark, a window of
one send. One holder of a customer's outbox claim sends at a time, so two
workers never send the same item at once and a customer's replies go out in
the order they were saved. A sweeper on every worker takes what a dead
worker left once it is due (its claim ran out), found through the store's
index of customers with pending replies, not by scanning keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext, suppress
from dataclasses import dataclass

from bot.core import metrics, turn_log
from bot.core.backoff import poll_until
from bot.core.delivery import Batch, Reply, Senders, decode
from bot.core.errors import StoreError
from bot.core.locked_state import kept_alive, new_lock_token
from bot.core.ports import OutboxClaim, OutboxStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OutboxOptions:
    # How long a claim on a customer's outbox lasts unless renewed; a dead
    # worker's replies wait this long before a sweeper sends them.
    claim_seconds: float = 30.0
    sweep_every_seconds: float = 1.0
    # Customers looked at per sweep, and delivered to at once.
    sweep_batch: int = 100
    sweep_parallel: int = 8


class Outbox:
    """Sends what saves left in customers' outboxes, through `Senders`."""

    def __init__(self, store: OutboxStore, senders: Senders,
                 options: OutboxOptions | None = None) -> None:
        self.store = store
        self.senders = senders
        self.options = options or OutboxOptions()

    async def deliver(self, batch: Batch) -> list[bool]:
        """Send a save's replies (after any earlier ones still pending), in
        order; whether each of `batch.replies` was sent by this call. A
        reply not sent here stays in the outbox for a sweeper, unless the
        channel refused it (logged, as it is in the history already)."""
        sent = [False] * len(batch.replies)
        # Counted until this call ends: saved, and not all of them sent yet.
        metrics.OUTBOX_BACKLOG.inc(len(batch.replies))
        try:
            if batch.claimed and not batch.earlier:
                items = [(batch.first_seq + i, r) for i, r in enumerate(batch.replies)]
                results = await self._send_in_order(batch.customer_id, batch.token, items,
                                                    batch.mark, batch.saved_at)
            elif batch.replies or batch.earlier:
                results = await self._deliver_behind(batch)
            else:
                # Nothing saved and nothing pending: no sweeper need look.
                await self.store.outbox_reindex(batch.customer_id, batch.mark,
                                                after_seconds=None)
                return sent
        except StoreError as exc:
            log.warning("the outbox of customer %s keeps what was not delivered: %s",
                        batch.customer_id, exc)
            return sent
        finally:
            metrics.OUTBOX_BACKLOG.dec(len(batch.replies))
        for i in range(len(sent)):
            sent[i] = results.get(batch.first_seq + i, False)
        return sent

    async def deliver_leftovers(self, customer_id: str, mark: int) -> int:
        """A sweeper's turn at one indexed customer: send what is due and
        nobody holds; how many replies were sent."""
        token = new_lock_token()
        started = time.monotonic()
        claim = await self.store.outbox_claim(customer_id, token=token,
                                              ttl_seconds=self.options.claim_seconds,
                                              due_only=True)
        if claim.status != "claimed":
            after = None if claim.status == "idle" else max(claim.retry_in, 0.05)
            await self.store.outbox_reindex(customer_id, mark, after_seconds=after)
            return 0
        metrics.OUTBOX_BACKLOG.inc(len(claim.items))
        try:
            results = await self._send_in_order(customer_id, token, _decoded(claim), mark,
                                                started)
        finally:
            metrics.OUTBOX_BACKLOG.dec(len(claim.items))
        log.info("delivered %d of %d replies left for customer %s",
                 sum(results.values()), len(claim.items), customer_id)
        return len(results)

    async def _deliver_behind(self, batch: Batch) -> dict[int, bool]:
        """Earlier replies are pending, or another holder has the outbox: wait
        for it (a live holder finishes in a send or two, a dead one's claim
        runs out), then send everything pending, in order."""
        started = time.monotonic()

        async def attempt() -> OutboxClaim | None:
            claim = await self.store.outbox_claim(
                batch.customer_id, token=batch.token, ttl_seconds=self.options.claim_seconds)
            return None if claim.status == "busy" else claim

        claim = await poll_until(attempt, within_seconds=self.options.claim_seconds * 1.5)
        if claim is None:
            log.warning("the outbox of customer %s stayed held; a sweeper delivers it",
                        batch.customer_id)
            return {}
        if claim.status == "idle":
            # Someone else delivered everything meanwhile.
            await self.store.outbox_reindex(batch.customer_id, batch.mark, after_seconds=None)
            return {}
        return await self._send_in_order(batch.customer_id, batch.token, _decoded(claim),
                                         batch.mark, started)

    async def _send_in_order(self, customer_id: str, token: str,
                             items: Sequence[tuple[int, Reply]], mark: int,
                             claimed_at: float) -> dict[int, bool]:
        """Send `items` holding the claim of `token` (taken at `claimed_at`),
        each marked delivered right after its send, the last giving the
        claim back. Stops if the claim is lost: its new holder sends the rest."""
        ttl = self.options.claim_seconds
        results: dict[int, bool] = {}
        renewed = claimed_at
        for n, (seq, reply) in enumerate(items):
            if time.monotonic() - renewed > ttl / 3:
                if not await self.store.outbox_extend(customer_id, token=token, ttl_seconds=ttl):
                    log.warning("lost the outbox claim of customer %s; its new holder "
                                "sends the rest", customer_id)
                    return results
                renewed = time.monotonic()

            async def extend() -> bool:
                return await self.store.outbox_extend(customer_id, token=token, ttl_seconds=ttl)

            # A slow send keeps the claim, so no sweeper sends the same reply meanwhile.
            with (_logged_as_turn_of(reply, customer_id),
                  kept_alive(extend, ttl, f"the outbox claim of customer {customer_id}")):
                results[seq] = await self._send(reply)
            last = n == len(items) - 1
            await self.store.outbox_delivered(customer_id, seq, release=token if last else None,
                                              mark=mark if last else None)
        return results

    async def _send(self, reply: Reply) -> bool:
        try:
            return await self.senders.send(reply.address, reply.outbound)
        except Exception as exc:
            # A bug in a connector: this reply is given up (it is in the
            # history), not retried forever. The exception may quote the
            # reply's text, so its details go to DEBUG only.
            log.error("delivering a reply on %s failed: %s", reply.address.channel,
                      type(exc).__name__)
            log.debug("the failed delivery", exc_info=True)
            return False


def _logged_as_turn_of(reply: Reply, customer_id: str) -> AbstractContextManager[object]:
    """Log a send under the turn that wrote the reply: the turn in hand when
    the saving worker sends it, the same ids when a sweeper does later."""
    if reply.turn_id is None and turn_log.current() is not None:
        return nullcontext()  # an agent's reply, sent from the request that wrote it
    return turn_log.turn(reply.turn_id, channel=reply.address.channel, customer_id=customer_id)


class OutboxSweeper:
    """Every worker's look, once a `sweep_every_seconds`, for replies that
    no one is delivering."""

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self._task: asyncio.Task[None] | None = None

    async def sweep(self) -> int:
        """One look; how many replies were sent."""
        options = self.outbox.options
        due = await self.outbox.store.outbox_due(options.sweep_batch)
        metrics.OUTBOX_OVERDUE.set(len(due))
        if not due:
            return 0
        room = asyncio.Semaphore(options.sweep_parallel)

        async def one(customer_id: str, mark: int) -> int:
            async with room:
                try:
                    return await self.outbox.deliver_leftovers(customer_id, mark)
                except StoreError as exc:
                    log.warning("sweeping the outbox of customer %s failed: %s",
                                customer_id, exc)
                    return 0

        return sum(await asyncio.gather(*(one(c, m) for c, m in due)))

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="outbox-sweeper")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            try:
                await self.sweep()
            except StoreError as exc:
                log.warning("outbox sweep failed, trying again: %s", exc)
            except Exception:
                log.exception("outbox sweep failed, trying again")
            # The sweep's pace, not a wait for another task: nothing signals
            # that a worker elsewhere died.
            await asyncio.sleep(self.outbox.options.sweep_every_seconds)


def _decoded(claim: OutboxClaim) -> list[tuple[int, Reply]]:
    return [(item.seq, decode(item.payload)) for item in claim.items]
