"""Counters about the daemon itself (``support_monitor_*``), owned here and read at scrape time.

Plain dicts and a histogram of counts, updated on the hot path without locks (one event loop).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import structlog

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
    """(source, sink) -> dead letters stored (file, Kafka or MQTT dead-letter topic)."""
    dead_letter_failures: Counter[str] = field(default_factory=Counter)
    """sink -> failed attempts to store dead letters (each retried until it succeeds)."""
    dead_letters_dropped: Counter[str] = field(default_factory=Counter)
    """source -> rejected events whose dead letter was dropped unstored: the oldest of the
    in-memory sink past its bound (no ``dead_letter.path``), or of a source's deferred letters
    past ``_MAX_DEFERRED`` while its consume loop waits on its sink."""
    dead_letters_lost: int = 0
    """Letters a replay's ``--dead-letters`` file could not store (dropped, not retried)."""
    dead_letter_sinks_failing: set[str] = field(default_factory=set)
    """Sinks whose last store failed (offsets wait meanwhile; ``/readyz`` answers 503)."""
    tick_failures: Counter[str] = field(default_factory=Counter)
    """tick handler (``engine`` or a handler's name) -> clock ticks in which it raised."""
    source_dropped: Counter[str] = field(default_factory=Counter)
    """source -> messages its client discarded unread (a full receive buffer)."""
    store_failures: Counter[str] = field(default_factory=Counter)
    """store (``snapshot``, ``outbox``, ``console``) -> failed opens and writes of the
    daemon's own state files (``StoreHealth``)."""
    stores_failing: dict[str, bool] = field(default_factory=dict)
    """store -> whether its last open or write failed (it keeps its last copy or runs from
    memory meanwhile)."""


class StoreHealth:
    """The outages of one of the daemon's own files (a snapshot, the outbox, the console's
    store): every failure is counted in ``stats.store_failures[name]`` and
    ``stats.stores_failing[name]`` says whether the last open or write failed; the first
    failure of an outage is logged as an error, the next ones at debug, and the first success
    after it as ``store_recovered``. What the store does meanwhile (run from memory, keep the
    last copy) is its own business."""

    __slots__ = ("_log", "_stats", "name")

    def __init__(self, name: str, stats: DaemonStats | None = None) -> None:
        self.name = name
        self._stats = DaemonStats() if stats is None else stats
        self._log = structlog.get_logger("support_monitor.stores")

    @property
    def failing(self) -> bool:
        return self._stats.stores_failing.get(self.name, False)

    def watch(self) -> None:
        """The store is in use: its failures are exported (at 0 until one comes)."""
        self._stats.store_failures[self.name] += 0
        self._stats.stores_failing.setdefault(self.name, False)

    def failed(self, event: str, exc: BaseException | None, **fields: object) -> None:
        """Count a failure; one error line per outage (``event``, the error and ``fields``;
        no line when ``exc`` is ``None``: the caller has said it)."""
        self._stats.store_failures[self.name] += 1
        log = self._log.debug if self.failing else self._log.error
        self._stats.stores_failing[self.name] = True
        if exc is not None:
            log(event, store=self.name, error=type(exc).__name__, detail=str(exc)[:200], **fields)

    def ok(self) -> None:
        """A write succeeded: ends an outage (one ``store_recovered`` line)."""
        if self.failing:
            self._stats.stores_failing[self.name] = False
            self._log.info("store_recovered", store=self.name)
