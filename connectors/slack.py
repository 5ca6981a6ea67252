"""Slack: slack-bolt's `AsyncApp` behind `POST /slack/events` (Events API,
interactivity, url_verification), or Socket Mode when an app token is set.

Slack wants an answer within 3 seconds and delivers again otherwise, so a
request is acknowledged as soon as its message is durably queued in the
store's inbox; the inbox worker runs the turn afterwards. Every HTTP request
is verified (signature and its 5-minute window) before Bolt parses a byte of
it: Bolt parses first and verifies after, so bad input would otherwise end in
a 500, and its refusal logs the whole body, customer text included.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import aiohttp
from aiohttp import ClientError, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.error import BoltUnhandledRequestError
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core import inbox, metrics, turn_log
from bot.core.direct_answers import DirectAnswers
from bot.core.engine import Engine
from bot.core.errors import BadInput, ConnectorError, StoreUnavailable
from bot.core.model import Address, ChannelIdentity, Inbound, Outbound
from bot.core.ports import InboxStore, ParkingStore
from bot.core.settings import Settings
from connectors.http_errors import refuse
from connectors.pacing import Pacer
from connectors.slack_locale import SlackLocales
from connectors.slack_parse import (
    CHANNEL,
    KIND_MAX,
    event_turn_id,
    identity_parts,
    inbound_from_json,
    inbound_to_json,
    interaction_kind,
    missing_part,
    parse_action,
    parse_event,
    request_kind,
    response_url_allowed,
    well_formed,
)
from connectors.slack_render import render, unsupported_answer, unsupported_notice
from connectors.slack_send import DirectMessages, slack_pacer
from connectors.texts import too_long_reply

log = logging.getLogger(__name__)
# Bolt's own logger: some of its INFO lines quote whole request bodies.
bolt_log = log.getChild("bolt")
bolt_log.setLevel(logging.WARNING)

ROUTE = "/slack/events"
RATE_LIMIT_RETRIES = 3
TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
SIGNATURE_HEADER = "X-Slack-Signature"
# How far a request's timestamp may be from now, as slack_sdk checks it.
SIGNATURE_WINDOW_SECONDS = 5 * 60
# How long a message shortcut's notice may take to reach its response URL.
NOTICE_TIMEOUT_SECONDS = 10
# What Bolt may raise while it parses a verified body into a request.
_BODY_ERRORS = (ValueError, RecursionError, TypeError, AttributeError, KeyError, IndexError)


class SlackStore(InboxStore, ParkingStore, Protocol):
    """The slices of the store Slack uses: the inbox its requests are queued
    in, and parking for the items its inbox worker cannot handle."""


class SlackConnector:
    """The Slack channel: a Bolt app for input, its Web API client for output."""

    channel = CHANNEL

    def __init__(
        self,
        *,
        engine: Engine,
        store: SlackStore,
        client: AsyncWebClient,
        signing_secret: str | None,
        app_token: str | None = None,
        max_text_length: int = 4096,
        inbox_options: inbox.InboxOptions | None = None,
        answers: DirectAnswers | None = None,
        pacer: Pacer | None = None,
    ) -> None:
        self.engine = engine
        self.answers = answers
        # Every chat.postMessage waits its turn in its channel and overall.
        self.pacer = pacer if pacer is not None else slack_pacer()
        self.direct_messages = DirectMessages(client)
        self.store = store
        self.client = client
        self.max_text_length = max_text_length
        self.http_enabled = signing_secret is not None
        self._app_token = app_token
        self._inbox_options = inbox_options
        self._worker: inbox.InboxWorker | None = None
        self._socket_mode: Any = None
        self._http: aiohttp.ClientSession | None = None
        self._notices: set[asyncio.Task[None]] = set()
        # Slack's payloads do not carry the person's language; users.info does.
        self.locales = SlackLocales(self._user_info)
        # Without a signing secret HTTP events are off (Socket Mode only);
        # a random secret keeps them from ever being accepted anyway.
        secret = signing_secret or secrets.token_hex(32)
        self.verifier = SignatureVerifier(secret)
        self.bolt = AsyncApp(
            client=client,
            # Bolt checks the signature again; it only ever sees good ones.
            signing_secret=secret,
            process_before_response=True,
            logger=bolt_log,
            # Bolt's own warning for a request no listener takes quotes what
            # the user typed (a search, a dialog's fields); raised instead, it
            # reaches `_on_error`, which logs one line without the body.
            raise_error_for_unhandled_request=True,
        )
        self.bolt.use(self._answer_the_rest)
        self.bolt.event(re.compile(".*"))(self._on_event)
        self.bolt.action(re.compile(".*"))(self._on_action)
        self.bolt.error(self._on_error)

    # Lifecycle.

    def mount(self, app: web.Application) -> None:
        app.router.add_post(ROUTE, self.events)

    async def start(self) -> None:
        if self.client.session is None:
            # One connection pool for every Web API call: without it
            # slack_sdk opens a session, and a TLS connection, per call.
            self._http = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.client.timeout))
            self.client.session = self._http
        if self._worker is None:
            self._worker = inbox.shared_worker(self.store, self._inbox_options)
            self._worker.register(CHANNEL, self.handle_item)
            await self._worker.start()
        if self._app_token is not None and self._socket_mode is None:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            self._socket_mode = AsyncSocketModeHandler(self.bolt, self._app_token)
            await self._socket_mode.connect_async()
            log.info("Slack Socket Mode connected")

    async def stop(self) -> None:
        if self._socket_mode is not None:
            handler, self._socket_mode = self._socket_mode, None
            # First: no new event comes in while the inbox drains.
            await handler.close_async()
            log.info("Slack Socket Mode closed")
        if self._worker is not None:
            worker, self._worker = self._worker, None
            await worker.stop()
        notices = list(self._notices)
        for task in notices:
            task.cancel()
        await asyncio.gather(*notices, return_exceptions=True)
        if self._http is not None:
            http, self._http = self._http, None
            self.client.session = None
            await http.close()

    # Inbound half: verify, queue, acknowledge.

    async def events(self, request: web.Request) -> web.Response:
        if not self.http_enabled:
            raise web.HTTPNotFound(text="Slack HTTP events are not enabled (Socket Mode only)")
        raw = await request.read()
        if not self.signed(raw, request.headers):
            return refuse(CHANNEL, "bad_signature", "missing, wrong or expired Slack signature",
                          status=401)
        bolt_request = _bolt_request(raw, request)
        if bolt_request is None:
            return refuse(CHANNEL, "bad_body",
                          "the body is not a Slack event or interaction payload", status=400)
        problem = missing_part(bolt_request.body)
        if problem is not None:
            return refuse(CHANNEL, "bad_body", problem, status=400)
        bolt_response = await self.bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    def signed(self, raw: bytes, headers: Mapping[str, str]) -> bool:
        """Whether `raw` carries a valid Slack signature from the last 5 minutes."""
        timestamp = headers.get(TIMESTAMP_HEADER, "")
        signature = headers.get(SIGNATURE_HEADER, "")
        # slack_sdk would raise on a timestamp that is not a number, and
        # hmac on a signature that is not ASCII.
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            return False
        if not signature.isascii():
            return False
        try:
            return self.verifier.is_valid(raw.decode("utf-8"), timestamp, signature)
        except UnicodeDecodeError:
            pass
        # slack_sdk signs the body as text, so it cannot check one that is not
        # UTF-8; the same HMAC over its bytes tells a signed but garbled body
        # (refused as bad input) from a forged one.
        if abs(self.verifier.clock.now() - int(timestamp)) > SIGNATURE_WINDOW_SECONDS:
            return False
        base = b"v0:" + timestamp.encode() + b":" + raw
        digest = hmac.new(self.verifier.signing_secret.encode(), base, hashlib.sha256)
        return hmac.compare_digest("v0=" + digest.hexdigest(), signature)

    async def _answer_the_rest(
        self, body: dict[str, Any], request: AsyncBoltRequest,
        next_: Callable[[], Awaitable[None]],
    ) -> BoltResponse | None:
        """Every interaction but a press of Segue's own buttons (slash
        commands, shortcuts, modals, menus, other presses) is answered here,
        before any listener, as Slack asks of its kind: never an error the
        person would see, nothing queued or stored. So is Slack's notice
        that it holds events back."""
        if body.get("type") == "app_rate_limited":
            log.warning("Slack holds back this app's events for the minute (app_rate_limited)")
            return BoltResponse(status=200, body="")
        kind = interaction_kind(body)
        if kind is None or parse_action(body) is not None:
            await next_()
            return None
        metrics.BAD_INPUT.labels(CHANNEL, "unsupported_interaction").inc()
        log.info("Slack %s acknowledged: Segue does not support it", kind[:KIND_MAX])
        url = body.get("response_url")
        # A delivery Slack retries was seen before, notice and all; one lost
        # notice is better than two.
        if kind == "message_action" and isinstance(url, str) and _retry_num(request) == 0:
            self._notify(url)
        return BoltResponse(status=200, body=unsupported_answer(kind) or "")

    def _notify(self, url: str) -> None:
        """Tell the person who used a message shortcut, through its response
        URL, after the acknowledgement: Slack wants that within 3 seconds."""
        if not response_url_allowed(url, self.client.base_url):
            log.warning("a Slack response URL off Slack's hosts was not called")
            return
        task = asyncio.create_task(self._send_notice(url))
        self._notices.add(task)
        task.add_done_callback(self._notices.discard)

    async def _send_notice(self, url: str) -> None:
        webhook = AsyncWebhookClient(url, timeout=NOTICE_TIMEOUT_SECONDS)
        try:
            response = await webhook.send_dict(unsupported_notice())
        except (ClientError, TimeoutError) as exc:
            # The type alone: the URL is a credential for that conversation.
            log.warning("Slack's response URL could not be reached: %s", type(exc).__name__)
            return
        if response.status_code != 200:
            log.warning("Slack refused a notice: HTTP %s", response.status_code)

    async def _on_event(
        self, body: dict[str, Any], context: AsyncBoltContext, ack: AsyncAck
    ) -> None:
        with turn_log.turn(event_turn_id(body), channel=CHANNEL):
            try:
                inbound = parse_event(body, bot_user_id=context.bot_user_id)
            except BadInput as exc:
                # Refused but acknowledged: any other answer and Slack only
                # sends the same event again, three times.
                metrics.BAD_INPUT.labels(CHANNEL, exc.code).inc()
                log.warning("Slack event refused (%s): %s", exc.code, exc.message)
                inbound = None
            if inbound is not None:
                await self._queue(inbound)
            await ack()

    async def _on_action(self, body: dict[str, Any], ack: AsyncAck) -> None:
        inbound = parse_action(body)
        with turn_log.turn(inbound.message_id if inbound else None, channel=CHANNEL):
            if inbound is not None:
                await self._queue(inbound)
            await ack()

    async def _queue(self, inbound: Inbound) -> None:
        # Before the ack: once Slack has its 200 it never sends this again.
        await self.store.inbox_add(inbox.encode_item(CHANNEL, inbound_to_json(inbound)),
                                   lane=inbox.lane_of(inbound.identity))

    async def _on_error(self, error: Exception) -> BoltResponse | None:
        if isinstance(error, BoltUnhandledRequestError):
            log.warning("Slack request not handled (%s); answered %s",
                        request_kind(error.body), _status(error.current_response))
            return None  # Bolt's own answer (404) stands
        if isinstance(error, StoreUnavailable):
            log.warning("store unavailable; Slack will deliver again: %s", error)
            return BoltResponse(status=503, body="store unavailable, retry later")
        log.error("handling a Slack request failed", exc_info=error)
        return BoltResponse(status=500, body="internal error")

    async def handle_item(self, data: dict[str, Any]) -> None:
        """Run the turn of one queued message, then deliver its replies."""
        inbound = inbound_from_json(data)
        # The id the request that queued it was logged under.
        with turn_log.turn(inbound.message_id, channel=CHANNEL):
            await self._handle(inbound)

    async def _handle(self, inbound: Inbound) -> None:
        if len(inbound.text) > self.max_text_length:
            # Refused with a word to the customer, once however often Slack
            # delivers it; nothing of it is stored.
            if self.answers is None:
                raise ConnectorError("the Slack connector was built without its direct answers")
            reply = too_long_reply(len(inbound.text), self.max_text_length)
            await self.answers.answer_once(inbound.identity, inbound.message_id,
                                           inbound.address, reply)
            return
        turn = await self.engine.process(await self._with_user(inbound))
        await self.engine.deliver(turn)

    async def _with_user(self, inbound: Inbound) -> Inbound:
        """`inbound` with its sender's locale and profile from users.info:
        looked up when the turn runs, not before Slack's 3-second
        acknowledgement."""
        parts = identity_parts(inbound.identity.user_id)
        if parts is None or (inbound.locale is not None and inbound.profile is not None):
            return inbound
        user = await self.locales.about(*parts)
        return replace(inbound, locale=inbound.locale or user.locale,
                       profile=inbound.profile or user.profile)

    async def _user_info(self, user: str) -> Mapping[str, Any]:
        response = await self.client.users_info(user=user, include_locale=True)
        return response.data if isinstance(response.data, dict) else {}

    # Outbound half.

    async def send(self, address: Address, outbound: Outbound) -> None:
        message = render(outbound)
        try:
            # The client's own retry waits out a 429 inside the turn, so the
            # channel's next message cannot overtake this one.
            async with self.pacer.turn(address.target):
                await self.client.chat_postMessage(
                    channel=address.target,
                    thread_ts=address.thread,
                    text=message.text,
                    blocks=list(message.blocks),
                    unfurl_links=False,
                )
        except SlackApiError as exc:
            # The error code alone: the exception's text quotes Slack's whole answer.
            error = exc.response.get("error") if exc.response is not None else None
            status = exc.response.status_code if exc.response is not None else None
            raise ConnectorError(f"Slack refused the message: {error or f'HTTP {status}'}") from exc
        except (ClientError, TimeoutError) as exc:
            raise ConnectorError(f"Slack could not be reached: {exc!r}") from exc

    async def direct_address(self, identity: ChannelIdentity) -> Address | None:
        """Where a message to this person goes when the business writes
        first: their direct message channel with the app (None if Slack
        will not open one)."""
        return await self.direct_messages.address(identity)


def _bolt_request(raw: bytes, request: web.Request) -> AsyncBoltRequest | None:
    """The verified body as Bolt's request, or None if it is not a Slack payload."""
    try:
        bolt_request = AsyncBoltRequest(
            body=raw.decode("utf-8"),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
    except (UnicodeDecodeError, *_BODY_ERRORS):
        return None
    if not bolt_request.body or not well_formed(bolt_request.body):
        return None
    return bolt_request


def _retry_num(request: AsyncBoltRequest) -> int:
    """Which redelivery this is (0: the first), from `X-Slack-Retry-Num`,
    which Bolt also sets for Socket Mode's retry attempts."""
    values = request.headers.get("x-slack-retry-num") or ["0"]
    return int(values[0]) if values[0].isdigit() else 0


def _status(response: BoltResponse | None) -> str:
    return str(response.status) if response is not None else "nothing"


def web_client(token: str, base_url: str) -> AsyncWebClient:
    """A Web API client that waits out 429s as Slack's Retry-After asks."""
    if not base_url.endswith("/"):
        base_url += "/"
    return AsyncWebClient(
        token=token,
        base_url=base_url,
        retry_handlers=[
            AsyncConnectionErrorRetryHandler(),
            AsyncRateLimitErrorRetryHandler(max_retry_count=RATE_LIMIT_RETRIES),
        ],
    )


def build_slack_connector(
    *, settings: Settings, engine: Engine, store: SlackStore,
    answers: DirectAnswers | None = None,
) -> SlackConnector:
    if settings.slack_bot_token is None:
        raise ConnectorError("the Slack connector needs SEGUE_SLACK_BOT_TOKEN")
    secret, app_token = settings.slack_signing_secret, settings.slack_app_token
    return SlackConnector(
        engine=engine,
        store=store,
        client=web_client(settings.slack_bot_token.get_secret_value(), settings.slack_api_url),
        signing_secret=secret.get_secret_value() if secret is not None else None,
        app_token=app_token.get_secret_value() if app_token is not None else None,
        max_text_length=settings.max_text_length,
        answers=answers,
        pacer=slack_pacer(settings.workers),
    )
