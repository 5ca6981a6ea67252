"""The public API under `/api/v1`: the business's own systems find a
customer and reach them first (docs/api.md).

Every call carries `Authorization: Bearer <API key>`; a key's scope says
what it may do (`read` finds customers, `notify` also sends messages and
starts flows, `admin` all of it). Errors are `{"error", "message"}` JSON, as
everywhere in Segue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from bot.core.errors import BadInput, StoreError
from bot.core.model import ChannelIdentity
from bot.core.rate_limits import API_CALLS_PER_KEY, RateLimiter
from bot.outreach.keys import ApiKeys
from bot.outreach.ports import ApiKey
from bot.outreach.reach import CHANNELS, SLACK, WEB
from bot.outreach.request import customer_id_of
from bot.outreach.sending import Outreach, OutreachError
from connectors.http_errors import json_error
from connectors.slack_parse import identity as slack_identity

log = logging.getLogger(__name__)

PREFIX = "/api/v1"
# A web identity the host site signed has the host's user id under this prefix.
SIGNED_WEB_USER = "u:"
STATUS = {"unknown_customer": 404, "unknown_flow": 404, "unreachable": 409,
          "handed_off": 409, "idempotency_key_reused": 409, "too_many_messages": 429}
MAX_BODY = 64 * 1024
Handler = Callable[[web.Request, ApiKey], Awaitable[web.StreamResponse]]


class PublicApi:
    """The routes of `/api/v1`."""

    def __init__(self, *, keys: ApiKeys, outreach: Outreach, limiter: RateLimiter) -> None:
        self.keys = keys
        self.outreach = outreach
        self.limiter = limiter

    def mount(self, app: web.Application) -> None:
        app.router.add_get(f"{PREFIX}/customers", self._guarded("read", self.find))
        app.router.add_get(f"{PREFIX}/customers/{{customer}}",
                           self._guarded("read", self.customer))
        app.router.add_post(f"{PREFIX}/customers/{{customer}}/messages",
                            self._guarded("notify", self.send))
        app.router.add_post(f"{PREFIX}/customers/{{customer}}/flows/{{flow}}",
                            self._guarded("notify", self.start_flow))
        # Every other method and path under the prefix: JSON too, as every answer.
        for path, allowed in ((f"{PREFIX}/customers", "GET"),
                              (f"{PREFIX}/customers/{{customer}}", "GET"),
                              (f"{PREFIX}/customers/{{customer}}/messages", "POST"),
                              (f"{PREFIX}/customers/{{customer}}/flows/{{flow}}", "POST")):
            app.router.add_route("*", path, _only(allowed))
        app.router.add_route("*", PREFIX, _no_such_call)
        app.router.add_route("*", f"{PREFIX}/{{tail:.*}}", _no_such_call)

    def _guarded(self, scope: str, handler: Handler) -> Callable[[web.Request],
                                                                   Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            try:
                key = await self._key_of(request)
                if key is None:
                    return json_error("unauthorized", "a valid API key is needed: "
                                      "'Authorization: Bearer <key>'", status=401,
                                      headers={"WWW-Authenticate": 'Bearer realm="segue"'})
                if not key.allows(scope):
                    return json_error("forbidden", f"the key {key.name!r} has the scope "
                                      f"{key.scope!r}; this call needs {scope!r}", status=403)
                if not await self.limiter.allow(API_CALLS_PER_KEY, key.name):
                    return json_error("rate_limited", "at most 600 calls a minute per key",
                                      status=429, headers={"Retry-After": "60"})
                return await handler(request, key)
            except OutreachError as exc:
                return _refused(exc, exc.details)
            except BadInput as exc:
                return _refused(exc, {})
            except StoreError as exc:
                log.warning("public API call failed on the store: %s", exc)
                return json_error("unavailable", "the store is unavailable; try again",
                                  status=503, headers={"Retry-After": "5"})
        return guarded

    async def _key_of(self, request: web.Request) -> ApiKey | None:
        scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return None
        return await self.keys.verify(secret.strip())

    async def find(self, request: web.Request, key: ApiKey) -> web.Response:
        query = request.query
        external = query.get("external_id")
        channel, user_id = query.get("channel"), query.get("user_id")
        if external is not None and (channel is not None or user_id is not None):
            raise BadInput("bad_query", "ask by external_id, or by channel and user_id")
        if external is not None:
            if not external:
                raise BadInput("bad_query", "'external_id' is empty")
            identity = ChannelIdentity(WEB, SIGNED_WEB_USER + external)
        elif channel in CHANNELS and user_id:
            identity = _identity(channel, user_id, query.get("team_id"))
        else:
            raise BadInput("bad_query", "ask by ?external_id=… or ?channel=web|telegram|slack"
                                        "&user_id=…")
        return web.json_response(await self.outreach.find(identity))

    async def customer(self, request: web.Request, key: ApiKey) -> web.Response:
        customer_id = request.match_info["customer"]
        return web.json_response(await self.outreach.describe(customer_id_of(customer_id)))

    async def send(self, request: web.Request, key: ApiKey) -> web.Response:
        body = await _json(request)
        answer = await self.outreach.send(key.name, request.match_info["customer"], body)
        return web.json_response(answer, status=200 if answer.get("duplicate") else 201)

    async def start_flow(self, request: web.Request, key: ApiKey) -> web.Response:
        body = await _json(request, optional=True)
        answer = await self.outreach.start_flow(key.name, request.match_info["customer"],
                                                request.match_info["flow"], body)
        return web.json_response(answer, status=200 if answer.get("duplicate") else 201)


def _identity(channel: str, user_id: str, team_id: str | None) -> ChannelIdentity:
    if channel != SLACK:
        return ChannelIdentity(channel, user_id)
    if team_id:
        return slack_identity(team_id, user_id)
    if ":" not in user_id:
        raise BadInput("bad_query", "a Slack user is asked for with team_id and user_id "
                                    "(or user_id=TEAM:USER)")
    return ChannelIdentity(SLACK, user_id)


async def _json(request: web.Request, *, optional: bool = False) -> Any:
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise BadInput("too_large", f"the body is larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise BadInput("too_large", f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip() and optional:
        return None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise BadInput("bad_json", "the body is not JSON") from None
    try:
        # JSON may escape lone surrogates ("\ud800"), which no text can hold.
        orjson.dumps(body)
    except TypeError:
        raise BadInput("bad_json", "the body holds a string that is not valid Unicode (a lone "
                                   "surrogate escape)") from None
    return body


def _refused(exc: BadInput, details: dict[str, Any]) -> web.Response:
    body: dict[str, Any] = {"error": exc.code, "message": exc.message, **details}
    # The customer's limit is an hour's window: at worst it opens an hour on.
    headers = {"Retry-After": "3600"} if exc.code == "too_many_messages" else None
    return web.json_response(body, status=STATUS.get(exc.code, 400), headers=headers)


def _only(allowed: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def not_allowed(request: web.Request) -> web.StreamResponse:
        return json_error("method_not_allowed", f"this call takes {allowed} only", status=405,
                          headers={"Allow": allowed})
    return not_allowed


async def _no_such_call(request: web.Request) -> web.StreamResponse:
    return json_error("not_found", "no such call of the public API (docs/api.md lists them)",
                      status=404)
