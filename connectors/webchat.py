"""Web chat: a JSON-over-WebSocket channel, the demo page and the widget script.

Protocol (docs/protocol.md): the client says `hello` (optionally with its session
token), gets `session` and `history`, then sends `message` frames; each
accepted message is acknowledged with `ack` once it is saved, then answered.
`typing` frames go to the agents' consoles (connectors.webchat_typing).
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import orjson
from aiohttp import WSCloseCode, WSMsgType, web

from bot.core import metrics, turn_log
from bot.core.bus import Bus
from bot.core.engine import Engine, Turn
from bot.core.errors import (
    BadInput,
    LockLost,
    LockTimeout,
    RateLimited,
    StoreError,
    StoreUnavailable,
)
from bot.core.identities import new_customer_id
from bot.core.model import (
    Address,
    ChannelIdentity,
    HistoryEntry,
    Inbound,
    Outbound,
    public_entries,
)
from bot.core.ports import ConversationReader, TurnStore
from bot.core.profile import profile_of
from bot.core.rate_limits import (
    MESSAGES_PER_ADDRESS,
    MESSAGES_PER_SESSION,
    NEW_SESSIONS_PER_ADDRESS,
    LocalBuckets,
    RateLimiter,
)
from bot.core.tokens import HostIdentity, TokenSigner, read_host_identity
from bot.linking.codes import OPENED_LINK_TEXT, RESUME_PAYLOAD
from bot.linking.service import LinkService
from connectors.client_address import client_address
from connectors.compressed_file import CompressedFile
from connectors.texts import NOT_ACCEPTED
from connectors.webchat_frames import (
    CHANNEL,
    WebClient,
    agent_typing_frame,
    history_item,
    locale_of,
    parse_frame,
    parse_message,
    render,
    send_error,
    send_typing,
)
from connectors.webchat_presence import WebPresence
from connectors.webchat_sockets import WebSockets
from connectors.webchat_typing import CustomerTyping

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static" / "webchat"
HELLO_WITHIN_SECONDS = 10.0
PROVISIONAL_SECONDS = 86400
# More sockets than this on one session is a script, not a person with tabs.
MAX_SOCKETS_PER_SESSION = 10
TYPING_AFTER_SECONDS = 0.3
# The longest history the store keeps by default: how far a replay reads
# back past the team's notes.
REPLAY_READ_MAX = 1000


@dataclass(slots=True)
class WebChatOptions:
    # Server-only: signs sessions (with a key of that purpose).
    secret: str
    # The host site's key for visitor identities; None: sign-in is off.
    identity_secret: str | None = None
    trusted_proxy_header: str | None = None
    rate_limits: bool = True
    # Origins (`https://shop.example`) whose pages may open the socket; empty:
    # any. Segue's own page is always allowed.
    allowed_origins: frozenset[str] = frozenset()
    max_text_length: int = 4096
    history_replay: int = 200
    session_max_age_seconds: int = 30 * 86400
    # Worker processes sharing the port: the kernel spreads one address's
    # sockets over them, so each counts its share of the per-address rate.
    workers: int = 1


class WebChatStore(TurnStore, ConversationReader, Protocol):
    """The slices of the store the web chat reads: a visitor's customer and history."""


