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
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot.conversation import ConversationState
from bot.engine import Engine, Turn
from bot.errors import BadInput, CustomerGone
from bot.model import Button, ChannelIdentity, HistoryEntry, Link, Outbound
from bot.policy import TurnContext
from bot.tokens import ShortToken
from context_store.base import ContextStore

log = logging.getLogger(__name__)

CHANNEL_NAMES = {"web": "web chat", "telegram": "Telegram", "slack": "Slack"}
YES, NO = "link_yes", "link_no"
_LINK = re.compile(r"^/?link(?:@\w+)?(?:\s+(\S+))?$", re.IGNORECASE)
_UNLINK = re.compile(r"^/?unlink(?:@\w+)?\s+(\w+)$", re.IGNORECASE)
_CHANNELS = re.compile(r"^/?channels(?:@\w+)?$", re.IGNORECASE)
_START = re.compile(r"^/start(?:@\w+)?\s+(\S+)$")
_COMMAND = re.compile(r"^/?(?:link|unlink|channels)\b", re.IGNORECASE)
_YES_WORDS = {"yes", "y", "yes, that's me", "yes, link it", "ok"}
_NO_WORDS = {"no", "n", "no, don't link", "cancel"}


@dataclass(frozen=True, slots=True)
class LinkOptions:
    secret: str
    code_ttl_seconds: int = 600
    attempts_per_identity: int = 5
    attempts_window_seconds: int = 900
    # Across every customer: bounds what many throwaway identities can guess.
    attempts_global: int = 100
    public_url: str | None = None
    telegram_bot_username: str | None = None


def channel_name(channel: str) -> str:
    return CHANNEL_NAMES.get(channel, channel)


MergeListener = Callable[[str, str, dict[str, Any] | None], Awaitable[None]]


