"""``/metrics``, ``/healthz`` and ``/readyz`` served inside the event loop.

aiohttp parses HTTP; this module owns the sockets around it, because aiohttp's server has no
timeout for reading a request's headers (its keep-alive timer is one clock for both "idle" and
"sending headers"), no connection cap, and asyncio's own accept loop logs a traceback for every
failed ``accept()``. So:

- **One accept loop per listening socket** (``loop.sock_accept``). An ``accept()`` error such as
  ``EMFILE`` is logged once per burst (``http_accept_failed``, then ``http_accept_recovered``
  with the count), counted, and retried every 0.5 s; connections wait in the backlog meanwhile.
- **A connection cap** (``exporter.max_connections``, TLS handshakes in progress included). At
  it, a new connection evicts the oldest open connection that is not in a request (still sending
  its headers, or idle between requests), else the oldest TLS handshake in progress; when every
  connection is in a request, the new one gets a minimal ``503`` (plain HTTP; a TLS connection is
  closed without a handshake) and is closed.
  ``http_connection_cap_reached`` is logged once when the cap is hit and
  ``http_connection_cap_cleared`` once when open connections fall to 90% of it.
- **A header timeout** (``exporter.header_timeout``): a new connection, and a kept-alive one from
  the first byte of its next request, must deliver the request line and headers within it, or it
  is aborted. A TLS handshake must also finish within it.
- **An idle timeout** (``exporter.idle_timeout``): a kept-alive connection with no request for
  that long is closed (aborted if a response is still unread in its buffer).
- **TLS and basic auth** from the web config file (``monitor/webconfig.py``). ``/healthz`` answers
  without credentials (it says only "ok"); every other path needs them when users are configured.

Counters are exported from the daemon's registry by ``HttpCollector`` (``support_monitor_http_*``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hashlib
import logging
import socket
import ssl
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

import bcrypt
import structlog
from aiohttp import web
from prometheus_client.core import Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector, CollectorRegistry

from support_monitor.monitor import catalogue
from support_monitor.monitor.config import ExporterSettings
from support_monitor.monitor.errors import SupportMonitorError
from support_monitor.monitor.exporter import render
from support_monitor.monitor.logs import Throttle
from support_monitor.monitor.webconfig import (
    WebConfig,
    WebConfigError,
    load_web_config,
    split_listen,
)

__all__ = [
    "HttpCollector",
    "HttpStats",
    "ListenError",
    "MetricsServer",
    "WebConfigError",
    "load_web_config",
    "split_listen",
]

ACCEPT_RETRY_SECONDS = 0.5
"""After a failed ``accept()`` (e.g. ``EMFILE``), the loop waits this long before trying again."""
LOG_INTERVAL_SECONDS = 60.0
"""Repeated warnings of one kind (handler errors, aiohttp's own) are logged at most this often."""
AUTH_CACHE_SIZE = 64
"""Successful (user, password) checks remembered, so a scrape every 5 s costs no bcrypt run."""
AUTH_CONCURRENCY = 2
"""bcrypt checks running at once in worker threads; more wait, at most ``AUTH_QUEUE``."""
AUTH_QUEUE = 16
"""Credentials waiting for a bcrypt check at most; past it a request is refused at once (401).
A flood of distinct wrong passwords would otherwise hold every connection of the cap in a
request (never evicted) and lock out scrapes whose credentials are remembered."""
SHUTDOWN_SECONDS = 2.0
"""On exit, requests in flight get this long to finish; then every connection is aborted."""
BACKLOG = 128
_DUMMY_HASH = b"$2b$10$ukWDH98tvpz0ypVqoAOl/exL5JUMswEJ68jvdKY0UlmwKnDNU6sby"
"""Checked for an unknown user when no user is configured (see ``_BasicAuth``)."""
_REFUSAL = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 21\r\n"
    b"Retry-After: 1\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"too many connections\n"
)
_ROUTES = ("/metrics", "/healthz", "/readyz")


def gzip_accepted(accept_encoding: str) -> bool:
    """Whether an ``Accept-Encoding`` value accepts gzip: ``gzip`` (or ``*``, when gzip is not
    named) with a quality above 0. ``gzip;q=0`` refuses it."""
    qualities: dict[str, float] = {}
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        qualities[coding.strip().lower()] = quality
    quality = qualities.get("gzip", qualities.get("*", 0.0))
    return quality > 0


