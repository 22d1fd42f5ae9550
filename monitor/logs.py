"""structlog set-up: constant event names with key-value fields; JSON unless on a terminal.

Every line passes a redaction step last, after any exception was rendered: the value of every
secret the config holds (``register_secret``, called for each ``SecretStr`` when the config is
loaded and for each secret read from a ``*_file`` or ``*_env``) is replaced by ``***``, and so is
the ``user:password@`` part of any URL. This is the safety net; the code itself never logs a
secret. Library (stdlib ``logging``) lines go through the same processors (structlog's
``ProcessorFormatter``), so they have the same shape and the same redaction as ours.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import Counter, OrderedDict
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}

MASK = "***"
MAX_SECRETS = 1024
"""Secrets remembered for redaction at most (the oldest registered is forgotten first)."""
MIN_SECRET_LENGTH = 4
"""Shorter values are not redacted by text search (it would mask ordinary words)."""
_MAX_DEPTH = 6
_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]{0,15}://)[^/?#@\s\"']*@")


class Redactor:
    """The set of secret values to mask in every log line (bounded by ``MAX_SECRETS``)."""

    def __init__(self) -> None:
        self._secrets: OrderedDict[str, None] = OrderedDict()
        self._longest_first: tuple[str, ...] = ()

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH or value in self._secrets:
            return
        self._secrets[value] = None
        while len(self._secrets) > MAX_SECRETS:
            self._secrets.popitem(last=False)
        self._longest_first = tuple(sorted(self._secrets, key=len, reverse=True))

    def text(self, value: str) -> str:
        for secret in self._longest_first:
            if secret in value:
                value = value.replace(secret, MASK)
        if "@" in value:
            value = _USERINFO.sub(rf"\g<scheme>{MASK}@", value)
        return value

    def value(self, value: object, depth: int = 0) -> object:
        if isinstance(value, str):
            return self.text(value)
        if depth >= _MAX_DEPTH:
            return value
        if isinstance(value, dict):
            return {k: self.value(v, depth + 1) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(v, depth + 1) for v in value]
        return value

    def processor(
        self, logger: object, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        del logger, method
        for key, value in event_dict.items():
            event_dict[key] = self.value(value)
        return event_dict


REDACTOR = Redactor()
"""Process-wide, like structlog's own configuration: every logger shares it."""


def register_secret(value: str) -> None:
    """Mask ``value`` wherever it would appear in a log line from now on."""
    REDACTOR.add(value)


ROOT_NAME = "support_monitor"
"""``logger`` of a line logged through ``structlog.get_logger()`` without a name."""
_HANDLER_MARK = "support_monitor_handler"


class _NamedWriteLogger(structlog.WriteLogger):
    """structlog's fast write logger, plus the name it was created with (the ``logger`` key).
    It writes each line and its newline in one ``write`` (``PrintLogger`` makes two), so lines
    of two processes sharing stderr (``backtest --against``'s worker) never interleave."""

    def __init__(self, file: TextIO, name: str) -> None:
        super().__init__(file)
        self.name = name


class _LoggerFactory:
    def __init__(self, out: TextIO) -> None:
        self._out = out

    def __call__(self, *args: object) -> _NamedWriteLogger:
        name = args[0] if args and isinstance(args[0], str) else ROOT_NAME
        return _NamedWriteLogger(self._out, name)


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    """Set up structlog and route the standard library's ``logging`` (aiokafka, aiohttp, httpx,
    asyncio ...) through the same processors: every line has ``event``, ``level``, ``logger``
    and ``timestamp``, is redacted, and is rendered the same way (JSON, or the console renderer
    on a terminal). ``level`` applies to both; calling again replaces the previous set-up."""
    out = stream if stream is not None else sys.stderr
    json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    shared: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            REDACTOR.processor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=_LoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.contextvars.merge_contextvars, *shared],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            REDACTOR.processor,
            renderer,
        ],
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    handler = logging.StreamHandler(out)
    setattr(handler, _HANDLER_MARK, True)
    handler.setLevel(_LEVELS[level])
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(_LEVELS[level])
    # Python warnings (a library's ResourceWarning or DeprecationWarning) go through the same
    # handler as logger "py.warnings", redacted and rendered like every other line.
    logging.captureWarnings(True)  # noqa: FBT003 - the stdlib takes it positionally
    # httpx logs every request at info ("HTTP Request: POST ... 503"): one line per attempt of
    # every retry during a receiver's outage. The notifiers say it once per outage themselves
    # (docs/alerts.md), so httpx's lines show only at debug.
    logging.getLogger("httpx").setLevel(_LEVELS["debug"] if level == "debug" else logging.WARNING)
    # httpcore's debug lines trace the protocol, response headers verbatim: a receiver's
    # redirect names the webhook's secret path in its Location, which no redaction of the
    # whole URL catches. They stay out, also at debug (httpx's own line names each request).
    logging.getLogger("httpcore").setLevel(logging.INFO)
    # paho (through aiomqtt's "mqtt" logger) logs each failed connection attempt at error
    # level, one line per retry for as long as a broker is unreachable; the MQTT source and
    # dead-letter sink say it once per outage themselves (like aiokafka's, whose level is
    # ``sources.kafka.library_log_level``). Shown at debug.
    logging.getLogger("mqtt").setLevel(_LEVELS["debug"] if level == "debug" else logging.CRITICAL)


THROTTLE_SECONDS = 60.0
"""A throttled warning is logged at most once per this many seconds per event name."""


class Throttle:
    """Logs one kind of warning at most once per ``interval``, with how many were suppressed
    (``suppressed``): a flood of one refusal costs one line a minute, not one per request."""

    def __init__(
        self, log: structlog.typing.FilteringBoundLogger, interval: float = THROTTLE_SECONDS
    ) -> None:
        self._log = log
        self._interval = interval
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()

    def __call__(self, event: str, **fields: object) -> None:
        now = time.monotonic()
        last = self._last.get(event)
        if last is not None and now - last < self._interval:
            self._suppressed[event] += 1
            return
        self._last[event] = now
        self._log.warning(event, suppressed=self._suppressed.pop(event, 0), **fields)
