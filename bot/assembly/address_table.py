"""Connections per client address, counted across the workers of one port.

With `segue run --workers N` the kernel spreads one client's connections
over the workers, so a cap counted in each process alone would let a client
hold N times the cap. The supervisor allocates this table in shared memory
before it starts any worker: one row per worker, each a fixed number of
counters indexed by a keyed hash of the address. A worker adds to and takes
from its own row only (one writer per row, so no lock), and admits a
connection while the sum over all rows at that index is under the cap. When
a worker dies its connections die with it: the supervisor zeroes its row
before starting it again, so the counts of a dead worker never linger.

Two approximations, both documented for operators:
- addresses whose hashes collide share one counter, which can only make the
  cap stricter for them. The hash is keyed with a secret the supervisor draws
  at start, so a client cannot choose addresses that collide with someone
  else's (with IPv6 a client may hold a whole range of addresses);
- two workers admitting at the same instant may both see room for one, so
  the cap can be overshot by at most N-1 connections.
"""

from __future__ import annotations

import ctypes
import hashlib
import secrets
from dataclasses import dataclass, field
from multiprocessing.context import SpawnContext
from typing import Any

# Counters per worker: 256 KiB of 32-bit counters. Collisions start to
# matter only with tens of thousands of addresses holding connections at once.
SLOTS = 1 << 16
KEY_BYTES = 16


@dataclass(frozen=True, slots=True)
class AddressTable:
    """The shared counters of `workers` rows; made by the supervisor and
    handed to each worker process at its start (it pickles by file
    descriptor, so it reaches processes started with "spawn")."""

    workers: int
    counts: Any  # a ctypes array in shared memory: `workers` rows of SLOTS
    key: bytes = field(default_factory=lambda: secrets.token_bytes(KEY_BYTES))

    @classmethod
    def allocate(cls, context: SpawnContext, workers: int) -> AddressTable:
        return cls(workers=workers, counts=context.RawArray(ctypes.c_int32, workers * SLOTS))

    def slot(self, address: str) -> int:
        digest = hashlib.blake2b(address.encode(), key=self.key, digest_size=4).digest()
        return int.from_bytes(digest, "little") % SLOTS

    def total(self, slot: int) -> int:
        return sum(self.counts[row * SLOTS + slot] for row in range(self.workers))

    def clear_row(self, row: int) -> None:
        """Forget what worker `row` counted: only for a worker that is dead."""
        size = ctypes.sizeof(ctypes.c_int32)
        ctypes.memset(ctypes.addressof(self.counts) + row * SLOTS * size, 0, SLOTS * size)

    def counter(self, row: int, limit: int) -> SharedAddressCounter:
        return SharedAddressCounter(self, row, limit)


class SharedAddressCounter:
    """One worker's side of the table: the `ConnectionCounter` its server uses."""

    __slots__ = ("table", "row", "limit")

    def __init__(self, table: AddressTable, row: int, limit: int) -> None:
        self.table = table
        self.row = row
        self.limit = limit

    def admit(self, address: str) -> bool:
        slot = self.table.slot(address)
        if self.table.total(slot) >= self.limit:
            return False
        self.table.counts[self.row * SLOTS + slot] += 1
        return True

    def release(self, address: str) -> None:
        index = self.row * SLOTS + self.table.slot(address)
        # Never below zero, whatever a caller does twice.
        if self.table.counts[index] > 0:
            self.table.counts[index] -= 1
