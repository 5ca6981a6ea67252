"""The HTTP server: Segue's app behind deadlines for slow clients and a cap on
connections per client address.

aiohttp alone waits as long as a client likes for headers and bodies, so
connections that dribble bytes, or send none, pile up until file descriptors
run out. Here a request's headers must be complete within the header deadline
(from the connection, or from the next request's first byte), its body within
the body deadline (from the end of its headers: a handler still reading gets
a 408), idle keep-alive connections close after aiohttp's keep-alive timeout,
and each peer address may hold only so many connections open. A WebSocket is
one request whose handler runs for the whole session: once upgraded, no
deadline reaches it.

On shutdown (`GuardedRunner.stop_listening`, then `requests_finished`) the
listening sockets close first, idle keep-alive connections close, and the
requests being handled (WebSockets aside: their connectors close them) are
given until a deadline to finish.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web
from aiohttp.streams import StreamReader

from bot.core import metrics
from bot.core.errors import ConfigError
from bot.core.settings import Settings

# Written raw: no request was parsed, so aiohttp has nothing to answer.
REQUEST_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"

RequestFactory = Callable[..., web.BaseRequest]


@dataclass(frozen=True, slots=True)
class HttpLimits:
    header_timeout: float
    body_timeout: float
    keepalive_timeout: float
    # None: no cap (limits off, or a proxy that every connection comes from).
    max_connections_per_address: int | None


def limits_from(settings: Settings) -> HttpLimits:
    # Behind a proxy all connections share its address: the proxy caps them.
    capped = settings.rate_limits == "on" and not settings.trusted_proxy_header
    return HttpLimits(
        header_timeout=settings.http_header_timeout_seconds,
        body_timeout=settings.http_body_timeout_seconds,
        keepalive_timeout=settings.http_keepalive_timeout_seconds,
        max_connections_per_address=settings.max_connections_per_address if capped else None,
    )


class ConnectionCounter(Protocol):
    """Admits a connection from a peer address while that address holds fewer
    than the cap, and counts it until it is released."""

    def admit(self, address: str) -> bool: ...

    def release(self, address: str) -> None: ...


class AddressCounter:
    """Open connections per peer address in this process; an address leaves
    when it reaches 0, so the map holds only addresses with open connections.
    Workers sharing a port count in shared memory instead
    (`bot.assembly.address_table`)."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.open: dict[str, int] = {}

    def admit(self, address: str) -> bool:
        count = self.open.get(address, 0)
        if self.limit is not None and count >= self.limit:
            return False
        self.open[address] = count + 1
        return True

    def release(self, address: str) -> None:
        count = self.open.get(address, 0) - 1
        if count > 0:
            self.open[address] = count
        else:
            self.open.pop(address, None)