class Mounted(Protocol):
    """Extra routes on the listener (the console, ``monitor.console.Console``): served after
    the basic-auth check, any method; ``owns`` says which paths are theirs, ``refusals`` how
    many requests they refused for their credentials, by reason (read at scrape time)."""

    def owns(self, path: str) -> bool: ...
    async def handle(self, request: web.BaseRequest) -> web.Response: ...
    def refusals(self) -> Mapping[str, int]: ...


class ListenError(SupportMonitorError):
    """The listener cannot bind; the message names the key (or ``--listen``) and the problem."""


@dataclass(slots=True)
class HttpStats:
    """What the listener did; read at scrape time by ``HttpCollector``."""

    open: int = 0
    refused: int = 0
    """Connections answered 503 (or closed, on TLS): ``max_connections`` open, all busy."""
    evicted: int = 0
    """Waiting connections closed at the cap to make room for a new one."""
    timed_out: Counter[str] = field(default_factory=Counter)
    """reason (``header_timeout``, ``idle_timeout``) -> connections closed."""
    accept_errors: int = 0
    tls_handshake_failures: int = 0
    unauthorized: int = 0


class HttpCollector(Collector):
    """``support_monitor_http_*``: the listener's connections, refusals and timeouts."""

    def __init__(self, stats: HttpStats, mounted: Mounted | None = None) -> None:
        self._stats = stats
        self._mounted = mounted

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        refused = catalogue.counter("support_monitor_console_requests_refused_total")
        if self._mounted is not None:  # no console: the family with no series
            for reason, count in sorted(self._mounted.refusals().items()):
                refused.add_metric([reason], count)
        yield refused
        yield catalogue.gauge("support_monitor_http_connections_open", stats.open)
        yield catalogue.counter("support_monitor_http_connections_refused_total", stats.refused)
        yield catalogue.counter("support_monitor_http_connections_evicted_total", stats.evicted)
        timed_out = catalogue.counter("support_monitor_http_connections_timed_out_total")
        for reason in ("header_timeout", "idle_timeout"):
            timed_out.add_metric([reason], stats.timed_out[reason])
        yield timed_out
        yield catalogue.counter("support_monitor_http_accept_errors_total", stats.accept_errors)
        yield catalogue.counter(
            "support_monitor_http_tls_handshake_failures_total", stats.tls_handshake_failures
        )
        yield catalogue.counter(
            "support_monitor_http_requests_unauthorized_total", stats.unauthorized
        )


class _ToStructlog(logging.Handler):
    """aiohttp's own warnings and errors, as one throttled ``http_server_error`` line each."""

    def __init__(self, throttle: Throttle) -> None:
        super().__init__(logging.WARNING)
        self._throttle = throttle

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        self._throttle(
            "http_server_error",
            message=record.getMessage()[:200],
            error=None if error is None else type(error).__name__,
        )


class _BasicAuth:
    """bcrypt checks of ``Authorization: Basic``. An unknown user is checked against a
    configured user's hash (the same bcrypt cost, so a wrong user name takes as long as a wrong
    password; the answer is no whatever it gives). The outcome of a check is remembered per
    (user, password, hash), right ones and wrong ones (at most ``AUTH_CACHE_SIZE`` each), so
    a flood repeating wrong credentials costs one bcrypt run, not one per request; a flood of
    distinct ones waits ``AUTH_QUEUE`` deep at most, the rest is refused unchecked."""

    def __init__(self, users: dict[bytes, bytes]) -> None:
        self._users = users
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._refused: OrderedDict[bytes, None] = OrderedDict()
        self._checks = asyncio.Semaphore(AUTH_CONCURRENCY)
        self._queued = 0
        self._dummy = next(iter(users.values()), _DUMMY_HASH)

    async def allows(self, header: str | None) -> bool:
        credentials = _basic_credentials(header)
        if credentials is None:
            return False
        user, password = credentials
        hashed = self._users.get(user)
        key = hashlib.sha256(b"\0".join((user, password, hashed or b""))).digest()
        if hashed is not None and key in self._cache:
            self._cache.move_to_end(key)
            return True
        if key in self._refused:
            self._refused.move_to_end(key)
            return False
        if self._queued >= AUTH_CONCURRENCY + AUTH_QUEUE:
            return False  # a flood of new credentials: refused unchecked, nothing remembered
        self._queued += 1
        try:
            async with self._checks:
                matches = await asyncio.to_thread(_checkpw, password, hashed or self._dummy)
        finally:
            self._queued -= 1
        allowed = matches and hashed is not None
        remembered = self._cache if allowed else self._refused
        remembered[key] = None
        if len(remembered) > AUTH_CACHE_SIZE:
            remembered.popitem(last=False)
        return allowed


