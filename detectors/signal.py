"""What a detector says at one tick; what alert rules turn into alerts.

A signal is per detector instance and channel (plus bounded extra labels such as queue, category
or sla). ``active`` already includes the detector's own guards (minimum volume, hysteresis);
the alert rule adds ``for``/``keep_firing_for`` and severity on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Signal:
    detector: str
    """Detector instance name from config, e.g. ``sla_burn`` or ``longest_wait``."""
    channel: str
    active: bool
    score: float
    """The value judged: burn rate, observed count, projected seconds to breach, metric value."""
    threshold: float
    expected: float = math.nan
    """Baseline or expectation where the detector has one (complaint baseline), else NaN."""
    labels: tuple[tuple[str, str], ...] = ()
    """Extra bounded labels (queue, category, sla), sorted by key."""
    summary: str = ""
    """One human sentence of why, for notifications (no personal data, no ids)."""
