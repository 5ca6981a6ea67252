"""Fixed answers to messages that make no turn ("text only", "too long").

Such a message is never stored, so the engine's dedup mark never covers it,
and a channel that delivers it again (a webhook whose 200 was lost, a Slack
retry) would get the answer again. Here the message is marked answered first,
with a set-if-absent that only one delivery can win, and only that one sends.
The mark holds no customer data and expires with the store's dedup marks.
"""

from __future__ import annotations

import logging

from bot.core.delivery import Senders
from bot.core.errors import StoreError
from bot.core.model import Address, ChannelIdentity, Outbound
from bot.core.ports import TokenStore

log = logging.getLogger(__name__)

# The value of a mark: that the message was answered is all it says.
ANSWERED = "1"


def answered_key(identity: ChannelIdentity, message_id: str) -> str:
    """The token key marking one message of one sender answered."""
    return f"answered:{identity.channel}:{identity.user_id}:{message_id}"


class DirectAnswers:
    """Sends a fixed answer to one message at most once, across redeliveries
    and workers."""

    def __init__(self, store: TokenStore, senders: Senders, *, ttl_seconds: int) -> None:
        if ttl_seconds <= 0:
            raise ValueError("the mark of an answered message needs a positive TTL")
        self.store = store
        self.senders = senders
        self.ttl_seconds = ttl_seconds

    async def answer_once(
        self, identity: ChannelIdentity, message_id: str, address: Address, text: str
    ) -> bool:
        """Send `text` to `address` unless this message was answered already;
        whether it was sent now. A store that cannot be reached raises
        (`StoreUnavailable`), so the channel delivers the message again."""
        key = answered_key(identity, message_id)
        if not await self.store.put_token(key, ANSWERED, self.ttl_seconds):
            log.debug("%s message %s was answered already", identity.channel, message_id)
            return False
        if await self.senders.send(address, Outbound(text=text)):
            return True
        # Not delivered (already logged and counted): drop the mark, so that
        # a later delivery of the same message may answer it after all.
        try:
            await self.store.take_token(key)
        except StoreError as exc:
            # The mark expires on its own; raising would only have the
            # message delivered again to find it still there.
            log.warning("could not drop the answered mark of a %s message: %s",
                        identity.channel, exc)
        return False