class LinkService:
    """Issues and redeems codes and deep links, and merges customers."""

    def __init__(self, *, engine: Engine, store: ContextStore, options: LinkOptions) -> None:
        self.engine = engine
        self.store = store
        self.options = options
        self._resume = ShortToken(options.secret, "resume")
        # Called after every merge with (source, target, source's handoff).
        self.merge_listeners: list[MergeListener] = []

    async def issue(self, context: TurnContext) -> list[Outbound]:
        """A fresh code, and deep links to continue elsewhere."""
        origin = {
            "customer": context.customer_id,
            "channel": context.inbound.channel,
            "name": context.inbound.display_name or "",
            "resume": await self._last_prompt(context.customer_id),
        }
        token, nonce = self._resume.new()
        for _ in range(10):
            code = f"{secrets.randbelow(1_000_000):06d}"
            # Each names the other: using one revokes both.
            if await self.store.put_token(f"link:{code}", json.dumps({**origin, "nonce": nonce}),
                                          self.options.code_ttl_seconds):
                break
        else:  # ten collisions in a row: far more live codes than expected
            return [Outbound(text="Sorry, I could not make a code just now. Please try again.")]
        await self.store.put_token(f"resume:{nonce}", json.dumps({**origin, "code": code}),
                                   self.options.code_ttl_seconds)
        minutes = self.options.code_ttl_seconds // 60
        text = (
            f"Your link code is {code}. Within {minutes} minutes, send “link {code}” "
            "from the other channel (web chat, Telegram or Slack) to continue this "
            "conversation there."
        )
        return [Outbound(text=text, links=self._deep_links(token, context.inbound.channel))]

    def _deep_links(self, token: str, here: str) -> tuple[Link, ...]:
        """Links to the other channels; the web link needs the public URL
        except inside the web chat, where a relative one works."""
        links = []
        if self.options.telegram_bot_username and here != "telegram":
            links.append(Link(f"https://t.me/{self.options.telegram_bot_username}?start={token}",
                              "Continue on Telegram"))
        if self.options.public_url or here == "web":
            base = (self.options.public_url or "").rstrip("/")
            links.append(Link(f"{base}/webchat/?resume={token}", "Continue on the web"))
        return tuple(links)

    async def enter_code(self, context: TurnContext, code: str) -> list[Outbound]:
        """Someone typed `link <code>`: show what it joins and ask to confirm."""
        identity = context.inbound.identity
        if await self._too_many_attempts(identity):
            return [Outbound(text="Too many link attempts. Please wait 15 minutes and ask for "
                                  "a new code.")]
        raw = await self.store.peek_token(f"link:{code}") if code.isdigit() else None
        if raw is None:
            await self._count_failure()
            return [Outbound(text="That code is not valid or has expired. Send “link” on the "
                                  "channel you came from to get a new one.")]
        origin = json.loads(raw)
        if origin["customer"] == context.customer_id:
            return [Outbound(text="This chat is already part of that conversation.")]
        context.state.pending_link = {"code": code, **origin}
        return [self.question(context.state.pending_link)]

    @staticmethod
    def question(pending: dict[str, Any], *, again: bool = False) -> Outbound:
        """The yes/no that shows the person entering a code what it joins."""
        who = f" ({pending['name']})" if pending.get("name") else ""
        lead = "Please answer yes or no. " if again else ""
        return Outbound(
            text=f"{lead}This will join this chat with your "
                 f"{channel_name(pending['channel'])} conversation{who}, including its "
                 "history. Is that you?",
            buttons=(Button("Yes, link it", YES), Button("No, don't link", NO)),
        )

    async def _too_many_attempts(self, identity: ChannelIdentity) -> bool:
        window = self.options.attempts_window_seconds
        mine = await self.store.incr(f"link-attempts:{identity.channel}:{identity.user_id}",
                                     window)
        if mine > self.options.attempts_per_identity:
            return True
        return await self.store.peek_token("link-lockdown") is not None

    async def _count_failure(self) -> None:
        window = self.options.attempts_window_seconds
        if await self.store.incr("link-failures", window) >= self.options.attempts_global:
            log.warning("many wrong link codes: link codes refused for %d s", window)
            await self.store.put_token("link-lockdown", "1", window)

    async def confirm(self, context: TurnContext, yes: bool) -> list[Outbound]:
        pending = context.state.pending_link or {}
        context.state.pending_link = None
        if not yes:
            return [Outbound(text="OK, nothing was linked.")]
        raw = await self.store.take_token(f"link:{pending.get('code')}")
        if raw is None or json.loads(raw)["customer"] != pending.get("customer"):
            return [Outbound(text="That code has expired or was used already. Send “link” on "
                                  "the other channel to get a new one.")]
        await self.store.take_token(f"resume:{json.loads(raw).get('nonce')}")
        if await self.store.load_state(pending["customer"]) is None:
            return [Outbound(text="That conversation no longer exists, so nothing was linked.")]
        # Merged after this turn is saved (see after_save), so this turn's
        # messages travel with the rest of the history.
        context.state.pending_link = {"merge_into": pending["customer"],
                                      "origin_channel": pending["channel"]}
        return [Outbound(text=f"Linked! This chat now continues your "
                              f"{channel_name(pending['channel'])} conversation."),
                *self.where_we_were(pending)]

    async def _last_prompt(self, customer_id: str) -> dict[str, Any] | None:
        """The last thing the bot or an agent said, to pick up from elsewhere."""
        for entry in reversed(await self.store.history(customer_id, 50)):
            if entry.sender != "customer":
                return entry.to_json()
        return None

    @staticmethod
    def where_we_were(origin: dict[str, Any]) -> list[Outbound]:
        prompt = origin.get("resume")
        if not prompt:
            return []
        entry = HistoryEntry.from_json(prompt)
        return [Outbound(text=f"Where we left off: {entry.text}", buttons=entry.buttons)]

    async def merge_into(self, source: str, target: str, joined: ChannelIdentity,
                         display_name: str | None) -> None:
        """Join `source` into `target`, tell the target's channel, and let
        the listeners (handoff) carry over what they keep of `source`."""
        source_handoff = ConversationState.from_json(await self.store.load_state(source)).handoff
        try:
            await self.store.merge(source, target, also=[joined],
                                   lock_ttl_seconds=self.engine.options.lock_ttl_seconds)
        except CustomerGone:
            log.warning("customer %s was not joined: %s is gone", source, target)
            return
        for identity in await self.store.identities(target):
            self.engine.identities.drop(identity)
        log.info("customer %s joined customer %s", source, target)
        for listener in self.merge_listeners:
            await listener(source, target, source_handoff)
        who = f" ({display_name})" if display_name else ""
        notice = Outbound(
            text=f"A {channel_name(joined.channel)} chat{who} joined this conversation. "
                 f"If that wasn't you, send “unlink {joined.channel}”.",
        )
        state = ConversationState.from_json(await self.store.load_state(target))
        address = state.last_address
        if address is not None and address.channel != joined.channel:
            await self.store.append(target, [HistoryEntry.of_outbound(
                notice, address.channel, time.time())])
            await self.engine.send(address, notice)

    async def redeem_resume(self, token: str, identity: ChannelIdentity,
                            display_name: str | None = None) -> str:
        """A deep link opened by its person: join `identity` to the link's
        conversation. Returns the customer id it now belongs to."""
        origin = await self._redeem(self._resume.nonce_of(token))
        if origin is None:
            raise BadInput("resume_used", "this link has been used already or has expired")
        target = origin["customer"]
        source = await self.engine.customer_of(identity)
        if source != target:
            await self.merge_into(source, target, identity, display_name)
        return str(target)

    async def _redeem(self, nonce: str) -> dict[str, Any] | None:
        """Use a deep link up, and the code issued with it."""
        raw = await self.store.take_token(f"resume:{nonce}")
        if raw is None:
            return None
        origin: dict[str, Any] = json.loads(raw)
        await self.store.take_token(f"link:{origin.get('code')}")
        return origin

    async def start_link(self, context: TurnContext, token: str) -> list[Outbound]:
        """`/start <token>` in Telegram: a deep link the person opened."""
        try:
            nonce = self._resume.nonce_of(token)
        except BadInput:
            return [Outbound(text="That is not a valid link. Send “link” on the channel you came "
                                  "from to get a new one, or just tell me what you need.")]
        origin = await self._redeem(nonce)
        if origin is None:
            return [Outbound(text="That link has expired or has been used already. Send “link” "
                                  "on the other channel to get a new one.")]
        if origin["customer"] == context.customer_id:
            return [Outbound(text="This chat is already part of that conversation.")]
        context.state.pending_link = {"merge_into": origin["customer"],
                                      "origin_channel": origin["channel"]}
        return [Outbound(text=f"Welcome! This chat now continues your "
                              f"{channel_name(origin['channel'])} conversation."),
                *self.where_we_were(origin)]

    async def channels(self, context: TurnContext) -> list[Outbound]:
        identities = await self.store.identities(context.customer_id)
        names = sorted({channel_name(i.channel) for i in identities} | {
            channel_name(context.inbound.channel)})
        return [Outbound(text="This conversation is linked with: " + ", ".join(names) + ". "
                              "Send “unlink <channel>” (web, telegram or slack) to remove one.")]

    async def unlink(self, context: TurnContext, channel: str) -> list[Outbound]:
        channel = channel.lower()
        identities = [i for i in await self.store.identities(context.customer_id)
                      if i.channel == channel]
        if not identities:
            return [Outbound(text=f"No {channel_name(channel)} chat is linked.")]
        for identity in identities:
            await self.store.unlink(context.customer_id, identity)
            self.engine.identities.drop(identity)
        return [Outbound(text=f"{channel_name(channel)} is no longer linked to this "
                              "conversation; its next message starts a new one.")]


