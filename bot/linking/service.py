"""One customer across channels: link codes, deep links, merge, unlink.

Channel identities are joined only by proof: a one-time code shown on one
channel and typed on another (then confirmed with yes/no, so a code planted by
someone else cannot pull a channel into their conversation unnoticed), or a
signed single-use deep link opened by the person. The side that issued the
code or link keeps its conversation; the joining side is merged into it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core import metrics
from bot.core.backoff import Backoff
from bot.core.catalog import text
from bot.core.conversation import ConversationState, HandoffState, LinkOffer, PendingMerge
from bot.core.delivery import Senders
from bot.core.errors import BadInput, CustomerGone
from bot.core.events import CUSTOMER_LINKED, NO_EVENTS, EventSink
from bot.core.identities import Customers
from bot.core.model import Address, Button, ChannelIdentity, HistoryEntry, Link, Outbound
from bot.core.policy import TurnContext
from bot.core.ports import ConversationReader, CounterStore, IdentityStore, TokenStore
from bot.core.privacy import records_of
from bot.core.rate_limits import LINK_CODES_PER_ADDRESS, LINK_CODES_PER_CUSTOMER, RateLimiter
from bot.core.resume import last_prompt, where_we_left_off
from bot.core.tokens import ShortToken
from bot.linking.codes import (
    NO,
    YES,
    a_chat_on,
    channel_name,
    channels_as_typed,
    channels_by_name,
    new_code,
    normalised_code,
    shown_code,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LinkOptions:
    secret: str
    code_ttl_seconds: int = 600
    # Wrong codes: the first few are free, then each waits twice as long as
    # the last (from `first_delay_seconds`), and past the cap the client
    # waits out the window. A channel identity and a client address are
    # each counted, so fresh web sessions from one address gain nothing.
    free_wrong_codes: int = 3
    # An address may be an office: its neighbours' typos cost more to add up.
    free_wrong_codes_per_address: int = 10
    first_delay_seconds: int = 10
    max_delay_seconds: int = 300
    wrong_codes_per_identity: int = 10
    wrong_codes_per_address: int = 30
    wrong_codes_window_seconds: int = 900
    public_url: str | None = None
    telegram_bot_username: str | None = None
    lock_ttl_seconds: float = 30.0


MergeListener = Callable[[str, str, HandoffState | None], Awaitable[None]]


class LinkingStore(TokenStore, CounterStore, ConversationReader, IdentityStore, Protocol):
    """The slices of the store that linking uses."""


class LinkService:
    """Issues and redeems codes and deep links, and merges customers."""

    def __init__(self, *, store: LinkingStore, customers: Customers, senders: Senders,
                 limiter: RateLimiter, options: LinkOptions,
                 on_merge: Sequence[MergeListener] = (),
                 events: EventSink = NO_EVENTS) -> None:
        self.store = store
        self.events = events
        # Erase takes the tokens issued for a customer and the offers naming
        # them: linking tells the store which they are as it makes them.
        self.records = records_of(store)
        self.customers = customers
        self.senders = senders
        self.limiter = limiter
        self.options = options
        self._resume = ShortToken(options.secret, "resume")
        # Called after every merge with (source, target, source's handoff).
        self.merge_listeners = tuple(on_merge)

    async def issue(self, context: TurnContext) -> list[Outbound]:
        """A fresh code, and deep links to continue elsewhere. A customer has
        one live code at a time: a new one revokes the last."""
        locale = context.state.locale
        allowed = await self.limiter.allow_all([
            (LINK_CODES_PER_CUSTOMER, context.customer_id),
            (LINK_CODES_PER_ADDRESS, context.inbound.client_address),
        ])
        if not allowed:
            return [Outbound(text=text("link_codes_too_many", locale))]
        await self._revoke_live_code(context.customer_id)
        # The last thing the bot or an agent said, to pick up from elsewhere.
        prompt = await last_prompt(self.store, context.customer_id)
        origin = {
            "customer": context.customer_id,
            "channel": context.inbound.channel,
            "resume": prompt.to_json() if prompt is not None else None,
        }
        token, nonce = self._resume.new()
        ttl = self.options.code_ttl_seconds
        for _ in range(10):
            code = new_code()
            # Each names the other: using one revokes both.
            if await self.store.put_token(f"link:{code}", json.dumps({**origin, "nonce": nonce}),
                                          ttl):
                break
        else:  # ten collisions in a row: far more live codes than expected
            return [Outbound(text=text("link_code_failed", locale))]
        # Only once the code is ours: a collision names another customer's.
        await self.records.note_tokens(
            context.customer_id,
            [f"link:{code}", f"resume:{nonce}", f"link-live:{context.customer_id}"], ttl)
        await self.store.put_token(f"resume:{nonce}", json.dumps({**origin, "code": code}), ttl)
        await self.store.put_token(f"link-live:{context.customer_id}",
                                   json.dumps({"code": code, "nonce": nonce}), ttl)
        metrics.LINK_CODES_ISSUED.inc()
        issued = text("link_code_issued", locale, code=shown_code(code), minutes=ttl // 60,
                      channels=channels_by_name(locale))
        links = self._deep_links(token, context.inbound.channel, locale)
        return [Outbound(text=issued, links=links)]

    async def _revoke_live_code(self, customer_id: str) -> None:
        raw = await self.store.take_token(f"link-live:{customer_id}")
        if raw is not None:
            live = json.loads(raw)
            await self.store.take_token(f"link:{live.get('code')}")
            await self.store.take_token(f"resume:{live.get('nonce')}")

    def _deep_links(self, token: str, here: str, locale: str | None) -> tuple[Link, ...]:
        """Links to the other channels; the web link needs the public URL
        except inside the web chat, where a relative one works."""
        links = []
        if self.options.telegram_bot_username and here != "telegram":
            links.append(Link(f"https://t.me/{self.options.telegram_bot_username}?start={token}",
                              text("continue_on_telegram", locale)))
        if self.options.public_url or here == "web":
            base = (self.options.public_url or "").rstrip("/")
            links.append(Link(f"{base}/webchat/?resume={token}",
                              text("continue_on_web", locale)))
        return tuple(links)

    async def enter_code(self, context: TurnContext, typed: str) -> list[Outbound]:
        """Someone typed `link <code>`: show what it joins and ask to confirm.
        Only wrong codes count against the client, so a right code from a
        client that has not guessed always works."""
        guessers, locale = self._guessers(context), context.state.locale
        if await self._must_wait(guessers):
            metrics.LINK_CODES_REFUSED.labels("wait").inc()
            metrics.rate_limited("link-codes-wrong").inc()
            return [Outbound(text=text("link_codes_wait", locale))]
        code = normalised_code(typed)
        raw = await self.store.peek_token(f"link:{code}") if code is not None else None
        if raw is None:
            metrics.LINK_CODES_REFUSED.labels("invalid").inc()
            await self._count_wrong(guessers)
            return [Outbound(text=text("link_code_invalid", locale))]
        offer = LinkOffer.from_json({"ask": "code", "code": code, **json.loads(raw)})
        if offer.customer_id == context.customer_id:
            return [Outbound(text=text("link_already_joined", locale))]
        context.state.pending_link = offer
        # The offer quotes the other customer: their erase must find it here.
        await self.records.note_offer(offer.customer_id, context.customer_id)
        return [self.question(offer, locale=locale)]

    @staticmethod
    def question(offer: LinkOffer, *, again: bool = False,
                 locale: str | None = None) -> Outbound:
        """The yes/no that tells the person whose conversation would be joined
        what a yes hands over. The other side is named by its channel only:
        a display name is whatever its owner typed, and proves nothing."""
        other = channel_name(offer.channel, locale)
        sentences = [text("link_from_code" if offer.ask == "code" else "link_from_link",
                          locale, channel=other),
                     text("link_consent", locale, channel=other)]
        if again:
            sentences.insert(0, text("link_answer_yes_or_no", locale))
        return Outbound(
            text=" ".join(sentences),
            buttons=(Button(text("link_yes_button", locale), YES),
                     Button(text("link_no_button", locale), NO)),
        )

    def _guessers(self, context: TurnContext) -> list[tuple[str, int, int]]:
        """Who a wrong code is counted against: (subject, free wrong codes, cap)."""
        identity = context.inbound.identity
        options = self.options
        guessers = [(f"id:{identity.channel}:{identity.user_id}",
                     options.free_wrong_codes, options.wrong_codes_per_identity)]
        if context.inbound.client_address is not None:
            guessers.append((f"addr:{context.inbound.client_address}",
                             options.free_wrong_codes_per_address,
                             options.wrong_codes_per_address))
        return guessers

    async def _must_wait(self, guessers: list[tuple[str, int, int]]) -> bool:
        if not self.limiter.enabled:
            return False
        for subject, _, _ in guessers:
            if await self.store.peek_token(f"link-wait:{subject}") is not None:
                return True
        return False

    async def _count_wrong(self, guessers: list[tuple[str, int, int]]) -> None:
        if not self.limiter.enabled:
            return
        options = self.options
        window = options.wrong_codes_window_seconds
        for subject, free, cap in guessers:
            wrong = await self.store.incr(f"link-wrong:{subject}", window)
            penalty = Backoff(free=free, first_delay=options.first_delay_seconds,
                              max_delay=options.max_delay_seconds, window_seconds=window)
            wait = window if wrong >= cap else int(penalty.delay(wrong))
            if wait > 0:
                await self.store.put_token(f"link-wait:{subject}", "1", wait)

    async def confirm(self, context: TurnContext, yes: bool) -> list[Outbound]:
        """The answer to the link offer waiting in `context.state`."""
        offer, locale = context.state.pending_link, context.state.locale
        context.state.pending_link = None
        if not yes:
            return [Outbound(text=text("link_declined", locale))]
        expired = [Outbound(text=text("link_code_used", locale))]
        if not isinstance(offer, LinkOffer):
            return expired
        if offer.ask == "code":
            # A code is used up only now, so a "no" leaves it to its owner.
            raw = await self.store.take_token(f"link:{offer.code}")
            if raw is None or json.loads(raw)["customer"] != offer.customer_id:
                metrics.LINK_CODES_REFUSED.labels("used").inc()
                return expired
            await self.store.take_token(f"resume:{json.loads(raw).get('nonce')}")
        target = await self.store.load_state(offer.customer_id)
        if target is None:
            return [Outbound(text=text("link_target_gone", locale))]
        # This chat goes on in the conversation it joins, and in its language.
        joined = ConversationState.from_json(target)
        locale = joined.locale or locale
        metrics.LINK_CODES_REDEEMED.labels(offer.ask).inc()
        # Merged after this turn is saved (see after_save), so this turn's
        # messages travel with the rest of the history.
        context.state.pending_link = PendingMerge(merge_into=offer.customer_id,
                                                  origin_channel=offer.channel)
        linked = text("link_done", locale, channel=channel_name(offer.channel, locale))
        return [Outbound(text=linked, event="channel_joined"),
                *where_we_left_off(_resume(joined, offer), locale)]

    async def merge_into(self, source: str, target: str, joined: ChannelIdentity,
                         display_name: str | None,
                         joined_address: Address | None = None) -> bool:
        """Join `source` into `target`, tell the target's chat (unless it is
        the joining chat itself), and let the listeners (handoff) carry over
        what they keep of `source`. Without `joined_address` (a visitor who
        signed in on the host site: the same person) nobody is told."""
        source_handoff = ConversationState.from_json(await self.store.load_state(source)).handoff
        try:
            await self.store.merge(source, target, also=[joined],
                                   lock_ttl_seconds=self.options.lock_ttl_seconds)
        except CustomerGone:
            log.warning("customer %s was not joined: %s is gone", source, target)
            return False
        for identity in await self.store.identities(target):
            self.customers.forget(identity)
        log.info("customer %s joined customer %s", source, target)
        for listener in self.merge_listeners:
            await listener(source, target, source_handoff)
        await self.events.emit(target, CUSTOMER_LINKED, {
            "kept": target, "merged": source, "channels": list(await self.channels_of(target))})
        state = ConversationState.from_json(await self.store.load_state(target))
        address = state.last_address
        if address is not None and joined_address is not None and address != joined_address:
            # In the language of the conversation joined, whose chat is told.
            who = f" ({display_name})" if display_name else ""
            notice = Outbound(text=text("link_chat_joined", state.locale, who=who,
                                        chat=a_chat_on(joined.channel, state.locale),
                                        channel=joined.channel),
                              event="channel_joined",
                              channels=await self.channels_of(target))
            await self.store.append(target, [HistoryEntry.of_outbound(
                notice, address.channel, time.time())])
            await self.senders.send(address, notice)
        return True

    async def sign_in(self, anonymous: ChannelIdentity,
                      account: ChannelIdentity) -> tuple[str, str] | None:
        """A visitor who chatted anonymously signed in on the host site, which
        vouches that both identities are the same person: the anonymous
        conversation joins the account's. (source, target) if it did."""
        source = await self.customers.customer_of(anonymous)
        target = await self.customers.customer_of(account)
        if source == target or not await self.merge_into(source, target, account, None):
            return None
        return source, target

    async def resume_is_live(self, token: str) -> bool:
        """Whether a deep link can still be opened; `resume_invalid` if it
        is not one Segue made."""
        return await self.store.peek_token(f"resume:{self._resume.nonce_of(token)}") is not None

    async def open_deep_link(self, context: TurnContext, token: str) -> list[Outbound]:
        """A deep link opened (Telegram's `/start <token>`, the web page's
        resume): used up at once, so it works once whatever the answer, and
        then the person whose chat this is decides whether to join. Opened by
        the conversation that made it, it is not used up."""
        locale = context.state.locale
        try:
            nonce = self._resume.nonce_of(token)
        except BadInput:
            return [Outbound(text=text("link_invalid", locale))]
        # Opened by the very conversation that made it (its own "continue on
        # the web" button, say): nothing to join, and the link and its code
        # stay usable for the other channel.
        waiting = await self.store.peek_token(f"resume:{nonce}")
        if waiting is not None and json.loads(waiting).get("customer") == context.customer_id:
            return [Outbound(text=text("link_already_joined", locale))]
        origin = await self._redeem(nonce)
        if origin is None:
            return [Outbound(text=text("link_used", locale))]
        offer = LinkOffer.from_json({"ask": "link", **origin})
        if offer.customer_id == context.customer_id:
            return [Outbound(text=text("link_already_joined", locale))]
        context.state.pending_link = offer
        # The offer quotes the other customer: their erase must find it here.
        await self.records.note_offer(offer.customer_id, context.customer_id)
        return [self.question(offer, locale=locale)]

    async def _redeem(self, nonce: str) -> dict[str, Any] | None:
        """Use a deep link up, and the code issued with it."""
        raw = await self.store.take_token(f"resume:{nonce}")
        if raw is None:
            return None
        origin: dict[str, Any] = json.loads(raw)
        await self.store.take_token(f"link:{origin.get('code')}")
        return origin

    async def channels(self, context: TurnContext) -> list[Outbound]:
        identities, locale = await self.store.identities(context.customer_id), context.state.locale
        names = sorted({channel_name(i.channel, locale) for i in identities} | {
            channel_name(context.inbound.channel, locale)})
        return [Outbound(text=text("link_channels", locale, names=", ".join(names),
                                   channels=channels_as_typed(locale)))]

    async def unlink(self, context: TurnContext, channel: str) -> list[Outbound]:
        channel, locale = channel.lower(), context.state.locale
        identities = [i for i in await self.store.identities(context.customer_id)
                      if i.channel == channel]
        if not identities:
            return [Outbound(text=text("link_none_linked", locale,
                                       channel=channel_name(channel, locale)))]
        for identity in identities:
            await self.store.unlink(context.customer_id, identity)
            self.customers.forget(identity)
        return [Outbound(text=text("link_unlinked", locale,
                                   channel=channel_name(channel, locale)),
                         event="channel_left",
                         channels=await self.channels_of(context.customer_id))]

    async def channels_of(self, customer_id: str) -> tuple[str, ...]:
        """The channels a conversation is joined with, by name."""
        return tuple(sorted({i.channel for i in await self.store.identities(customer_id)}))


def _resume(joined: ConversationState, offer: LinkOffer) -> HistoryEntry | None:
    """What to pick the joined conversation up from: the question it waits
    for now (it may have moved on since the code was issued), unless it is
    handed to a person, who answers instead of the bot; else what was last
    said there when the code was made."""
    if joined.question is not None and joined.handoff is None:
        return joined.question
    return offer.resume
