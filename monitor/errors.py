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
    ├── HttpError             monitor.console.app: a console request answered with a 4xx
    └── InvalidRequestError   alerts.silences: a silence or acknowledgement refused (a 400;
                              also a ValueError)

Not errors, and so not in the tree: the supervisor's private shutdown signal.
"""

from __future__ import annotations

__all__ = ["ConfigError", "SupportMonitorError"]


class SupportMonitorError(Exception):
    """Any error support-monitor raises on purpose; the message says what and why."""


class ConfigError(SupportMonitorError):
    """A config that cannot be used; the message names each key and its problem."""
