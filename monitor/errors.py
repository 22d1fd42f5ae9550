"""The root of the project's exceptions. Every error support-monitor raises on purpose derives
from :class:`SupportMonitorError`, so a caller (or a test) can catch the project's own errors
apart from library and Python errors. This module imports nothing of the project.

::

    SupportMonitorError
    ├── ConfigError           (here; also ``monitor.config.ConfigError``) a config that cannot
    │   │                     be used (check-config, start-up, reload); the message names each
    │   │                     key and its problem
    │   └── WebConfigError    monitor.webconfig: the listener's web config file (also a
    │                         ValueError, so pydantic reports it under exporter.web_config_file)
    ├── EventError            monitor.events: an input that is not a valid event (a reject reason)
    ├── SnapshotError         monitor.engine.snapshot: a snapshot that cannot be restored
    ├── RestartNeeded         monitor.engine.engine: a reload that changes the state's shape
    ├── ListenError           monitor.http: the listener cannot bind its address
    ├── DeadLettersLostError  monitor.replay: ``--dead-letters`` could not store every rejected
    │                         line (the replay's exposition rides along)
    ├── SpoolError            monitor.backtest: the copy of a stream ``--against`` reads twice
    │                         could not be written
    ├── HttpError             monitor.console.app: a console request answered with an error
    │                         status (a 4xx, or 503 when too many bodies arrive at once)
    └── InvalidRequestError   alerts.silences: a silence or acknowledgement refused (a 400;
                              also a ValueError)

Not errors, and so not in the tree: the supervisor's shutdown signal (``Shutdown``,
``monitor.supervise``).
"""

from __future__ import annotations

__all__ = ["ConfigError", "SupportMonitorError", "raising_line"]


class SupportMonitorError(Exception):
    """Any error support-monitor raises on purpose; the message says what and why."""


class ConfigError(SupportMonitorError):
    """A config that cannot be used; the message names each key and its problem."""


def raising_line(exc: BaseException) -> tuple[str, str, int]:
    """An exception's kind for a log line that must not carry its message (which may quote an
    id, a URL or a secret): its type and the file and line that raised it (the innermost
    frame)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is None:
        return type(exc).__qualname__, "", 0
    return type(exc).__qualname__, tb.tb_frame.f_code.co_filename, tb.tb_lineno
