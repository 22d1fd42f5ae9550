"""The one road every event travels, in ``run`` and ``replay`` alike: decode, check, de-duplicate,
apply. Sources hand over raw bytes and a position; what comes out is either an applied event or
a :class:`DeadLetter` for the caller to keep (so a Kafka source can commit only after both).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
import structlog

from monitor.deadletter import DeadLetter
from monitor.engine.engine import Engine
from monitor.events import EVENT_TYPES, EventError, Reject, decode
from monitor.stats import DaemonStats

_TYPE_NAME = {t: str(t.__struct_config__.tag) for t in EVENT_TYPES}
_LOG_BURST = 20  # rejected events logged per reason per second; the dead-letter sink keeps all


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """What a source yields: the raw message and where it came from (for logs and dead letters).
    A msgspec struct: ~10x cheaper to build than a frozen dataclass, once per event."""

    raw: bytes
    position: str


class Pipeline:
    def __init__(
        self,
        engine: Engine,
        stats: DaemonStats,
        *,
        event_clock: bool,
        wall_clock: Callable[[], float] = time.time,
        before_event: Callable[[float], None] | None = None,
        log_burst: int | None = _LOG_BURST,
    ) -> None:
        """``event_clock``: the events' own times drive the clock (replay); otherwise the wall
        clock does (live) and ``wall_clock`` stamps arrival for the lag histogram.
        ``before_event(ts)`` runs the clock-tick road up to an event's time in replay.
        ``log_burst``: rejected events logged per reason per second (``None``: all of them)."""
        self.engine = engine
        self.stats = stats
        self._event_clock = event_clock
        self._wall = wall_clock
        self._before_event = before_event
        self._max_bytes = engine.settings.ingest.max_event_bytes
        self._log = structlog.get_logger("support_monitor.pipeline")
        self._log_window = (0, 0)
        self._log_burst = log_burst

    def register(self, source: str) -> None:
        """Export a source's counters at 0 from the start, so ``rate()`` sees the first event."""
        for name in _TYPE_NAME.values():
            self.stats.events[source, name] += 0
        for reason in Reject:
            self.stats.rejected[source, reason.value] += 0
        self.stats.duplicates[source] += 0
        self.stats.source_up.setdefault(source, True)  # sources with a connection set their own

    def process(self, source: str, delivery: Delivery) -> DeadLetter | None:
        try:
            event = decode(delivery.raw, self._max_bytes)
        except EventError as exc:
            return self._reject(source, delivery, exc.reason, exc.detail)
        ts = event.ts.timestamp()
        engine = self.engine
        if self._event_clock and ts > engine.now:
            if self._before_event is not None:
                self._before_event(ts)
            engine.advance(ts)
        if engine.dedup.seen(event.event_id):
            self.stats.duplicates[source] += 1
            return None
        reason = engine.apply(event, ts)
        if reason is not None:
            return self._reject(source, delivery, reason, _explain(reason))
        engine.dedup.add(event.event_id, ts)
        self.stats.events[source, _TYPE_NAME[type(event)]] += 1
        if not self._event_clock:
            self.stats.lag.observe(max(0.0, self._wall() - ts))
        return None

    def _reject(self, source: str, delivery: Delivery, reason: Reject, detail: str) -> DeadLetter:
        self.stats.rejected[source, reason.value] += 1
        if self._log_burst is None:
            self._log_rejected(source, delivery, reason, detail)
            return DeadLetter(delivery.raw, reason.value, detail, source, delivery.position)
        second = int(time.monotonic())
        window_second, logged = self._log_window
        if window_second != second:
            self._log_window = (second, 1)
            logged = 0
        else:
            self._log_window = (second, logged + 1)
        if logged < self._log_burst:
            self._log_rejected(source, delivery, reason, detail)
        return DeadLetter(delivery.raw, reason.value, detail, source, delivery.position)

    def _log_rejected(self, source: str, delivery: Delivery, reason: Reject, detail: str) -> None:
        self._log.warning(
            "event_rejected",
            source=source,
            position=delivery.position,
            reason=reason.value,
            detail=detail,
        )


def _explain(reason: Reject) -> str:
    return {
        Reject.UNKNOWN_CHANNEL: "channel is not declared in the config",
        Reject.UNKNOWN_QUEUE: "queue is not declared for this channel",
        Reject.WRONG_CHANNEL_KIND: "live-contact event on a channel without answer_seconds",
        Reject.UNKNOWN_CONTACT: "no open contact with this contact_id",
        Reject.UNKNOWN_TICKET: "no known ticket with this ticket_id",
        Reject.INVALID_TRANSITION: "not valid in the item's current state",
    }.get(reason, reason.value)