class WebChatConnector:
    """The web chat channel on Segue's aiohttp app."""

    channel = CHANNEL

    def __init__(self, *, engine: Engine, store: WebChatStore, options: WebChatOptions,
                 limiter: RateLimiter, links: LinkService | None = None,
                 bus: Bus | None = None, presence: WebPresence | None = None) -> None:
        self.engine = engine
        self.store = store
        self.options = options
        self.limiter = limiter
        # Redeems resume links and joins signed-in visitors; None: both off.
        self.links = links
        self._signer = TokenSigner(options.secret, "session")
        self._per_session = LocalBuckets(MESSAGES_PER_SESSION, enabled=options.rate_limits)
        self._per_address = LocalBuckets(MESSAGES_PER_ADDRESS.share(options.workers),
                                         enabled=options.rate_limits)
        # Room for the longest text however it is escaped (12 bytes for a
        # character outside the BMP as a \\u surrogate pair), so an allowed
        # text is never cut off by the frame limit; longer texts get
        # `text_too_long`, and only far larger frames close the socket (1009).
        self._max_frame = max(1 << 20, options.max_text_length * 12 + 4096)
        # Reach sockets held by other workers: frames for a session with no
        # socket here go over `bus`; `presence` tells where sessions are open.
        self.sockets = WebSockets(bus=bus, presence=presence)
        self.customer_typing = CustomerTyping(store=store, bus=bus)
        self._widget = CompressedFile(STATIC_DIR / "widget.js", "text/javascript; charset=utf-8")

    def mount(self, app: web.Application) -> None:
        app.router.add_get("/webchat/ws", self.websocket)
        app.router.add_get("/webchat/", self.demo_page)
        app.router.add_get("/webchat", self.redirect_to_page)
        app.router.add_get("/webchat/widget.js", self.widget_script)

    async def start(self) -> None:
        await self.sockets.start()

    async def stop(self) -> None:
        await self.sockets.stop()

    def is_connected(self, session: str) -> bool:
        """Whether this worker holds a socket of `session`."""
        return self.sockets.is_connected(session)

    async def is_reachable(self, session: str) -> bool:
        """Whether any worker holds a socket of `session`."""
        return await self.sockets.is_reachable(session)

    # Outbound half.

    async def reachable(self, address: Address) -> bool:
        return await self.is_reachable(address.target)

    async def send(self, address: Address, outbound: Outbound) -> None:
        # A turn's replies go to the socket that sent the message, which is
        # here; an agent's message, and any notice said outside a turn (a
        # release, a close and its rating question), may also be awaited in
        # tabs on other workers.
        await self.sockets.send(address.target, render(outbound),
                                everywhere=outbound.sender == "agent"
                                or outbound.reply_to is None)

    async def typing(self, address: Address, on: bool, agent_name: str) -> None:
        # Every tab of the session, on whichever worker holds it.
        await self.sockets.send(address.target, agent_typing_frame(on, agent_name),
                                everywhere=True)

    # Inbound half.

    async def demo_page(self, request: web.Request) -> web.FileResponse:
        # The page may carry a link's yes/no: no other site may frame it and
        # trick a visitor into pressing "yes".
        return web.FileResponse(STATIC_DIR / "index.html", headers={
            "Content-Security-Policy": "frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
        })

    async def redirect_to_page(self, request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/webchat/")

    async def widget_script(self, request: web.Request) -> web.Response:
        return self._widget.response(request)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        if not self._origin_allowed(request):
            raise web.HTTPForbidden(text="this site may not open the chat")
        ws = web.WebSocketResponse(heartbeat=30, max_msg_size=self._max_frame, compress=False)
        await ws.prepare(request)
        client = WebClient(ws, client_address(request, self.options.trusted_proxy_header))
        self.sockets.opened(client)
        # From the handshake, not from the last frame: refused frames do not
        # keep a socket without a session open.
        hello_by = asyncio.get_running_loop().time() + HELLO_WITHIN_SECONDS
        try:
            while not ws.closed:
                wait = None
                if client.session is None:
                    wait = hello_by - asyncio.get_running_loop().time()
                try:
                    # A zero timeout would mean none to aiohttp: past the
                    # deadline, time out at once instead.
                    if wait is not None and wait <= 0:
                        raise TimeoutError
                    msg = await ws.receive(timeout=wait)
                except TimeoutError:
                    await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"hello expected")
                    break
                if msg.type == WSMsgType.TEXT:
                    # A random turn id: a message's own is its client's choice.
                    with turn_log.turn(channel=CHANNEL, customer_id=client.customer_id):
                        await self.sockets.in_hand(client,
                                                   partial(self._on_text, client, msg.data))
                elif msg.type == WSMsgType.BINARY:
                    await self._refuse(client, BadInput("bad_frame", "frames must be JSON text"))
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED,
                                  WSMsgType.ERROR):
                    break
        finally:
            await self.sockets.unregister(client)
            await self.customer_typing.closed(client)
        return ws

    def _origin_allowed(self, request: web.Request) -> bool:
        """Browsers name the page's origin on the handshake. A client without
        one is not a browser, and could claim any origin, so only browsers'
        pages are held to the list."""
        allowed = self.options.allowed_origins
        origin = request.headers.get("Origin")
        if not allowed or origin is None:
            return True
        return origin.rstrip("/") in allowed or urlsplit(origin).netloc == request.host

    async def _on_text(self, client: WebClient, data: str) -> None:
        try:
            frame = parse_frame(data)
            kind = frame.get("type")
            if kind == "hello":
                await self._on_hello(client, frame)
            elif kind == "message":
                await self._on_message(client, frame)
            elif kind == "typing":
                await self.customer_typing.on_frame(client, frame)
            else:
                raise BadInput("unknown_type", f"unknown frame type {kind!r}")
        except BadInput as exc:
            await self._refuse(client, exc)
        except StoreUnavailable as exc:
            log.warning("store unavailable; web chat message refused: %s", exc)
            await send_error(client.ws, "store_unavailable", "temporarily unavailable: send again")
        except (LockTimeout, LockLost) as exc:
            log.warning("web chat turn not saved: %s", exc)
            await send_error(client.ws, "busy", NOT_ACCEPTED)
        except StoreError as exc:
            log.error("web chat message refused by the store: %s", exc)
            await send_error(client.ws, "store_error", NOT_ACCEPTED)
        except ConnectionResetError:
            pass  # the socket closed under us; a reconnect resends what was not acked

    async def _on_hello(self, client: WebClient, frame: dict[str, Any]) -> None:
        if client.session is not None:
            raise BadInput("already_hello", "this socket has a session already")
        # Ignored when odd rather than refused: an old browser still connects.
        client.locale = locale_of(frame.get("locale"))
        # Only a host-signed identity says who the visitor is.
        client.profile = None
        signed, user = self._session_of(frame.get("session"))
        session = signed
        identity_token = frame.get("identity")
        resume_token = frame.get("resume")
        for name, value in (("identity", identity_token), ("resume", resume_token)):
            if value is not None and not isinstance(value, str):
                raise BadInput("bad_frame", f"'{name}' must be a string")
        if resume_token is not None:
            await self._check_resume(resume_token)
        if identity_token is not None:
            host = self._verify_identity(identity_token, user)
            verified = "u:" + host.user_id
            client.profile = profile_of(name=host.name, email=host.email)
            anonymous_resumed = user == session and frame.get("session") is not None
            if anonymous_resumed and self.links is not None:
                # The same person, now signed in on the host site (the host vouches).
                joined = await self.links.sign_in(ChannelIdentity(CHANNEL, user),
                                                  ChannelIdentity(CHANNEL, verified))
                if joined is not None:
                    self.sockets.follow_join(*joined)
            elif user not in (session, verified):
                # Another signed-in user on this browser: a session of their own.
                session = secrets.token_urlsafe(16)
            user = verified
        elif user != session:
            # A signed-in session, but the page no longer vouches for the user
            # (they signed out): start afresh rather than show their history.
            session = user = secrets.token_urlsafe(16)
        if self.sockets.count(session) >= MAX_SOCKETS_PER_SESSION:
            raise BadInput("too_many_sockets", "this session is open in too many places")
        if session != signed or frame.get("session") is None:
            await self._count_new_session(client)
        await self._open_session(client, session, user)
        if resume_token is not None:
            await self._open_deep_link(client, resume_token)

    def _verify_identity(self, token: str, session_user: str) -> HostIdentity:
        """The token's user id and claims. A token that has expired still continues a
        session that user signed in with: a page left open longer than the
        token lives must not lose its conversation on a reconnect."""
        secret = self.options.identity_secret
        if secret is None:
            raise BadInput("identity_invalid", "signed-in visitors are not enabled here")
        try:
            return read_host_identity(token, secret)
        except BadInput as exc:
            if exc.code != "identity_expired":
                raise
            host = read_host_identity(token, secret, allow_expired=True)
            if "u:" + host.user_id != session_user:
                raise
            return host

    async def _count_new_session(self, client: WebClient) -> None:
        limiter = self.limiter
        if limiter.enabled and not await limiter.allow(NEW_SESSIONS_PER_ADDRESS, client.address):
            raise RateLimited("too many new chats from your network: try again later",
                              NEW_SESSIONS_PER_ADDRESS.window_seconds)

    async def _check_resume(self, token: str) -> None:
        """Refuse a deep link that cannot work before anything is opened."""
        if self.links is None:
            raise BadInput("resume_invalid", "continuing from a link is not enabled here")
        if not await self.links.resume_is_live(token):
            raise BadInput("resume_used", "this link has been used already or has expired")

    async def _open_session(self, client: WebClient, session: str, user: str) -> None:
        identity = ChannelIdentity(CHANNEL, user)
        # Provisional, and not cached: a visitor who never writes leaves only a
        # short-lived key; the first message resolves again and keeps it.
        customer_id = await self.store.resolve_customer(
            identity, new_customer_id(), provisional_ttl=PROVISIONAL_SECONDS)
        turn_log.identify(customer_id)
        history = await self._replay(customer_id)
        client.session, client.user, client.customer_id = session, user, customer_id
        try:
            await self.sockets.register(client)
        except BaseException:
            # Refused for a passing reason (the store): the same hello may come again.
            client.session = client.user = client.customer_id = None
            raise
        # A fresh signature on every hello: an active session never expires.
        token = self._signer.sign({"s": session, "u": user})
        await client.ws.send_json({"type": "session", "session": token, "customer": customer_id})
        await self._send_history(client, history)

    async def _open_deep_link(self, client: WebClient, token: str) -> None:
        """A deep link opened on this page: a turn of its own, in which the
        link hook asks this visitor whether to join (nothing is joined
        before they say yes)."""
        assert client.session is not None and client.user is not None
        inbound = Inbound(
            identity=ChannelIdentity(CHANNEL, client.user),
            address=Address(CHANNEL, client.session),
            message_id=f"{RESUME_PAYLOAD}{token}",
            text=OPENED_LINK_TEXT,
            payload=f"{RESUME_PAYLOAD}{token}",
            client_address=client.address,
            locale=client.locale,
            profile=client.profile,
        )
        turn = await self.engine.process(inbound)
        await self.engine.deliver(turn)
        self._follow_turn(turn)

    def _session_of(self, token: object) -> tuple[str, str]:
        """(session id, channel user id) of a session token, or of a new session."""
        if token is None:
            session = secrets.token_urlsafe(16)
            return session, session
        if not isinstance(token, str):
            raise BadInput("bad_frame", "'session' must be a string")
        data = self._signer.verify(token, max_age_seconds=self.options.session_max_age_seconds)
        signed = data.get("s") if isinstance(data, dict) else None
        if not isinstance(signed, str):
            raise BadInput("session_invalid", "the session token is not valid")
        signed_user = data.get("u")
        return signed, signed_user if isinstance(signed_user, str) else signed

    async def _on_message(self, client: WebClient, frame: dict[str, Any]) -> None:
        if client.session is None:
            raise BadInput("hello_required", "send a hello frame first")
        inbound = parse_message(client, frame, self.options.max_text_length)
        self._take_message_allowance(client)
        # Show "typing" only for a turn slow enough for a person to notice.
        typing_shown: list[asyncio.Task[None]] = []
        timer = asyncio.get_running_loop().call_later(
            TYPING_AFTER_SECONDS,
            lambda: typing_shown.append(asyncio.ensure_future(send_typing(client.ws, True))),
        )
        try:
            turn = await self.engine.process(inbound)
        finally:
            timer.cancel()
        ack = {"type": "ack", "id": inbound.message_id}
        await client.ws.send_str(orjson.dumps(ack).decode())
        if typing_shown:
            await typing_shown[0]
            await send_typing(client.ws, False)
        await self.engine.deliver(turn)
        self._follow_turn(turn)
        if client.joined:
            await self._show_joined_history(client)

    def _follow_turn(self, turn: Turn) -> None:
        if turn.joined_into is not None:
            # The visitor said yes to a link: the conversation open here was
            # joined into another.
            self.sockets.follow_join(turn.customer_id, turn.joined_into)

    async def _show_joined_history(self, client: WebClient) -> None:
        client.joined = False
        assert client.customer_id is not None
        history = await self._replay(client.customer_id)
        await self._send_history(client, history)

    async def _replay(self, customer_id: str) -> list[HistoryEntry]:
        """The last `history_replay` entries the visitor may see: the team's
        notes and steps neither show nor take a place (a second, longer read
        only when they filled some of the first)."""
        wanted = self.options.history_replay
        history = await self.store.history(customer_id, wanted)
        shown = public_entries(history)
        if len(shown) < len(history) == wanted:
            shown = public_entries(await self.store.history(customer_id, REPLAY_READ_MAX))
        return shown[-wanted:]

    async def _send_history(self, client: WebClient, history: list[HistoryEntry]) -> None:
        """The `history` frame of entries from `_replay` (the visitor's own,
        never the team's), with the channels the conversation is joined
        with: the widget shows where else it goes on."""
        assert client.customer_id is not None
        identities = await self.store.identities(client.customer_id)
        await client.ws.send_json({
            "type": "history",
            "messages": [history_item(e) for e in history],
            "channels": sorted({i.channel for i in identities} | {CHANNEL}),
        })

    def _take_message_allowance(self, client: WebClient) -> None:
        """One message's worth of the session's and the address's buckets,
        or `rate_limited` (and neither is charged)."""
        assert client.session is not None
        wait = self._per_session.take(client.session)
        if wait == 0:
            wait = self._per_address.take(client.address)
            if wait > 0:
                self._per_session.give_back(client.session)
        if wait > 0:
            raise RateLimited("you are sending messages too fast: this one was not accepted, "
                              "send it again in a moment", math.ceil(wait))

    async def _refuse(self, client: WebClient, exc: BadInput) -> None:
        """A refused frame: counted, and answered with an `error` frame."""
        metrics.BAD_INPUT.labels(CHANNEL, exc.code).inc()
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        await send_error(client.ws, exc.code, exc.message, retry_after=retry_after)

