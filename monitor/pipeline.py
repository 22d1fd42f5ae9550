"""The one road every event travels, in ``run`` and ``replay`` alike: decode, check, de-duplicate,
apply. Sources hand over raw bytes and a position; what comes out is either an applied event or
a :class:`DeadLetter` for the caller to keep (so a Kafka source can commit only after both).

No input raises out of :meth:`Pipeline.process`: a defect in a handler (anything ``decode``, the
tick road or ``engine.apply`` raises) is caught at the event boundary, counted as
``reason="internal_error"``, dead-lettered with the original bytes and logged, and the next
event is processed as usual.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable

import msgspec
import structlog

from support_monitor.monitor.config import IngestSettings
from support_monitor.monitor.deadletter import DeadLetter
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.errors import raising_line
from support_monitor.monitor.events import (
    EARLIEST_TS,
    EVENT_TYPES,
    LATEST_TS,
    EventError,
    Reject,
    decode,
)
from support_monitor.monitor.stats import DaemonStats

_TYPE_NAME = {t: str(t.__struct_config__.tag) for t in EVENT_TYPES}
_LOG_BURST = 20  # rejected events logged per reason per second; the dead-letter sink keeps all
_MAX_TRACED_KINDS = 256  # internal-error kinds logged with a traceback (each once)
_DETAIL_CHARS = 300
_MAX_DEFERRED = 10_000  # deferred dead letters waiting per source for its consume loop


class Delivery(msgspec.Struct, frozen=True, gc=False):
    """What a source yields: the raw message and where it came from (for logs and dead letters).
    A msgspec struct: ~10x cheaper to build than a frozen dataclass, once per event."""

    raw: bytes
    position: str
    key: bytes | None = None
    """The Kafka record's key (dead letters keep it); ``None`` elsewhere."""
    size: int | None = None
    """The message's whole length when ``raw`` holds only its start (a file line longer than
    16 MiB); ``None``: ``raw`` is all of it."""


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
        log_clock: Callable[[], float] = time.monotonic,
        applied: asyncio.Event | None = None,
    ) -> None:
        """``event_clock``: the events' own times drive the clock (replay); otherwise the wall
        clock does (live) and ``wall_clock`` stamps arrival for the lag histogram and bounds
        ``ts``. ``before_event(ts)`` runs the clock-tick road up to an event's time in replay.
        ``log_burst``: rejected events logged per reason per second of ``log_clock`` (``None``:
        all of them). ``applied``: set whenever an event is applied in live mode (the wall clock
        waits on it for an early tick); several pipelines may share one."""
        self.engine = engine
        self.applied = asyncio.Event() if applied is None else applied
        self.stats = stats
        self._event_clock = event_clock
        self._wall = wall_clock
        self._before_event = before_event
        self._log = structlog.get_logger("support_monitor.pipeline")
        self._log_burst = log_burst
        self._log_clock = log_clock
        self._log_second = -1
        self._logged: dict[str, int] = {}  # reason -> lines logged in the current second
        self._suppressed: dict[str, int] = {}  # reason -> lines not logged in that second
        self._traced: set[tuple[str, str, int]] = set()  # internal-error kinds logged in full
        self._ingest = engine.settings.ingest
        self._max_bytes = self._ingest.max_event_bytes
        self._arrived = 0.0  # live: the wall clock when the event being processed arrived
        self.earliest_applied = math.inf
        """The earliest event time of an applied event (a held one counts once it applies, in
        :meth:`take_deferred`); ``inf`` before any."""
        self.latest_applied = -math.inf
        """The latest such event time (a line rejected by the state it met may have moved the
        replay clock further, e.g. a second ``contact.queued`` of an open contact)."""
        self._deferred: dict[str, deque[DeadLetter]] = {}  # source -> letters decided later

    def register(self, source: str) -> None:
        """Export a source's counters at 0 from the start, so ``rate()`` sees the first event."""
        for name in _TYPE_NAME.values():
            self.stats.events[source, name] += 0
        for reason in Reject:
            self.stats.rejected[source, reason.value] += 0
        self.stats.duplicates[source] += 0
        self.stats.dead_letters_dropped[source] += 0
        self.stats.source_up.setdefault(source, True)  # sources with a connection set their own

    def process(self, source: str, delivery: Delivery) -> DeadLetter | None:  # noqa: C901, PLR0911, PLR0912 - the hot path, kept flat
        """Apply one delivery, or return its dead letter; never raises."""
        if self._suppressed and int(self._log_clock()) != self._log_second:
            self._roll_log_second(int(self._log_clock()))
        try:
            engine = self.engine
            ingest = engine.settings.ingest
            if ingest is not self._ingest:  # a config reload
                self._ingest = ingest
                self._max_bytes = ingest.max_event_bytes
            try:
                event = decode(delivery.raw, self._max_bytes, max_tags=ingest.max_tags)
            except EventError as exc:
                detail = exc.detail
                if delivery.size is not None:  # too large, and cut by its source
                    detail = (
                        f"{delivery.size} bytes > max_event_bytes {self._max_bytes}; only its "
                        f"first {len(delivery.raw)} bytes are kept"
                    )
                return self._reject(source, delivery, exc.reason, detail)
            ts = event.ts.timestamp()
            clock = engine.now
            if self._event_clock and clock < ts <= clock + ingest.max_replay_gap and ts < LATEST_TS:
                forward = True  # replay, event time moving forward (the usual case)
            elif (out_of_range := self._bounds(ts, ingest)) is not None:
                return self._reject(source, delivery, Reject.TIMESTAMP_OUT_OF_RANGE, out_of_range)
            else:
                forward = self._event_clock and ts > clock
            # What the config or the de-duplication refuses is decided at the clock as it is: a
            # line that is not applied must not move the replay clock (nor run its ticks).
            reason = engine.refuses(event)
            if reason is not None:
                return self._reject(source, delivery, reason, _explain(reason))
            dedup = engine.dedup
            key = dedup.key(event.event_id)  # hashed once: checked now, remembered once applied
            if dedup.seen_key(key):
                self.stats.duplicates[source] += 1
                return None
            if forward:  # replay: the ticks before the event, then the clock moves to it
                if self._before_event is not None:
                    self._before_event(ts)
                engine.advance(ts)
            reason = engine.apply(event, ts, (delivery.raw, delivery.position, source))
            if reason is not None:
                return self._reject(source, delivery, reason, _explain(reason))
            dedup.add_key(key, ts)
            if engine.held_last:  # counted when it applies or is rejected (take_deferred)
                engine.held_last = False
                return None
            self.stats.events[source, _TYPE_NAME[type(event)]] += 1
            self.latest_applied = max(self.latest_applied, ts)
            self.earliest_applied = min(self.earliest_applied, ts)
            if not self._event_clock:
                self.stats.lag.observe(max(0.0, self._arrived - ts))
                self.applied.set()
        except Exception as exc:  # noqa: BLE001 - the event boundary: a defect must not stop us
            return self._internal_error(source, delivery, exc)
        return None

    def _bounds(self, ts: float, ingest: IngestSettings) -> str | None:
        """Why ``ts`` is too far from the clock (``docs/events.md``, "Timestamp bounds"), or
        ``None``. Live, it also stamps the event's arrival by the wall clock."""
        if self._event_clock:
            if not EARLIEST_TS <= ts < LATEST_TS:  # the first event too: it sets the clock
                return _YEARS
            clock = self.engine.now
            if clock != -math.inf and not (
                clock - ingest.max_event_age <= ts <= clock + ingest.max_replay_gap
            ):
                return _out_of_range(ts - clock, "stream", ingest.max_replay_gap, ingest)
            return None
        self._arrived = wall = self._wall()
        if not wall - ingest.max_event_age <= ts <= wall + ingest.max_clock_skew:
            return _out_of_range(ts - wall, "wall", ingest.max_clock_skew, ingest)
        return None

    def take_deferred(self, source: str | None = None) -> list[DeadLetter]:
        """Rejects the engine decided after the event was accepted: an outcome held for its
        item's opening event (an ``answered`` before its ``queued``) that did not come within
        the allowed lateness, or that its item's state refused once it came. Each is counted
        and logged when the engine hands it over, and returned as a dead letter with its
        original bytes. Held events that applied since (their item opened, or the watermark
        passed them) are counted in ``events_total`` and in the applied event-time span here,
        so a held event is counted once: applied or rejected.
        ``source``: only that source's letters (each source has its own dead-letter sink; the
        others wait for their own call, at most ``_MAX_DEFERRED`` each); ``None``: all."""
        events = self.stats.events
        for token, event_type, ts in self.engine.take_applied_late():
            events[_unpack(token)[2], _TYPE_NAME[event_type]] += 1
            self.latest_applied = max(self.latest_applied, ts)
            self.earliest_applied = min(self.earliest_applied, ts)
        for token, reason in self.engine.take_expired_early():
            raw, position, origin = _unpack(token)
            detail = f"{_explain(reason)} {_HELD}"
            letter = self._reject(origin, Delivery(raw, position), reason, detail)
            waiting = self._deferred.setdefault(origin, deque(maxlen=_MAX_DEFERRED))
            if len(waiting) == _MAX_DEFERRED:  # the oldest goes: counted, logged rate-limited
                self.stats.dead_letters_dropped[origin] += 1
                if self._may_log("deferred_dead_letter_dropped"):
                    self._log.warning(
                        "deferred_dead_letter_dropped", source=origin, bound=_MAX_DEFERRED
                    )
            waiting.append(letter)
        if not self._deferred:
            return []
        if source is None:
            letters = [letter for waiting in self._deferred.values() for letter in waiting]
            self._deferred.clear()
            return letters
        return list(self._deferred.pop(source, ()))

    def flush_log(self) -> None:
        """Log the pending ``event_rejected_suppressed`` lines now (e.g. when a source ends)."""
        if self._suppressed:
            self._roll_log_second(self._log_second + 1)

    def _reject(self, source: str, delivery: Delivery, reason: Reject, detail: str) -> DeadLetter:
        self.stats.rejected[source, reason.value] += 1
        if self._may_log(reason.value):
            self._log_rejected(source, delivery, reason, detail)
        return DeadLetter(
            delivery.raw, reason.value, detail, source, delivery.position, _kept_key(delivery)
        )

    def _internal_error(self, source: str, delivery: Delivery, exc: Exception) -> DeadLetter:
        """Count, log (a traceback once per kind: type and raising line) and dead-letter."""
        reason = Reject.INTERNAL_ERROR
        self.stats.rejected[source, reason.value] += 1
        detail = f"{type(exc).__name__}: {exc}"[:_DETAIL_CHARS]
        kind = raising_line(exc)
        if kind not in self._traced and len(self._traced) < _MAX_TRACED_KINDS:
            self._traced.add(kind)
            self._log.error(
                "event_internal_error",
                source=source,
                position=delivery.position,
                reason=reason.value,
                detail=detail,
                exc_info=exc,
            )
        elif self._may_log(reason.value):
            self._log_rejected(source, delivery, reason, detail)
        return DeadLetter(
            delivery.raw, reason.value, detail, source, delivery.position, _kept_key(delivery)
        )

    def _may_log(self, reason: str) -> bool:
        """At most ``log_burst`` lines per reason per second; the rest are counted."""
        if self._log_burst is None:
            return True
        second = int(self._log_clock())
        if second != self._log_second:
            self._roll_log_second(second)
        logged = self._logged.get(reason, 0)
        if logged < self._log_burst:
            self._logged[reason] = logged + 1
            return True
        self._suppressed[reason] = self._suppressed.get(reason, 0) + 1
        return False

    def _roll_log_second(self, second: int) -> None:
        for reason, count in self._suppressed.items():
            self._log.warning("event_rejected_suppressed", reason=reason, count=count)
        self._suppressed.clear()
        self._logged.clear()
        self._log_second = second

    def _log_rejected(self, source: str, delivery: Delivery, reason: Reject, detail: str) -> None:
        self._log.warning(
            "event_rejected",
            source=source,
            position=delivery.position,
            reason=reason.value,
            detail=detail,
        )