def _not_served(path: str) -> web.Response:
    """A method other than GET and HEAD on the listener's own paths (405) or elsewhere (404)."""
    if path not in _ROUTES:
        return web.Response(status=404, text="not found\n")
    return web.Response(status=405, text="method not allowed\n", headers={"Allow": "GET, HEAD"})


BCRYPT_KEY_BYTES = 72
"""bcrypt reads this many bytes of a password; htpasswd and Go's bcrypt (node_exporter's web
config) ignore the rest, so a hash they made of a longer password matches its first 72."""


def _checkpw(password: bytes, hashed: bytes) -> bool:
    try:
        # bcrypt 5 refuses a longer password instead of reading its first 72 bytes as they do
        return bcrypt.checkpw(password[:BCRYPT_KEY_BYTES], hashed)
    except ValueError:  # a malformed hash
        return False


def _encoder_for(accept: str) -> tuple[Callable[[Collector], bytes], str]:
    """The exposition format an ``Accept`` header asks for; the text format when the header
    does not read (prometheus_client raises on ``version=abc``)."""
    try:
        return choose_encoder(accept)
    except (TypeError, ValueError):
        return choose_encoder("")


def _basic_credentials(header: str | None) -> tuple[bytes, bytes] | None:
    if header is None:
        return None
    scheme, _, encoded = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, sep, password = decoded.partition(b":")
    return (user, password) if sep else None


class _PlainErrors(web.RequestHandler):
    """aiohttp's protocol for one connection, whose error answers quote nothing of the
    request: its parser's text cites the offending header line, credentials included, and
    would be sent back as the body of the 400."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status != HTTPStatus.INTERNAL_SERVER_ERROR:  # aiohttp's own 500 text quotes nothing
            try:
                message = f"{status} {HTTPStatus(status).phrase}"
            except ValueError:
                message = str(status)
        return super().handle_error(request, status, exc, message)


class _State(Enum):
    HEADERS = "headers"
    BUSY = "busy"
    IDLE = "idle"
    EVICTED = "evicted"


class _Connection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with the header and idle clocks around it."""

    def __init__(self, server: MetricsServer, inner: asyncio.Protocol) -> None:
        self._server = server
        self._inner = inner
        self._loop = asyncio.get_running_loop()
        self._state = _State.HEADERS
        self._timer: asyncio.TimerHandle | None = None
        self._bytes_while_busy = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self._server.opened(self, transport)
        self._arm(_State.HEADERS)
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self._state is _State.IDLE:
            self._arm(_State.HEADERS)
        elif self._state is _State.BUSY:
            self._bytes_while_busy += len(data)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        transport, self.transport = self.transport, None
        if transport is not None:
            self._server.closed(self, transport)
        self._inner.connection_lost(exc)

    @property
    def waiting(self) -> bool:
        """No request in progress: sending headers (or nothing yet), or kept alive and idle."""
        return self.transport is not None and self._state in {_State.HEADERS, _State.IDLE}

    def evict(self) -> None:
        self._cancel()
        self._state = _State.EVICTED
        if self.transport is not None:
            self.transport.abort()

    def request_started(self) -> None:
        self._cancel()
        self._state = _State.BUSY
        self._bytes_while_busy = 0

    def request_finished(self, body_bytes: int) -> None:
        """``body_bytes``: the request's declared body length. Bytes beyond it that came during
        the request are the start of the next one (pipelined or slow): they get the header
        clock; a body that came after its headers is this request's, and the idle clock runs."""
        next_request = self._bytes_while_busy > body_bytes
        self._arm(_State.HEADERS if next_request else _State.IDLE)

    def _arm(self, state: _State) -> None:
        if self._state is _State.EVICTED:
            return
        self._cancel()
        self._state = state
        settings = self._server.settings
        if state is _State.HEADERS:
            self._timer = self._loop.call_later(settings.header_timeout, self._expire)
        else:
            self._timer = self._loop.call_later(settings.idle_timeout, self._expire)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _expire(self) -> None:
        self._timer = None
        transport = self.transport
        if transport is None:
            return
        if self._state is _State.HEADERS:
            self._server.stats.timed_out["header_timeout"] += 1
            transport.abort()
        else:
            self._server.stats.timed_out["idle_timeout"] += 1
            if transport.get_write_buffer_size() > 0:  # a client that stopped reading
                transport.abort()
            else:
                transport.close()