class GuardedHandler(web.RequestHandler):
    """aiohttp's connection protocol with header and body deadlines and a
    connection count per peer address."""

    __slots__ = ("_limits", "_counter", "_address", "_handling", "_next_started",
                 "_header_timer", "_body", "_body_timer", "_body_timed_out", "_server")

    def __init__(self, manager: GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._limits = manager.limits
        self._counter = manager.counter
        self._address: str | None = None
        self._handling = False
        self._next_started = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_timed_out = False
        self._server = manager

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if isinstance(peer, tuple) else None
        if address is not None and not self._counter.admit(address):
            metrics.rate_limited("connections-addr").inc()
            self.force_close()
            return
        self._address = address
        self._arm_header_deadline()

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        self._server.request_ended(self)
        self._cancel_header_deadline()
        self._cancel_body_deadline()
        if self._address is not None:
            self._counter.release(self._address)
            self._address = None

    def data_received(self, data: bytes) -> None:
        # Bytes after a response belong to the next request, unless they are
        # the rest of a body the handler left unread.
        next_request = not self._handling and (self._body is None or self._body.is_eof())
        super().data_received(data)
        if next_request and data and self.transport is not None:
            self._next_started = True
            if self._header_timer is None:
                self._arm_header_deadline()

    def request_started(self, body: StreamReader, *, upgrade: bool = False) -> None:
        """Headers are complete: the header deadline ends, the body's begins.
        A request that is not a WebSocket handshake is in flight until its
        response is out."""
        self._handling = True
        if not upgrade:
            self._server.request_began(self)
        self._next_started = False
        self._cancel_header_deadline()
        self._cancel_body_deadline()
        self._body = body
        if not body.is_eof():
            self._body_timer = asyncio.get_running_loop().call_later(
                self._limits.body_timeout, self._body_late, body)
            body.on_eof(self._cancel_body_deadline)

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        self._handling = False
        self._server.request_ended(self)
        if self._body_timed_out:
            self.force_close()
        return result

    def _arm_header_deadline(self) -> None:
        self._header_timer = asyncio.get_running_loop().call_later(
            self._limits.header_timeout, self._headers_late)

    def _cancel_header_deadline(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _cancel_body_deadline(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _headers_late(self) -> None:
        self._header_timer = None
        if self._handling or self.transport is None:
            return
        # A connection that never started a request is just closed, as idle.
        if self._next_started:
            self.transport.write(REQUEST_TIMEOUT)
        self.force_close()

    def _body_late(self, body: StreamReader) -> None:
        self._body_timer = None
        if body.is_eof() or self.transport is None:
            return
        if not self._handling:
            # The response is out; this is the rest of an unread body.
            self.force_close()
            return
        # The handler's read raises it, so the client gets a 408; the
        # connection closes once that response is written.
        self._body_timed_out = True
        timeout = web.HTTPRequestTimeout(text="the request body did not arrive in time")
        timeout.force_close()
        body.set_exception(timeout)


class GuardedServer(web.Server):
    """The protocol factory of a listening socket: makes `GuardedHandler`s."""

    def __init__(self, plain: web.Server, limits: HttpLimits,
                 counter: ConnectionCounter | None = None) -> None:
        self.limits = limits
        self.counter: ConnectionCounter = (
            counter if counter is not None else AddressCounter(limits.max_connections_per_address))
        self._handler_kwargs: dict[str, Any] = {
            "keepalive_timeout": limits.keepalive_timeout,
            "access_log": None,
        }
        # Requests being handled, WebSocket sessions aside; `_idle` is set
        # while there are none.
        self._in_flight: set[GuardedHandler] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        super().__init__(plain.request_handler,
                         request_factory=_telling_start(plain.request_factory),
                         handler_cancellation=plain.handler_cancellation,
                         **self._handler_kwargs)

    def __call__(self) -> web.RequestHandler:
        return GuardedHandler(self, loop=asyncio.get_running_loop(), **self._handler_kwargs)

    def request_began(self, handler: GuardedHandler) -> None:
        self._in_flight.add(handler)
        self._idle.clear()

    def request_ended(self, handler: GuardedHandler) -> None:
        self._in_flight.discard(handler)
        if not self._in_flight:
            self._idle.set()

    async def requests_finished(self, timeout: float) -> tuple[int, int]:
        """Wait up to `timeout` seconds for the requests being handled now
        (not WebSocket sessions) to be answered: (how many were, how many
        are still running). Call it once nothing listens any more, so that
        no request starts meanwhile but on a connection already open."""
        waiting = len(self._in_flight)
        try:
            await asyncio.wait_for(self._idle.wait(), max(timeout, 0.0))
        except TimeoutError:
            pass
        left = len(self._in_flight)
        return max(waiting - left, 0), left


def _telling_start(factory: RequestFactory) -> RequestFactory:
    """aiohttp makes each request object once its headers are parsed: the
    moment a request starts, which the protocol has no public hook for."""

    def make(message: Any, payload: StreamReader, protocol: web.RequestHandler,
             *rest: Any) -> web.BaseRequest:
        if isinstance(protocol, GuardedHandler):
            protocol.request_started(payload, upgrade=bool(getattr(message, "upgrade", False)))
        return factory(message, payload, protocol, *rest)

    return make


class GuardedRunner(web.AppRunner):
    """An AppRunner whose server makes `GuardedHandler`s. `shutdown_timeout`
    is how long `cleanup` still lets a request run before cancelling it (a
    caller that drained first with `requests_finished` gives little)."""

    def __init__(self, app: web.Application, limits: HttpLimits,
                 counter: ConnectionCounter | None = None, *,
                 shutdown_timeout: float = 60.0) -> None:
        super().__init__(app, handle_signals=False, access_log=None,
                         shutdown_timeout=shutdown_timeout)
        self.limits = limits
        self.counter = counter

    async def stop_listening(self) -> None:
        """Close the listening sockets (a new connection is refused, or goes
        to another worker on the port), and every open connection once its
        request in flight is answered; idle ones close at once."""
        for site in list(self.sites):
            await site.stop()
        if self.server is not None:
            # Lets the requests already read reach their handlers first, as
            # aiohttp's own cleanup does.
            await asyncio.sleep(0)
            self.server.pre_shutdown()

    async def requests_finished(self, timeout: float) -> tuple[int, int]:
        """See `GuardedServer.requests_finished`."""
        if not isinstance(self.server, GuardedServer):
            return 0, 0
        return await self.server.requests_finished(timeout)

    async def _make_server(self) -> web.Server:
        # aiohttp has no public way to choose the protocol class: its runner
        # builds the server here (app start-up included), and we wrap it.
        # `start_http_server` refuses to serve if aiohttp stops calling this.
        return GuardedServer(await super()._make_server(), self.limits, self.counter)


async def start_http_server(
    app: web.Application, settings: Settings, host: str, port: int, *,
    counter: ConnectionCounter | None = None, reuse_port: bool = False,
    shutdown_timeout: float = 60.0,
) -> GuardedRunner:
    """Start serving `app` on host:port with the limits from `settings`; the
    caller stops it with `runner.cleanup()`. Workers sharing the port listen
    with `reuse_port` (the kernel spreads connections over them) and count
    connections per address in a `counter` they share."""
    runner = GuardedRunner(app, limits_from(settings), counter,
                           shutdown_timeout=shutdown_timeout)
    try:
        await runner.setup()  # starts the connectors (`on_startup`)
    except BaseException:
        # Those already started stop, and every client closes (aiohttp
        # runs `on_cleanup` only for an app that started: frozen).
        runner.app.freeze()
        await runner.app.cleanup()
        raise
    if not isinstance(runner.server, GuardedServer):
        await runner.cleanup()
        raise RuntimeError("aiohttp no longer builds its server in AppRunner._make_server: "
                           "slow-client protection would be off")
    try:
        await web.TCPSite(runner, host, port, reuse_port=reuse_port or None).start()
    except OSError as exc:
        await runner.cleanup()
        reason = exc.strerror or str(exc)
        raise ConfigError(f"cannot listen on {host}:{port}: {reason} (another process may "
                          f"hold the port: stop it, or choose another with --port)") from None
    return runner
