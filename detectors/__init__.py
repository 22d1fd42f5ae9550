"""Detectors: per-channel signals (active or not, with a score) from the engine's state at each
tick. The public surface is ``__all__``; each name loads its module on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.detectors.config import DetectorSettings
    from support_monitor.detectors.readings import Detector, Readings
    from support_monitor.detectors.signal import Signal
    from support_monitor.detectors.suite import DetectorSuite

__all__ = ["Detector", "DetectorSettings", "DetectorSuite", "Readings", "Signal"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Detector": "support_monitor.detectors.readings",
        "DetectorSettings": "support_monitor.detectors.config",
        "DetectorSuite": "support_monitor.detectors.suite",
        "Readings": "support_monitor.detectors.readings",
        "Signal": "support_monitor.detectors.signal",
    },
)