def _unpack(token: object) -> tuple[bytes, str, str]:
    """The token given to ``engine.apply``: (raw, position, source); a list after a snapshot."""
    if isinstance(token, tuple | list) and len(token) == 3:
        raw, position, source = token
        if isinstance(raw, bytes) and isinstance(position, str) and isinstance(source, str):
            return raw, position, source
    return b"", "unknown", "unknown"


def _out_of_range(delta: float, clock: str, ahead: float, ingest: IngestSettings) -> str:
    key = "max_replay_gap" if clock == "stream" else "max_clock_skew"
    return (
        f"ts is {delta:+.0f} s from the {clock} clock; allowed -{ingest.max_event_age:g} s "
        f"(ingest.max_event_age) to +{ahead:g} s (ingest.{key})"
    )


_YEARS = "ts is before 1970 or after 8999 (UTC)"
_HELD = "(held within the allowed lateness for an earlier event of its item)"
"""The end of a reject's ``detail`` when the engine held the event first (docs/events.md)."""


def _explain(reason: Reject) -> str:
    return {
        Reject.UNKNOWN_CHANNEL: "channel is not declared in the config",
        Reject.UNKNOWN_QUEUE: "queue is not declared for this channel",
        Reject.WRONG_CHANNEL_KIND: "live-contact event on a channel without answer_seconds",
        Reject.UNKNOWN_CONTACT: "no open contact with this contact_id",
        Reject.UNKNOWN_TICKET: "no known ticket with this ticket_id",
        Reject.INVALID_TRANSITION: "not valid in the item's current state",
        Reject.CAPACITY: "a limits: bound is reached; the new item is refused",
    }.get(reason, reason.value)


KEY_KEEP_BYTES = 1024
"""A dead letter keeps at most this much of its record's key: a key is an id (a ticket's, a
contact's), and a huge one must not make the letter too big for its sink."""


def _kept_key(delivery: Delivery) -> bytes | None:
    key = delivery.key
    return key if key is None or len(key) <= KEY_KEEP_BYTES else key[:KEY_KEEP_BYTES]
