"""The agent console's HTTP surface: `/agent/` (the page), `/agent/api/*`
(JSON, docs/protocol.md "Agent API") and `/agent/ws` (live events).

Every call but login needs a session: the `segue_agent` cookie set by login,
or `Authorization: Bearer <token>`. Refusals are JSON `{"error", "message"}`;
their HTTP status is chosen here and nowhere else.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from aiohttp import web

from bot.core.errors import LockLost, LockTimeout, StoreUnavailable
from bot.core.privacy import export_customer, exportable
from bot.handoff.accounts import AgentAuth, AgentError, NotAuthenticated, TooManyLogins
from bot.handoff.canned import CannedReplies, canned_store
from bot.handoff.desk import HandoffDesk
from bot.handoff.ports import AgentAccount, CannedReply, CannedReplyStore
from bot.handoff.report import handoff_report, report_period
from connectors.agent_hub import AgentHub
from connectors.client_address import client_address, is_https
from connectors.http_errors import json_error

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent.parent / "connectors" / "static" / "agent"
COOKIE = "segue_agent"
STATUS = {
    "bad_json": 400, "bad_fields": 400, "bad_text": 400, "unknown_agent": 400,
    "unauthenticated": 401, "bad_credentials": 401,
    "not_yours": 403, "not_in_queue": 403, "bad_origin": 403, "admins_only": 403,
    "unknown_customer": 404, "not_found": 404,
    "already_claimed": 409, "not_handed_off": 409,
    "too_many_logins": 429, "too_many_notes": 429,
}
# A longer queue is listed only in part (its oldest entries), so one call
# stays a few store round trips and a bounded answer.
QUEUE_LISTING_MAX = 500
TOTAL_HEADER = "X-Total-Count"
# The report reads at most this many closed handoffs, oldest first.
REPORT_RECORDS_MAX = 50_000
_FILES = {"": ("index.html", "text/html"), "app.css": ("app.css", "text/css"),
          **{name: (name, "text/javascript")
             for name in ("app.js", "canned.js", "timeline.js", "report.js", "workspace.js")}}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _problem(code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return json_error(code, message, status=STATUS.get(code, 400), headers=headers)


def _unavailable() -> web.Response:
    return json_error("unavailable", "try again shortly", status=503)


def _json_errors(handler: Handler) -> Handler:
    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except TooManyLogins as exc:
            return _problem(exc.code, exc.message, {"Retry-After": str(exc.retry_after)})
        except AgentError as exc:
            return _problem(exc.code, exc.message)
        except StoreUnavailable:
            return _unavailable()
        except (LockTimeout, LockLost):
            return json_error("busy", "the conversation is busy: try again", status=503)

    return wrapped


def _token_of(request: web.Request) -> tuple[str | None, bool]:
    """The session token, and whether it came from the cookie."""
    auth = request.headers.get("Authorization", "")
    if auth.startswith("Bearer "):
        return auth.removeprefix("Bearer ").strip() or None, False
    return request.cookies.get(COOKIE), True


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        # orjson: strict UTF-8, so a lone surrogate (`"\ud800"`) is bad JSON
        # here rather than a string no password hash or socket can encode.
        data = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        raise AgentError("bad_json", "the body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise AgentError("bad_json", "the body must be a JSON object")
    return data


class AgentApi:
    """Routes of the console, bound to one worker's desk, hub and auth.

    `trusted_proxy_header` names where a reverse proxy writes the client's
    address (and lets `X-Forwarded-Proto` tell HTTPS); `cookie_secure` marks
    the session cookie `Secure` whatever the request looks like. Canned
    replies are kept in `canned`, or else beside the desk's queue index."""

    def __init__(self, *, auth: AgentAuth, desk: HandoffDesk, hub: AgentHub,
                 trusted_proxy_header: str | None = None, cookie_secure: bool = False,
                 canned: CannedReplyStore | None = None) -> None:
        self.auth = auth
        self.desk = desk
        self.hub = hub
        # Replies are checked against the longest text an agent may send.
        self.canned = CannedReplies(canned if canned is not None else canned_store(desk.agents),
                                    max_text_length=desk.options.max_text_length)
        # A customer's whole record, for an admin answering a subject access request.
        self.exports = exportable(desk.store)
        self.trusted_proxy_header = trusted_proxy_header
        self.cookie_secure = cookie_secure

    def mount(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/agent", self.redirect)
        for name in _FILES:
            r.add_get(f"/agent/{name}", self.static)
        r.add_get("/agent/ws", self.websocket)
        r.add_post("/agent/api/login", _json_errors(self.login))
        r.add_post("/agent/api/logout", _json_errors(self.logout))
        r.add_get("/agent/api/me", _json_errors(self.me))
        r.add_get("/agent/api/agents", _json_errors(self.agent_list))
        r.add_get("/agent/api/queue", _json_errors(self.queue))
        r.add_get("/agent/api/claimed", _json_errors(self.claimed))
        base = "/agent/api/conversations/{customer}"
        r.add_get(base, _json_errors(self.conversation))
        r.add_post(f"{base}/claim", _json_errors(self.claim))
        r.add_post(f"{base}/messages", _json_errors(self.message))
        r.add_post(f"{base}/typing", _json_errors(self.typing))
        r.add_post(f"{base}/notes", _json_errors(self.note))
        r.add_post(f"{base}/transfer", _json_errors(self.transfer))
        r.add_post(f"{base}/release", _json_errors(self.release))
        r.add_post(f"{base}/close", _json_errors(self.close))
        r.add_get("/agent/api/customers/{customer}/export", _json_errors(self.export))
        r.add_get("/agent/api/report", _json_errors(self.report))
        r.add_get("/agent/api/canned", _json_errors(self.canned_list))
        r.add_post("/agent/api/canned", _json_errors(self.canned_put))
        r.add_delete("/agent/api/canned", _json_errors(self.canned_delete))
        r.add_delete("/agent/api/canned/{shortcut}", _json_errors(self.canned_delete))
        r.add_route("*", "/agent/api/{tail:.*}", self.not_found)

    async def not_found(self, request: web.Request) -> web.Response:
        return _problem("not_found", "no such call in the agent API")

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPPermanentRedirect("/agent/")

    async def static(self, request: web.Request) -> web.FileResponse:
        name, kind = _FILES[request.path.removeprefix("/agent/")]
        return web.FileResponse(STATIC_DIR / name, headers={
            "Content-Type": f"{kind}; charset=utf-8",
            # The console shows customer text: no inline scripts, no other origins.
            "Content-Security-Policy": "default-src 'self'; connect-src 'self'; "
                                       "frame-ancestors 'none'; base-uri 'none'",
            "X-Content-Type-Options": "nosniff",
        })

    async def _agent(self, request: web.Request) -> AgentAccount:
        token, from_cookie = _token_of(request)
        # A cookie rides along with requests other sites make; a header does not.
        if from_cookie and request.method != "GET" and not _same_origin(request):
            raise AgentError("bad_origin", "requests from other sites are refused")
        return await self.auth.authenticate(token)

    async def login(self, request: web.Request) -> web.Response:
        body = await _body(request)
        username, password = body.get("username"), body.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            raise AgentError("bad_fields", "'username' and 'password' must be strings")
        if not _same_origin(request):
            raise AgentError("bad_origin", "requests from other sites are refused")
        address = client_address(request, self.trusted_proxy_header)
        login = await self.auth.login(username.strip().lower(), password, address=address)
        log.info("agent %s logged in from %s", login.agent.username, address)
        response = web.json_response({"token": login.token, "expires_at": login.expires_at,
                                      "agent": _agent_json(login.agent)})
        response.set_cookie(COOKIE, login.token, path="/agent", httponly=True,
                            samesite="Strict", secure=self._secure_cookie(request),
                            max_age=int(self.auth.options.session_seconds))
        return response

    def _secure_cookie(self, request: web.Request) -> bool:
        """Behind a TLS-terminating proxy the request itself is plain HTTP:
        the setting, or a trusted proxy's word, says the browser used HTTPS.
        Neither: no `Secure`, so plain-HTTP localhost still logs in."""
        return self.cookie_secure or is_https(request, self.trusted_proxy_header)

    async def logout(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        token, _ = _token_of(request)
        assert token is not None
        await self.auth.logout(token)
        await self.hub.end_session(token)
        log.info("agent %s logged out", agent.username)
        response = web.json_response({"ok": True})
        response.del_cookie(COOKIE, path="/agent")
        return response

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response({"agent": _agent_json(await self._agent(request))})

    async def agent_list(self, request: web.Request) -> web.Response:
        await self._agent(request)
        online = await self.desk.agents.agents_online()
        accounts = await self.desk.agents.agents()
        held = Counter((await self.desk.agents.claimed()).values())
        return web.json_response({"agents": [
            {**_agent_json(a), "online": a.username in online,
             "capacity": self.desk.capacity_of(a), "open": held[a.username]}
            for a in accounts]})

    async def queue(self, request: web.Request) -> web.Response:
        await self._agent(request)
        waiting = await self.desk.queue(limit=QUEUE_LISTING_MAX)
        # The listing shows the oldest ones; the header tells how many wait in all.
        total = await self.desk.agents.queue_length()
        return web.json_response(waiting, headers={TOTAL_HEADER: str(total)})

    async def claimed(self, request: web.Request) -> web.Response:
        return web.json_response(await self.desk.claimed(await self._agent(request)))

    async def conversation(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        return web.json_response(await self.desk.view(agent, request.match_info["customer"]))

    async def claim(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        customer = request.match_info["customer"]
        result = await self.desk.claim(agent, customer)
        log.info("agent %s claimed customer %s", agent.username, customer)
        return web.json_response(result)

    async def message(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        body = await _body(request)
        customer = request.match_info["customer"]
        result = await self.desk.reply(agent, customer, body.get("text"))
        log.info("agent %s answered customer %s", agent.username, customer)
        return web.json_response(result)

    async def typing(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        body = await _body(request)
        return web.json_response(
            await self.desk.typing(agent, request.match_info["customer"], body.get("on")))

    async def note(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        body = await _body(request)
        customer = request.match_info["customer"]
        result = await self.desk.note(agent, customer, body.get("text"))
        log.info("agent %s noted on customer %s", agent.username, customer)
        return web.json_response(result)

    async def transfer(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        body = await _body(request)
        customer = request.match_info["customer"]
        result = await self.desk.transfer(agent, customer, body.get("agent"))
        log.info("agent %s handed customer %s to %s", agent.username, customer, body.get("agent"))
        return web.json_response(result)

    async def release(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        customer = request.match_info["customer"]
        result = await self.desk.release(agent, customer)
        log.info("agent %s gave customer %s back to the bot", agent.username, customer)
        return web.json_response(result)

    async def close(self, request: web.Request) -> web.Response:
        agent = await self._agent(request)
        customer = request.match_info["customer"]
        result = await self.desk.close(agent, customer)
        log.info("agent %s closed the conversation of customer %s", agent.username, customer)
        return web.json_response(result)

    async def export(self, request: web.Request) -> web.Response:
        """Everything kept about a customer (`bot.core.privacy`), as
        `segue customers export` prints it. Admins only: it is the whole
        record, identities and addresses included."""
        agent = await self._admin(request, "export a customer's data")
        document = await export_customer(self.exports, request.match_info["customer"],
                                         history_max=self.desk.options.history_max)
        if document is None:
            raise AgentError("unknown_customer", "no such customer")
        log.info("admin %s exported customer %s", agent.username, request.match_info["customer"])
        return web.json_response(document)

    async def _admin(self, request: web.Request, doing: str) -> AgentAccount:
        agent = await self._agent(request)
        if agent.role != "admin":
            raise AgentError("admins_only", f"only an admin may {doing}")
        return agent

    async def report(self, request: web.Request) -> web.Response:
        """Handled conversations, response and resolution times and ratings,
        overall and per agent, for whole UTC days (`bot.handoff.report`)."""
        await self._admin(request, "read the report")
        today = datetime.fromtimestamp(self.desk.clock(), UTC).date()
        first, last, start, end = report_period(request.query, today)
        records = await self.desk.agents.records_between(start, end, REPORT_RECORDS_MAX)
        names = {a.username: a.display_name for a in await self.desk.agents.agents()}
        report = handoff_report(records, names, first, last)
        if len(records) == REPORT_RECORDS_MAX:
            report["truncated"] = True  # a shorter period counts them all
        return web.json_response(report)

    async def canned_list(self, request: web.Request) -> web.Response:
        await self._agent(request)
        replies = await self.canned.listing()
        return web.json_response({"canned": [_canned_json(r) for r in replies]})

    async def canned_put(self, request: web.Request) -> web.Response:
        admin = await self._admin(request, "change canned replies")
        body = await _body(request)
        reply = await self.canned.put(body.get("shortcut"), body.get("text"))
        log.info("admin %s saved canned reply %s", admin.username, reply.shortcut)
        return web.json_response(_canned_json(reply))

    async def canned_delete(self, request: web.Request) -> web.Response:
        admin = await self._admin(request, "change canned replies")
        if "shortcut" in request.match_info:
            shortcut: object = request.match_info["shortcut"]
        else:
            shortcut = (await _body(request)).get("shortcut")
        deleted = await self.canned.delete(shortcut)
        log.info("admin %s deleted canned reply %s", admin.username, deleted)
        return web.json_response({"deleted": deleted})

    async def websocket(self, request: web.Request) -> web.StreamResponse:
        token, _ = _token_of(request)
        if not _same_origin(request):
            return _problem("bad_origin", "connections from other sites are refused")
        try:
            agent = await self.auth.authenticate(token)
        except NotAuthenticated as exc:
            return _problem(exc.code, exc.message)
        except StoreUnavailable:
            return _unavailable()
        assert token is not None
        return await self.hub.serve(request, agent, token)


def _agent_json(agent: AgentAccount) -> dict[str, str]:
    return {"username": agent.username, "name": agent.display_name, "role": agent.role}


def _canned_json(reply: CannedReply) -> dict[str, str]:
    return {"shortcut": reply.shortcut, "text": reply.text}
