"""The operations console: a status page, a JSON API, acknowledgements and silences, served on
the daemon's listener (docs/console.md)."""

from support_monitor.monitor.console.app import Console
from support_monitor.monitor.console.views import Timeline

__all__ = ["Console", "Timeline"]