class MetricsServer:
    """An async context manager; ``port`` is the bound port (useful with port 0 in tests).

    ``not_ready_reason`` (optional) says why ``/readyz`` answers 503, in its body.
    ``exporter`` gives the limits, timeouts and web config file (defaults without it);
    ``listen_key`` is the name errors use for the address (``exporter.listen`` or ``--listen``).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        listen: str,
        ready: Callable[[], bool],
        not_ready_reason: Callable[[], str | None] | None = None,
        *,
        exporter: ExporterSettings | None = None,
        listen_key: str = "exporter.listen",
        mounted: Mounted | None = None,
    ) -> None:
        self._registry = registry
        self._listen_key = listen_key
        try:
            self._host, self._port = split_listen(listen)
        except ValueError as exc:
            raise ListenError(f"{listen_key}: {exc}") from None
        self._ready = ready
        self._not_ready_reason = not_ready_reason
        self._mounted = mounted
        self.settings = exporter if exporter is not None else ExporterSettings()
        self._web_config = self._load_web_config(self.settings.web_config_file)
        self._ssl = self._web_config.ssl_context()
        self._headers = dict(self._web_config.http_server_config.headers)
        self.stats = HttpStats()
        self._collector = HttpCollector(self.stats, mounted)
        self._log = structlog.get_logger("support_monitor.http")
        self._throttle = Throttle(self._log, LOG_INTERVAL_SECONDS)
        # A logger of this server only (not in logging's global tree): aiohttp's warnings go
        # to the throttled structlog line instead of a traceback each on stderr.
        self._aiohttp_log = logging.Logger(  # noqa: LOG001 - deliberately not global
            "support_monitor.http.aiohttp", logging.WARNING
        )
        self._aiohttp_log.propagate = False
        self._aiohttp_log.addHandler(_ToStructlog(self._throttle))
        self._auth: _BasicAuth | None = None
        self._web: web.Server | None = None
        self._keepalive = 0.0
        """aiohttp's keep-alive timeout, for ``web.Server`` and each ``_PlainErrors``."""
        self._listeners: list[socket.socket] = []
        self._accepting: list[asyncio.Task[None]] = []
        self._handshakes: dict[asyncio.Task[None], None] = {}
        """TLS handshakes in progress, oldest first (evictable like a connection waiting)."""
        self._pending = 0
        self._open: dict[asyncio.Transport, _Connection] = {}
        self._capped = False
        self._refused_in_episode = 0
        self._evicted_in_episode = 0
        self._accept_failures = 0
        self._accept_failing_since = 0.0
        self.port = 0

    @staticmethod
    def _load_web_config(path: Path | None) -> WebConfig:
        if path is None:
            return WebConfig()
        try:
            return load_web_config(path)
        except WebConfigError as exc:
            raise WebConfigError(f"exporter.web_config_file: {exc}") from None

    @property
    def tls(self) -> bool:
        return self._ssl is not None

    async def __aenter__(self) -> Self:
        users = self._web_config.users()
        self._auth = _BasicAuth(users) if users else None
        # aiohttp's keep-alive timer is a backstop only: ours close first.
        backstop = self.settings.idle_timeout + self.settings.header_timeout + 1.0
        self._keepalive = backstop
        self._web = web.Server(
            self._handle, access_log=None, keepalive_timeout=backstop, logger=self._aiohttp_log
        )
        self._listeners = await self._bind()
        self.port = self._listeners[0].getsockname()[1]
        self._registry.register(self._collector)
        for index, listener in enumerate(self._listeners):
            self._accepting.append(
                asyncio.create_task(self._accept_forever(listener), name=f"http:accept:{index}")
            )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        tasks = [*self._accepting, *self._handshakes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for listener in self._listeners:
            listener.close()
        if self._web is not None:
            self._web.pre_shutdown()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._web.shutdown(SHUTDOWN_SECONDS), SHUTDOWN_SECONDS + 1)
        for transport in list(self._open):
            transport.abort()
        self._registry.unregister(self._collector)

    async def _bind(self) -> list[socket.socket]:
        loop = asyncio.get_running_loop()
        where = f"{self._host}:{self._port}"
        try:
            infos = await loop.getaddrinfo(
                self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )
        except socket.gaierror as exc:
            raise ListenError(
                f"{self._listen_key}: cannot resolve the host of {where}: {exc.strerror}"
            ) from None
        listeners: list[socket.socket] = []
        seen: set[tuple[int, object]] = set()
        try:
            for family, kind, proto, _, address in infos:
                if (family, address[0]) in seen:
                    continue
                seen.add((family, address[0]))
                sock = socket.socket(family, kind, proto)
                listeners.append(sock)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:  # as asyncio does: one socket per family
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(address)
                sock.listen(BACKLOG)
                sock.settimeout(0.0)  # non-blocking
        except OSError as exc:
            for sock in listeners:
                sock.close()
            problem = (exc.strerror or str(exc)).lower()
            raise ListenError(f"{self._listen_key}: cannot listen on {where}: {problem}") from None
        return listeners

    # -- connections -------------------------------------------------------------------------

    def _occupied(self) -> int:
        return len(self._open) + self._pending

    def opened(self, connection: _Connection, transport: asyncio.Transport) -> None:
        self._open[transport] = connection
        self.stats.open = self._occupied()

    def closed(self, connection: _Connection, transport: asyncio.Transport) -> None:
        if self._open.get(transport) is connection:
            del self._open[transport]
        self._update_open()

    def _update_open(self) -> None:
        self.stats.open = self._occupied()
        cap = self.settings.max_connections
        if self._capped and self.stats.open <= cap - max(1, cap // 10):
            self._capped = False
            self._log.info(
                "http_connection_cap_cleared",
                open=self.stats.open,
                max_connections=cap,
                refused=self._refused_in_episode,
                evicted=self._evicted_in_episode,
            )
            self._refused_in_episode = 0
            self._evicted_in_episode = 0

    def _new_connection(self) -> _Connection:
        assert self._web is not None
        handler = _PlainErrors(
            self._web,
            loop=asyncio.get_running_loop(),
            access_log=None,  # type: ignore[arg-type]  # None: no access log (typed Logger only)
            keepalive_timeout=self._keepalive,
            logger=self._aiohttp_log,
        )
        return _Connection(self, handler)

    async def _accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, _ = await loop.sock_accept(listener)
            except OSError as exc:
                self._accept_failed(exc)
                await asyncio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            if self._accept_failures:
                self._log.info(
                    "http_accept_recovered",
                    failures=self._accept_failures,
                    seconds=round(time.monotonic() - self._accept_failing_since, 3),
                )
                self._accept_failures = 0
            try:
                await self._admit(conn)
            except Exception as exc:  # noqa: BLE001 - one connection must not end the listener
                conn.close()
                self._throttle("http_connection_failed", error=type(exc).__name__)

    def _accept_failed(self, exc: OSError) -> None:
        self.stats.accept_errors += 1
        if not self._accept_failures:
            self._accept_failing_since = time.monotonic()
            self._log.error(
                "http_accept_failed",
                error=exc.strerror or type(exc).__name__,
                retry_in=ACCEPT_RETRY_SECONDS,
            )
        self._accept_failures += 1

    async def _admit(self, conn: socket.socket) -> None:
        if self._occupied() >= self.settings.max_connections:
            self._cap_hit()
            # Room is made by closing the oldest connection that is not in a request (one that
            # has not sent its headers yet, or an idle kept-alive one): a client that holds
            # connections open cannot lock out a scrape or a probe. Only when every connection
            # is in a request is the new one refused.
            victim = next((c for c in self._open.values() if c.waiting), None)
            if victim is not None:
                victim.evict()
            elif self._handshakes:  # a handshake in progress has sent no request either
                next(iter(self._handshakes)).cancel()  # the oldest; _handshake closes it
            else:
                self._refuse(conn)
                return
            self.stats.evicted += 1
            self._evicted_in_episode += 1
        conn.settimeout(0.0)  # non-blocking
        loop = asyncio.get_running_loop()
        if self._ssl is None:
            await loop.connect_accepted_socket(self._new_connection, conn)
            return
        # The handshake runs beside the accept loop, so a slow client cannot stall it.
        self._pending += 1
        self.stats.open = self._occupied()
        task = asyncio.create_task(self._handshake(conn), name="http:tls-handshake")
        self._handshakes[task] = None
        task.add_done_callback(self._end_handshake)

    async def _handshake(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        timeout = self.settings.header_timeout
        try:
            await loop.connect_accepted_socket(
                self._new_connection,
                conn,
                ssl=self._ssl,
                ssl_handshake_timeout=timeout,
                ssl_shutdown_timeout=timeout,
            )
        except (OSError, ssl.SSLError, TimeoutError):
            self.stats.tls_handshake_failures += 1
            conn.close()
        except asyncio.CancelledError:  # evicted at the cap (or the listener stops)
            conn.close()
            raise
        finally:
            self._pending -= 1
            self._update_open()

    def _end_handshake(self, task: asyncio.Task[None]) -> None:
        self._handshakes.pop(task, None)

    def _cap_hit(self) -> None:
        if not self._capped:
            self._capped = True
            self._log.warning(
                "http_connection_cap_reached", max_connections=self.settings.max_connections
            )

    def _refuse(self, conn: socket.socket) -> None:
        self.stats.refused += 1
        self._refused_in_episode += 1
        try:
            conn.settimeout(0.0)  # non-blocking
            if self._ssl is None:
                conn.send(_REFUSAL)
                conn.shutdown(socket.SHUT_WR)
                # Read what the client already sent, so closing does not reset the connection
                # before it reads the 503.
                for _ in range(4):
                    if not conn.recv(65536):
                        break
        except OSError:
            pass
        finally:
            conn.close()

    # -- requests ----------------------------------------------------------------------------

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        transport = request.transport
        connection = None if transport is None else self._open.get(transport)
        if connection is not None:
            connection.request_started()
        try:
            response = await self._respond(request)
        except ConnectionError as exc:  # the client went away while its body was read
            self._log.debug("http_client_gone", path=request.path, error=type(exc).__name__)
            response = web.Response(status=400, text="connection lost\n")
        except Exception as exc:  # noqa: BLE001 - a failed scrape is a 500, not a dead listener
            self._throttle("http_handler_failed", path=request.path, error=type(exc).__name__)
            response = web.Response(status=500, text="internal error\n")
        finally:
            if connection is not None:
                connection.request_finished(request.content_length or 0)
        response.headers.update(self._headers)
        return response

    async def _respond(self, request: web.BaseRequest) -> web.Response:  # noqa: PLR0911 - a route each
        mounted = self._mounted
        if mounted is not None and not mounted.owns(request.path):
            mounted = None
        if mounted is None and request.method not in {"GET", "HEAD"}:
            return _not_served(request.path)
        path = request.path
        if path == "/healthz":  # no credentials needed: it says only "ok"
            return web.Response(text="ok\n")
        if self._auth is not None and not await self._auth.allows(
            request.headers.get("Authorization")
        ):
            self.stats.unauthorized += 1
            return web.Response(
                status=401,
                text="unauthorized\n",
                headers={"WWW-Authenticate": 'Basic realm="support-monitor"'},
            )
        if mounted is not None:
            return await mounted.handle(request)
        if path == "/metrics":
            encoder, content_type = _encoder_for(request.headers.get("Accept", ""))
            body = render(self._registry, encoder)
            response = web.Response(
                body=body, headers={"Content-Type": content_type, "Vary": "Accept, Accept-Encoding"}
            )
            if gzip_accepted(request.headers.get("Accept-Encoding", "")):
                # aiohttp compresses a body over 4 KiB in a worker thread, off the loop.
                response.enable_compression(web.ContentCoding.gzip)
            return response
        if path == "/readyz":
            if self._ready():
                return web.Response(text="ready\n")
            why = None if self._not_ready_reason is None else self._not_ready_reason()
            return web.Response(status=503, text=f"not ready: {why}\n" if why else "not ready\n")
        return web.Response(status=404, text=f"not found; try {', '.join(_ROUTES)}\n")
