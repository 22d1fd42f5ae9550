"""The engine: per-channel state, windows, deadlines and the rows the exporter and detectors read.
The public surface is ``__all__``; each name loads its module on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.monitor.engine.engine import Engine, RestartNeeded
    from support_monitor.monitor.engine.snapshot import SnapshotError

__all__ = ["Engine", "RestartNeeded", "SnapshotError"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Engine": "support_monitor.monitor.engine.engine",
        "RestartNeeded": "support_monitor.monitor.engine.engine",
        "SnapshotError": "support_monitor.monitor.engine.snapshot",
    },
)
