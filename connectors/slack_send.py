"""Reaching people on Slack: the pace of posting, and the direct message
channel of a person the business writes to first."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core.errors import ConnectorError
from bot.core.model import Address, ChannelIdentity
from connectors.pacing import Pace, Pacer
from connectors.slack_parse import CHANNEL, identity_parts

log = logging.getLogger(__name__)

# chat.postMessage allows about one message a second in a channel, short
# bursts tolerated (docs.slack.dev/apis/web-api/rate-limits); a turn often
# answers with two or three. Overall, Slack has no fixed figure: a generous
# one keeps a bulk send from a run of 429s.
PER_CHANNEL_PACE = Pace(burst=3, per_second=1)
OVERALL_PACE = Pace(burst=10, per_second=50)
# conversations.open is a Tier 3 method: about 50 calls a minute.
OPEN_PACE = Pace(burst=10, per_second=50 / 60)
OPEN_KEY = "conversations.open"
# Slack errors of conversations.open that may pass: the caller tries again.
TRANSIENT_ERRORS = frozenset({"ratelimited", "internal_error", "fatal_error",
                              "service_unavailable", "request_timeout"})


def slack_pacer(senders: int = 1) -> Pacer:
    """The pacer of one process of `senders` posting with the same app."""
    return Pacer(per_key=PER_CHANNEL_PACE, overall=OVERALL_PACE.share(senders))


class DirectMessages:
    """The direct message channel (`D…`) between the app and each person,
    opened with `conversations.open` and remembered for `ttl_seconds` (at
    most `max_people` of them, the least recently used forgotten first):
    Slack gives the same channel every time, so a bulk send to the same
    people need not ask again."""

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_seconds: float = 3600.0,
        max_people: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        pacer: Pacer | None = None,
    ) -> None:
        self.client = client
        self.ttl_seconds = ttl_seconds
        self.max_people = max_people
        self.clock = clock
        self.pacer = pacer if pacer is not None else Pacer(per_key=OPEN_PACE)
        self._channels: OrderedDict[str, tuple[str, float]] = OrderedDict()

    async def address(self, identity: ChannelIdentity) -> Address | None:
        """Where a message to `identity` goes when the business writes first;
        None if Slack will not open a direct message with them (no such
        user, a bot, a deactivated account). Raises `ConnectorError` when
        Slack cannot answer now (unreachable, rate limited): try again."""
        parts = identity_parts(identity.user_id) if identity.channel == CHANNEL else None
        if parts is None:
            return None
        channel = self._remembered(identity.user_id)
        if channel is None:
            channel = await self._open(parts[1])
            if channel is None:
                return None
            self._remember(identity.user_id, channel)
        return Address(CHANNEL, channel, None)

    async def _open(self, user: str) -> str | None:
        try:
            async with self.pacer.turn(OPEN_KEY):
                response = await self.client.conversations_open(users=user)
        except SlackApiError as exc:
            error = exc.response.get("error") if exc.response is not None else None
            if error is None or error in TRANSIENT_ERRORS:
                status = exc.response.status_code if exc.response is not None else None
                raise ConnectorError(
                    f"Slack could not open a direct message: {error or f'HTTP {status}'}"
                ) from exc
            # The code alone: Slack's whole answer names the person.
            log.info("Slack will not open a direct message with this user: %s", error)
            return None
        except (ClientError, TimeoutError) as exc:
            raise ConnectorError(f"Slack could not be reached: {type(exc).__name__}") from exc
        channel = response.get("channel")
        channel_id = channel.get("id") if isinstance(channel, dict) else None
        if not isinstance(channel_id, str) or not channel_id:
            log.info("Slack opened a direct message but named no channel")
            return None
        return channel_id

    def _remembered(self, user_id: str) -> str | None:
        entry = self._channels.get(user_id)
        if entry is None:
            return None
        channel, until = entry
        if self.clock() >= until:
            del self._channels[user_id]
            return None
        self._channels.move_to_end(user_id)
        return channel

    def _remember(self, user_id: str, channel: str) -> None:
        self._channels[user_id] = (channel, self.clock() + self.ttl_seconds)
        self._channels.move_to_end(user_id)
        while len(self._channels) > self.max_people:
            self._channels.popitem(last=False)
