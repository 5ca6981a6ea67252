"""Redis key layout.

Every key of one customer carries the hash tag `{c:<customer_id>}` so that a
turn's multi-key script stays in one Redis Cluster slot; the identity mapping
is tagged by the channel identity for the same reason.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from bot.core.model import ChannelIdentity
from bot.core.ports import INBOX_PARTITIONS


@dataclass(frozen=True, slots=True)
class KeyBuilder:
    prefix: str = "segue"

    def identity(self, identity: ChannelIdentity) -> str:
        return f"{self.prefix}:{{i:{identity.channel}:{identity.user_id}}}:customer"

    def customer(self, customer_id: str, part: str) -> str:
        return f"{self.prefix}:{{c:{customer_id}}}:{part}"

    def customer_pattern(self, customer_id: str) -> str:
        # Braces are literal in SCAN's glob syntax except for `[`; ids never contain it.
        return f"{self.prefix}:{{c:{customer_id}}}:*"

    def seen(self, customer_id: str, message_key: str) -> str:
        return self.customer(customer_id, f"seen:{message_key}")

    def counter(self, name: str) -> str:
        return f"{self.prefix}:counter:{name}"

    def token(self, key: str) -> str:
        return f"{self.prefix}:token:{key}"

    def parked(self) -> str:
        return f"{self.prefix}:parked"

    def inbox(self) -> str:
        return f"{self.prefix}:inbox"

    def outbox_index(self) -> str:
        # Customers who may have replies nobody delivers: one key for every
        # customer, so no hash tag (see `context_store.redis_outbox`).
        return f"{self.prefix}:outbox"

    def inbox_lane(self, partition: int) -> str:
        # Every command and script on a partition touches its stream alone.
        return f"{self.prefix}:inbox:{partition}"


def lane_partition(lane: str) -> int:
    """The inbox partition of a lane: the same in every process (unlike `hash`)."""
    return zlib.crc32(lane.encode()) % INBOX_PARTITIONS


def check_partition(partition: int) -> None:
    """Refuse a partition number that names no inbox stream."""
    if not 0 <= partition < INBOX_PARTITIONS:
        raise ValueError(f"no inbox partition {partition}: 0 to {INBOX_PARTITIONS - 1}")


def identity_member(identity: ChannelIdentity) -> str:
    return f"{identity.channel}:{identity.user_id}"


def parse_identity_member(member: str) -> ChannelIdentity:
    channel, _, user_id = member.partition(":")
    return ChannelIdentity(channel, user_id)
