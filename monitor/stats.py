"""Counters about the daemon itself (``support_monitor_*``), owned here and read at scrape time.

Plain dicts and a histogram of counts, updated on the hot path without locks (one event loop).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from support_monitor.monitor.engine.histogram import LAG_BUCKETS, Histogram


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
    dead_letters_written: Counter[tuple[str, str]] = field(default_factory=Counter)
    """sink -> dead letters stored (file, Kafka or MQTT dead-letter topic)."""
    dead_letter_failures: Counter[str] = field(default_factory=Counter)
    """sink -> failed attempts to store dead letters (each retried until it succeeds)."""
    dead_letters_lost: int = 0
    """Letters a replay's ``--dead-letters`` file could not store (dropped, not retried)."""
    dead_letter_sinks_failing: set[str] = field(default_factory=set)
    """Sinks whose last store failed (offsets wait meanwhile; ``/readyz`` answers 503)."""
    tick_failures: Counter[str] = field(default_factory=Counter)
    """tick handler (``engine`` or a handler's name) -> clock ticks in which it raised."""
