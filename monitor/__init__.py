"""support-monitor: realtime contact-center and help-desk monitoring daemon.

The public surface is ``__all__`` (and ``__version__``); each name loads its module on first use,
so ``import support_monitor.monitor.events`` does not load the daemon."""

from __future__ import annotations

from support_monitor.monitor.exports import lazy_exports

TYPE_CHECKING = False  # typing's own flag, without importing typing: the console script starts here

if TYPE_CHECKING:
    from support_monitor.monitor.config import Settings, load_settings, parse_settings
    from support_monitor.monitor.daemon import run_daemon
    from support_monitor.monitor.errors import ConfigError, SupportMonitorError

    __version__: str

__all__ = [
    "ConfigError",
    "Settings",
    "SupportMonitorError",
    "load_settings",
    "parse_settings",
    "run_daemon",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "ConfigError": "support_monitor.monitor.errors",
        "load_settings": "support_monitor.monitor.config",
        "parse_settings": "support_monitor.monitor.config",
        "run_daemon": "support_monitor.monitor.daemon",
        "Settings": "support_monitor.monitor.config",
        "SupportMonitorError": "support_monitor.monitor.errors",
        "__version__": "support_monitor.monitor.version:VERSION",
    },
)
