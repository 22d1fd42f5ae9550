"""Counters about the daemon itself (``support_monitor_*``), owned here and read at scrape time.

Plain dicts and a histogram of counts, updated on the hot path without locks (one event loop).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from monitor.engine.histogram import LAG_BUCKETS, Histogram


@dataclass(slots=True)
class DaemonStats:
    events: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(source, type) -> events applied."""
    rejected: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(source, reason) -> events not applied."""
    duplicates: Counter[str] = field(default_factory=Counter)
    """source -> redelivered events skipped by de-duplication."""
    lag: Histogram = field(default_factory=lambda: Histogram(LAG_BUCKETS))
    notifications: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(notifier, result) -> notification attempts."""
    source_up: dict[str, bool] = field(default_factory=dict)
    partition_lag: dict[tuple[str, int], int] = field(default_factory=dict)
    loop_lag_seconds: float = 0.0
    dead_letters_written: Counter[str] = field(default_factory=Counter)
