"""The console's routes on the daemon's listener (``monitor/http.py`` calls ``Console.handle``
after its basic-auth check, so TLS, basic auth, the timeouts and the connection cap apply).

Read (GET): ``/`` the status page, ``/console/*`` its assets, ``/api/v1/...`` the JSON API,
``/ack/{fingerprint}?exp=&sig=`` the confirmation page of a signed acknowledge link.
Write (POST, DELETE): ``/api/v1/alerts/{fingerprint}/ack``, ``/api/v1/silences``,
``/api/v1/silences/{id}`` need the token of ``console.api_token_file``, as
``Authorization: Bearer <token>`` or ``X-Console-Token: <token>`` (when basic auth is on);
``POST /ack/{fingerprint}`` needs the link's valid, unexpired signature instead.

CSRF: API writes need the token in a header, which a browser only sends cross-origin after a CORS
preflight that this server never grants; every write whose ``Origin`` (or ``Sec-Fetch-Site``)
says another site is refused with 403. Every write is logged (``console_*`` lines); a refused
one answers 4xx with a message and changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import string
from collections import Counter
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

import structlog
from aiohttp import web

from support_monitor.alerts.rules import CompiledRule
from support_monitor.alerts.silences import (
    Ack,
    AckSigner,
    ConsoleStore,
    InvalidRequestError,
    Via,
    ack_name,
    activation,
    format_time,
    new_silence,
)
from support_monitor.alerts.state import AlertState
from support_monitor.monitor.config import ConsoleSettings
from support_monitor.monitor.console import views
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.workforce_readout import agents_view
from support_monitor.monitor.errors import SupportMonitorError
from support_monitor.monitor.logs import Throttle

log = structlog.get_logger("support_monitor.console")

API = "/api/v1"
WRITE_HEADER = "X-Console-Token"
"""The API token may come here instead of ``Authorization: Bearer`` (which basic auth uses)."""
MAX_BODY = 64 * 1024
"""Bytes of a write's body at most (413 beyond)."""
BODY_SECONDS = 10.0
"""A request body (a silence, an acknowledgement) must have arrived this long after its head:
a body sent a byte at a time no longer holds a connection slot for as long as it likes."""
_ASSETS = {
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def _asset(name: str) -> str:
    return (
        resources.files("support_monitor.monitor.console")
        .joinpath("assets", name)
        .read_text("utf-8")
    )


READS = "GET, HEAD"
"""``Allow`` of a path that is only read."""
MAX_BODIES = 8
"""Request bodies being read at once at most (503 beyond): a connection whose body is still
arriving is in a request, which the listener never evicts at its connection cap, and a signed
link's form is read before its signature can be checked. Without a bound, bodies sent slowly to
``POST /ack/...`` held every connection of the cap and locked out scrapes and probes."""


async def _read_body(request: web.BaseRequest) -> bytes:
    """The body, at most ``MAX_BODY`` bytes (413 past it, also when chunked: nothing more is
    read) and within ``BODY_SECONDS`` (408)."""
    if (request.content_length or 0) > MAX_BODY:
        raise HttpError(413, f"body over {MAX_BODY} bytes")
    raw = bytearray()
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while chunk := await request.content.read(MAX_BODY + 1 - len(raw)):
                raw += chunk
                if len(raw) > MAX_BODY:
                    raise HttpError(413, f"body over {MAX_BODY} bytes")
    except TimeoutError:
        raise HttpError(408, f"the body did not arrive within {BODY_SECONDS:g} s") from None
    return bytes(raw)


REFUSALS = ("bad_token", "bad_link", "stale_link")
"""Reasons of ``support_monitor_console_requests_refused_total``."""
SHOWN_PATH = 128
"""A refused request's path is logged cut to this many characters."""


class HttpError(SupportMonitorError):
    def __init__(self, status: int, message: str, allow: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.allow = allow
        """The methods the path takes, for a 405's ``Allow`` header."""


class Console:
    """Serves the console; ``rules`` is read at each request (a config reload replaces them)."""

    def __init__(
        self,
        settings: ConsoleSettings,
        engine: Engine,
        rules: Callable[[], list[CompiledRule]],
        store: ConsoleStore,
        *,
        signer: AckSigner,
        timeline: views.Timeline,
        token: str | None,
        clock: Callable[[], float],
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._rules = rules
        self._store = store
        self._signer = signer
        self._timeline = timeline
        self._token = token
        self._clock = clock
        self._assets = {path: (_asset(name), kind) for path, (name, kind) in _ASSETS.items()}
        self._index = string.Template(_asset("index.html"))
        self._ack_page = string.Template(_asset("ack.html"))
        self._reading = 0
        """Request bodies being read now (at most ``MAX_BODIES``)."""
        self._refused: Counter[str] = Counter(dict.fromkeys(REFUSALS, 0))
        self._warn = Throttle(log)
        """Refusals anyone can send: one warning a minute per kind, with the count suppressed."""

    def refusals(self) -> Mapping[str, int]:
        """Requests refused for their credentials, by reason (``REFUSALS``)."""
        return self._refused

    def now(self) -> float:
        """The alerts' clock (the engine's "now"; the wall clock before the first tick)."""
        now = self._engine.now
        return now if math.isfinite(now) else self._clock()

    @staticmethod
    def owns(path: str) -> bool:
        return path in {"/", API} or path.startswith(("/console/", "/ack/", API + "/"))

    async def handle(self, request: web.BaseRequest) -> web.Response:
        try:
            response = await self._route(request)
        except HttpError as exc:
            response = _error(exc.status, exc.message, html=request.path.startswith("/ack/"))
            if exc.allow:
                response.headers["Allow"] = exc.allow
        response.headers.update(_SECURITY_HEADERS)
        return response

    async def _route(self, request: web.BaseRequest) -> web.Response:
        path, method = request.path, request.method
        read = method in {"GET", "HEAD"}
        if path == "/" and read:
            return self._html(
                self._index.substitute(refresh=int(self.settings.refresh_seconds * 1000))
            )
        if path in self._assets and read:
            body, kind = self._assets[path]
            return web.Response(text=body, headers={"Content-Type": kind})
        if path == "/" or path in self._assets:
            raise HttpError(405, "a page: use GET", READS)
        if path.startswith("/ack/"):
            fingerprint = path.removeprefix("/ack/")
            if read:
                return self._ack_confirm(request, fingerprint)
            if method == "POST":
                return await self._ack_by_link(request, fingerprint)
            msg = "use GET (the confirmation page) or POST (its form)"
            raise HttpError(405, msg, f"{READS}, POST")
        if not path.startswith(API):
            raise HttpError(404, "not found")
        parts = path.removeprefix(API).strip("/").split("/")
        if read:
            return self._json(self._read(parts, request))
        return await self._write(request, method, parts)

    async def _write(self, request: web.BaseRequest, method: str, parts: list[str]) -> web.Response:
        """The API's writes; any other method is a 405 with what the path takes."""
        silences = parts[0] == "silences"
        if silences and len(parts) == 1:
            if method == "POST":
                return await self._create_silence(request)
            raise HttpError(405, "no such write", f"{READS}, POST")
        if silences and len(parts) == 2:
            if method == "DELETE":
                return await self._expire_silence(request, parts[1])
            raise HttpError(405, "no such write", "DELETE")
        if len(parts) == 3 and parts[0] == "alerts" and parts[2] == "ack":
            if method == "POST":
                return await self._ack_by_api(request, parts[1])
            raise HttpError(405, "no such write", "POST")
        self._read(parts, request)  # a path no read serves either: its 404
        raise HttpError(405, "no such write: read it with GET", READS)

    # --- reads -------------------------------------------------------------------------------

    def _read(self, parts: list[str], request: web.BaseRequest) -> dict[str, Any]:  # noqa: PLR0911, PLR0912, C901 - a route each
        now = self.now()
        rules = self._rules()
        match parts:
            case ["status"]:
                return {
                    "now": format_time(now),
                    "refreshSeconds": self.settings.refresh_seconds,
                    "writable": self._token is not None,
                    "channels": views.channels_view(self._engine),
                    "alerts": views.alerts_view(rules, self._store, now),
                    "silences": views.silences_view(self._store, now),
                    "timeline": self._timeline.view(),
                }
            case ["channels"]:
                return {
                    "now": format_time(now),
                    "channels": views.channels_view(self._engine),
                }
            case ["channels", name]:
                channel = self._engine.channels.get(name)
                if channel is None:
                    raise HttpError(404, f"unknown channel {name[:64]!r}")
                return {"now": format_time(now), **views.channel_view(channel, now)}
            case ["alerts"]:
                # repeated, the statuses add up (?status=firing&status=pending)
                statuses = frozenset(request.query.getall("status", ()))
                if not statuses <= _STATUSES:
                    raise HttpError(400, "status: one of firing, pending, resolved")
                return {"alerts": views.alerts_view(rules, self._store, now, statuses or None)}
            case ["alerts", fingerprint]:
                alert = views.find_alert(rules, fingerprint)
                if alert is None:
                    raise HttpError(404, "unknown alert (resolved and forgotten, or never seen)")
                return views.alert_view(alert, self._store, now)
            case ["silences"]:
                return {"silences": views.silences_view(self._store, now)}
            case ["acks"]:  # of activations still active (the store drops the others lazily)
                live = set(views.live_activations(rules))
                acks = sorted(
                    (a for key, a in self._store.acks.items() if key in live),
                    key=lambda a: (a.at, a.fingerprint),
                )
                return {
                    "acks": [
                        {
                            "fingerprint": a.fingerprint,
                            "activeAt": format_time(a.active_at),
                            "by": a.by,
                            "at": format_time(a.at),
                            "via": a.via,
                        }
                        for a in acks
                    ]
                }
            case ["timeline"]:
                return {"timeline": self._timeline.view()}
            case ["agents"]:  # per-agent drill-down (docs/workforce.md)
                return {"now": format_time(now), **self._agents(request, now)}
            case ["silences", _]:  # write-only paths: what they take
                raise HttpError(405, "expire a silence with DELETE", "DELETE")
            case ["alerts", _, "ack"]:
                raise HttpError(405, "acknowledge with POST", "POST")
        raise HttpError(404, "not found; see docs/console.md for the API")

    def _agents(self, request: web.BaseRequest, now: float) -> dict[str, Any]:
        channel, limit = (_once(request, name) for name in ("channel", "limit"))
        try:
            return agents_view(self._engine, now, channel, limit)
        except ValueError as exc:
            raise HttpError(400, str(exc)) from exc

    # --- writes ------------------------------------------------------------------------------

    def _same_origin(self, request: web.BaseRequest) -> None:
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in {"same-origin", "none"}:
            raise HttpError(403, "cross-site request refused")
        origin = request.headers.get("Origin")
        if origin is None:
            return
        allowed = {request.host}
        if self.settings.external_url is not None:
            allowed.add(urlsplit(self.settings.external_url).netloc)
        if urlsplit(origin).netloc not in allowed:
            raise HttpError(403, "cross-origin request refused")

    def _authorize(self, request: web.BaseRequest) -> None:
        self._same_origin(request)
        if self._token is None:
            raise HttpError(403, "writes are disabled: set console.api_token_file")
        given = request.headers.get(WRITE_HEADER)
        if given is None:  # Authorization carries basic auth when the listener asks for it
            scheme, _, bearer = request.headers.get("Authorization", "").partition(" ")
            given = bearer if scheme.lower() == "bearer" else ""
        # a header of bytes that are not UTF-8 reaches us as surrogate escapes: no match
        sent = given.strip().encode("utf-8", "surrogateescape")
        if not hmac.compare_digest(sent, self._token.encode()):
            self._refused["bad_token"] += 1
            self._warn("console_write_refused", path=request.path[:SHOWN_PATH], reason="bad token")
            raise HttpError(401, "a valid bearer token is needed (console.api_token_file)")

    async def _read_body(self, request: web.BaseRequest) -> bytes:
        """``_read_body`` with at most ``MAX_BODIES`` of them at once."""
        if self._reading >= MAX_BODIES:
            raise HttpError(503, "too many requests are sending a body at once; retry")
        self._reading += 1
        try:
            return await _read_body(request)
        finally:
            self._reading -= 1

    async def _body(self, request: web.BaseRequest) -> dict[str, Any]:
        if request.content_type != "application/json":
            raise HttpError(415, "send Content-Type: application/json")
        raw = await self._read_body(request)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            raise HttpError(400, "malformed JSON") from None
        if not isinstance(body, dict):
            raise HttpError(400, "the body must be a JSON object")
        try:  # "\ud800" decodes to a lone surrogate: no file, log or page could hold it
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            raise HttpError(
                400, "a string holds a lone surrogate (\\ud800-\\udfff): not Unicode text"
            ) from None
        return body

    async def _create_silence(self, request: web.BaseRequest) -> web.Response:
        self._authorize(request)
        body = await self._body(request)
        now = self.now()
        try:
            silence = new_silence(body, now)
            await self._store.add_silence(silence, now)
        except InvalidRequestError as exc:
            raise HttpError(400, str(exc)) from None
        log.info(
            "console_silence_created",
            silence=silence.id,
            matchers=[f"{m.name}{_op(m.is_equal, m.is_regex)}{m.value}" for m in silence.matchers],
            ends_at=format_time(silence.ends_at),
            created_by=silence.created_by,
        )
        return self._json({"silence": views.silence_view(silence, now)}, status=201)

    async def _expire_silence(self, request: web.BaseRequest, silence_id: str) -> web.Response:
        self._authorize(request)
        now = self.now()
        silence = await self._store.expire_silence(silence_id, now)
        if silence is None:
            raise HttpError(404, "unknown silence")
        log.info("console_silence_expired", silence=silence.id)
        return self._json({"silence": views.silence_view(silence, now)})

    async def _ack_by_api(self, request: web.BaseRequest, fingerprint: str) -> web.Response:
        self._authorize(request)
        body = await self._body(request)
        unknown = set(body) - {"by", "via"}
        if unknown:
            raise HttpError(400, f"unknown key {min(unknown)!r}: send by (and via)")
        raw_via = body.get("via", "api")
        if raw_via not in {"api", "page"}:
            raise HttpError(400, "via: api or page")
        via: Via = "page" if raw_via == "page" else "api"
        try:
            by = ack_name(body.get("by"))
        except InvalidRequestError as exc:
            raise HttpError(400, str(exc)) from None
        alert = await self._acknowledge(fingerprint, by, via)
        return self._json({"alert": alert})

    async def _acknowledge(self, fingerprint: str, by: str, via: Via) -> dict[str, Any]:
        rules = self._rules()
        alert = views.find_alert(rules, fingerprint)
        if alert is None:
            raise HttpError(404, "unknown alert (resolved and forgotten, or never seen)")
        if alert.state is not AlertState.FIRING:
            raise HttpError(409, f"the alert is {alert.status}, not firing: nothing to acknowledge")
        now = self.now()
        existing = self._store.acknowledged(fingerprint, alert.active_at)
        if existing is None:
            ack = Ack(
                fingerprint=fingerprint,
                active_at=alert.active_at,
                by=by,
                at=now,
                via=via,
            )
            await self._store.acknowledge(ack, views.live_activations(rules))
            log.info(
                "console_alert_acknowledged",
                fingerprint=fingerprint,
                alertname=alert.label("alertname"),
                channel=alert.label("channel"),
                by=by,
                via=via,
            )
        return views.alert_view(alert, self._store, now)

    # --- signed links ------------------------------------------------------------------------

    def _check_link(self, fingerprint: str, fields: Mapping[str, str]) -> None:
        """The link's ``exp``, ``act`` and ``sig``: genuine (403), and for the alert's current
        firing (409: a link of an earlier firing must not silence the repeats of a new one)."""
        active = fields.get("act", "")
        problem = self._signer.check(
            fingerprint, fields.get("exp", ""), fields.get("sig", ""), self.now(), active
        )
        status = 403
        if problem is None and active:
            alert = views.find_alert(self._rules(), fingerprint)
            if alert is not None and activation(alert.active_at) != active:
                problem = "this link is for an earlier firing of this alert; it fired again since"
                status = 409
        if problem is not None:
            self._refused["bad_link" if status == 403 else "stale_link"] += 1
            self._warn("console_ack_link_refused", fingerprint=fingerprint[:32], reason=problem)
            raise HttpError(status, problem)

    def _ack_confirm(self, request: web.BaseRequest, fingerprint: str) -> web.Response:
        query = {name: request.query.get(name, "") for name in ("exp", "act", "sig")}
        self._check_link(fingerprint, query)
        alert = views.find_alert(self._rules(), fingerprint)
        if alert is None:
            raise HttpError(404, "this alert is no longer known (resolved and forgotten)")
        view = views.alert_view(alert, self._store, self.now())
        ack = view["acknowledged"]
        return self._html(
            self._ack_page.substitute(
                title=_escape(f"{view['alertname']} ({view['channel']})"),
                status=_escape(view["status"]),
                summary=_escape(view["annotations"].get("summary", "")),
                acked=_escape(f"Acknowledged by {ack['by']} at {ack['at']}." if ack else ""),
                fingerprint=_escape(fingerprint),
                exp=_escape(query["exp"]),
                act=_escape(query["act"]),
                sig=_escape(query["sig"]),
            )
        )

    async def _ack_by_link(self, request: web.BaseRequest, fingerprint: str) -> web.Response:
        self._same_origin(request)
        if request.content_type != "application/x-www-form-urlencoded":
            raise HttpError(415, "post the confirmation page's form")
        text = (await self._read_body(request)).decode("utf-8", "replace")
        try:
            fields = parse_qs(text, max_num_fields=10)
        except ValueError:  # more fields than the page's form has
            raise HttpError(400, "post the confirmation page's form") from None
        form = {name: values[0] for name, values in fields.items()}
        self._check_link(fingerprint, form)
        try:
            by = ack_name(form.get("by"))
        except InvalidRequestError as exc:
            raise HttpError(400, str(exc)) from None
        view = await self._acknowledge(fingerprint, by, "link")
        ack = view["acknowledged"]
        return self._html(
            _page(
                "Acknowledged",
                f"<p>{_escape(view['alertname'])} ({_escape(view['channel'])}) is acknowledged "
                f"by {_escape(ack['by'])} at {_escape(ack['at'])}. It will not repeat; its "
                'resolution is still sent.</p><p><a href="/">Open the status page</a></p>',
            )
        )

    # --- responses ---------------------------------------------------------------------------

    @staticmethod
    def _json(data: object, status: int = 200) -> web.Response:
        body = json.dumps(data, allow_nan=False, separators=(",", ":"))
        return web.Response(
            text=body, status=status, headers={"Content-Type": "application/json; charset=utf-8"}
        )

    @staticmethod
    def _html(text: str, status: int = 200) -> web.Response:
        return web.Response(
            text=text, status=status, headers={"Content-Type": "text/html; charset=utf-8"}
        )


_STATUSES = frozenset({"firing", "pending", "resolved"})


def _once(request: web.BaseRequest, name: str) -> str | None:
    """Query parameter ``name``, given at most once (a repeat is a 400, not a silent choice)."""
    values = request.query.getall(name, ())
    if len(values) > 1:
        raise HttpError(400, f"{name}: give it once")
    return values[0] if values else None


def _op(is_equal: bool, is_regex: bool) -> str:
    return ("=" if is_equal else "!") + ("~" if is_regex else "=" if not is_equal else "")


def _escape(text: object) -> str:
    return (
        str(text)
        .replace("&", "&amp;")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
        .replace('"', "&quot;")
        .replace("'", "&#39;")
    )


def _page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_escape(title)} · support-monitor</title>"
        '<link rel="stylesheet" href="/console/console.css"></head>'
        f'<body class="page"><main><h1>{_escape(title)}</h1>{body}</main></body></html>'
    )


def _error(status: int, message: str, *, html: bool) -> web.Response:
    if html:
        return web.Response(
            text=_page("Cannot acknowledge", f"<p>{_escape(message)}</p>"),
            status=status,
            headers={"Content-Type": "text/html; charset=utf-8"},
        )
    return web.Response(
        text=json.dumps({"error": message}),
        status=status,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