class LinkHook:
    """The linking commands, taken before the dialog policy sees them."""

    def __init__(self, service: LinkService) -> None:
        self.service = service

    async def intercept(self, context: TurnContext) -> list[Outbound] | None:
        inbound = context.inbound
        text = inbound.text.strip()
        pending = context.state.pending_link
        if pending and "code" in pending:
            answer = _yes_no(inbound.payload, text)
            if answer is not None:
                return await self.service.confirm(context, answer)
            if not _COMMAND.match(text):
                return [self.service.question(pending, again=True)]
            context.state.pending_link = None  # another linking command replaces it
        if (match := _LINK.match(text)) is not None:
            code = match.group(1)
            if code is None:
                return await self.service.issue(context)
            return await self.service.enter_code(context, code)
        if (match := _START.match(text)) is not None and inbound.channel == "telegram":
            return await self.service.start_link(context, match.group(1))
        if _CHANNELS.match(text):
            return await self.service.channels(context)
        if (match := _UNLINK.match(text)) is not None:
            return await self.service.unlink(context, match.group(1))
        return None

    async def after_save(self, context: TurnContext, turn: Turn) -> None:
        pending = context.state.pending_link
        if pending and "merge_into" in pending:
            await self.service.merge_into(context.customer_id, pending["merge_into"],
                                          context.inbound.identity,
                                          context.inbound.display_name)


def _yes_no(payload: str | None, text: str) -> bool | None:
    if payload in (YES, NO):
        return payload == YES
    lowered = text.lower().strip(" .!")
    if lowered in _YES_WORDS:
        return True
    if lowered in _NO_WORDS:
        return False
    return None
