"""Builds the public API: its keys, the outreach service and the routes."""

from __future__ import annotations

import logging

from bot.core.delivery import Senders
from bot.core.errors import BadInput
from bot.core.events import EventSink
from bot.core.locked_state import CustomerLocks
from bot.core.outbox import Outbox
from bot.core.policy import FlowStarter, Policy
from bot.core.ports import ConversationReader
from bot.core.rate_limits import RateLimiter
from bot.core.settings import Settings
from bot.handoff.desk import HandoffDesk
from bot.outreach.keys import KEY_NAME, KEY_SHAPE, ApiKeys, digest_of
from bot.outreach.ports import SCOPES, ApiKey, ApiKeyStore
from bot.outreach.sending import Outreach, OutreachParts
from connectors.public_api import PublicApi

log = logging.getLogger(__name__)


def build_public_api(settings: Settings, *, store: ConversationReader, keys: ApiKeyStore,
                     locks: CustomerLocks, senders: Senders, outbox: Outbox,
                     limiter: RateLimiter, events: EventSink, policy: Policy,
                     desk: HandoffDesk) -> PublicApi:
    parts = OutreachParts(store=store, locks=locks, senders=senders, outbox=outbox,
                          limiter=limiter, events=events,
                          flows=policy if isinstance(policy, FlowStarter) else None,
                          begin=desk.begin, announce=desk.announce,
                          publish=desk.publish)
    outreach = Outreach(parts, max_text_length=settings.max_text_length)
    configured = [] if settings.api_keys is None else [
        ApiKey(name=name, scope=scope, digest=digest_of(secret), hint=secret[:8], created_at=0.0)
        for name, secret, scope in parse_api_keys(settings.api_keys.get_secret_value())]
    return PublicApi(keys=ApiKeys(keys, configured), outreach=outreach, limiter=limiter)


def parse_api_keys(value: str) -> list[tuple[str, str, str]]:
    """`name:key[:scope],...` (the `api_keys` setting) as (name, key, scope);
    `BadInput` names the first bad entry, never the keys."""
    found: list[tuple[str, str, str]] = []
    for number, item in enumerate((i.strip() for i in value.split(",") if i.strip()), 1):
        name, _, rest = item.partition(":")
        secret, _, scope = rest.partition(":")
        scope = scope or "notify"
        if not KEY_NAME.match(name) or not KEY_SHAPE.match(secret) or scope not in SCOPES:
            raise BadInput("bad_api_keys", f"entry {number} of SEGUE_API_KEYS is not "
                           f"name:key[:{'|'.join(SCOPES)}] with a key of 32 to 128 letters, "
                           f"digits, '_' or '-' (`segue apikeys add` makes one)")
        if any(name == n or secret == k for n, k, _ in found):
            raise BadInput("bad_api_keys", f"entry {number} of SEGUE_API_KEYS repeats the name "
                                           "or the key of an earlier one")
        found.append((name, secret, scope))
    return found
