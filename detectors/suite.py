"""The detector suite: every configured detector, evaluated once per tick in time order.

Pure: state advances only through ``evaluate(engine, now)``; no wall clock, no I/O. The alert rules
consume ``evaluate``'s signals; ``series()`` exports the latest ones as gauges with exactly the
labels ``detector`` and ``channel`` (the dashboards depend on that label set), one row per detector
and channel: the worst of its signals (an active one first), so per-category, per-queue or
per-window-pair signals fold into one line.

State that survives a restart or a rebalance: ``export_state`` gives every detector's learnt and
temporal state (complaint baselines, threshold hysteresis, backlog growth histories, the last
verdicts) as plain data the engine snapshot stores; ``restore_state`` puts it back into a suite
built from the config, per detector, dropping (and logging) the state of a detector whose
settings or channels changed meanwhile.
"""

from __future__ import annotations

import hashlib
import itertools
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol, runtime_checkable

import structlog

from support_monitor.detectors.at_risk import TicketsAtRiskDetector
from support_monitor.detectors.backlog import BacklogGrowthDetector
from support_monitor.detectors.burn import SlaBurnDetector
from support_monitor.detectors.complaints import ComplaintSpikeDetector
from support_monitor.detectors.config import DetectorSettings, ThresholdSettings, resolve_window
from support_monitor.detectors.customer_voice import build as build_voice
from support_monitor.detectors.readings import Detector, Groups, Readings
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.staffing import EstimatedWaitDetector, UnderstaffingDetector
from support_monitor.detectors.threshold import ThresholdDetector
from support_monitor.detectors.voice_config import VOICE_NAMES
from support_monitor.monitor.catalogue import help_texts
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.rows import Series

STATE_VERSION = 1
"""``v`` of :meth:`DetectorSuite.export_state`; another version is dropped as a whole."""

log = structlog.get_logger("support_monitor.detectors")


@runtime_checkable
class Stateful(Protocol):
    """A detector whose ``evaluate`` depends on the past: it can export and restore that."""

    def export_state(self) -> dict[str, object]: ...

    def restore_state(self, data: dict[str, Any]) -> None: ...


def detector_fingerprint(detector: Detector, *, ordered: bool = False) -> str:
    """Digest of what a detector's state is only valid for: its settings, its channels and (the
    complaint spike) its window span. Stable across processes. A threshold without a ``cusum``
    or a ``sustained`` level (or ``service_level_evidence``) digests as it did before those
    keys existed, so its state survives the upgrade; so does ``enabled`` of a threshold (only
    enabled ones run). The channels are digested sorted: every detector keeps its state by
    channel name, so a config that lists the same channels in another order keeps it.
    ``ordered``: in the config's order, the digest of snapshots taken before 2026-12-05."""
    settings = getattr(detector, "settings", None)
    channels: list[str] = list(getattr(detector, "channels", []))
    optional = ("cusum", "sustained", "service_level_evidence")
    unset = {key for key in optional if getattr(settings, key, 0) is None}
    if isinstance(settings, ThresholdSettings):
        unset.add("enabled")
    parts = [
        detector.name,
        settings.model_dump_json(exclude=unset) if settings is not None else "",
        ",".join(channels if ordered else sorted(channels)),
        repr(getattr(detector, "span", None)),
    ]
    return hashlib.blake2b("\n".join(parts).encode(), digest_size=8).hexdigest()


def _num(value: float) -> float | str:
    """A float as plain data every encoder keeps (JSON has no NaN or infinity)."""
    return value if math.isfinite(value) else repr(value)


def _float(value: float | str) -> float:
    return float(value)


def _dump_signal(s: Signal) -> list[object]:
    return [
        s.detector,
        s.channel,
        s.active,
        _num(s.score),
        _num(s.threshold),
        _num(s.expected),
        [list(kv) for kv in s.labels],
        s.summary,
        _num(s.since),
    ]


def _load_signal(data: list[Any]) -> Signal:
    """A signal of ``_dump_signal``; one written before ``since`` existed has 8 fields."""
    detector, channel, active, score, threshold, expected, labels, summary, *since = data
    if len(since) > 1:
        raise ValueError(f"a signal has {len(data)} fields, not 8 or 9")
    return Signal(
        detector=str(detector),
        channel=str(channel),
        active=bool(active),
        score=_float(score),
        threshold=_float(threshold),
        expected=_float(expected),
        labels=tuple((str(k), str(v)) for k, v in labels),
        summary=str(summary),
        since=_float(since[0]) if since else math.nan,
    )


_NO_ROW = Signal("", "", active=False, score=math.nan, threshold=math.nan)
"""Stands for "no exported row" for a channel that has no signal."""

HELP: dict[str, str] = help_texts("detectors")


class DetectorSuite:
    """All detectors of one config. Build it again on a config reload of the detectors or of
    the channels' settings (``restore_state`` then keeps what each unchanged detector
    learnt)."""

    help: dict[str, str] = HELP

    def __init__(
        self,
        settings: DetectorSettings,
        channels: Mapping[str, ChannelSettings],
        window_spans: Mapping[str, float],
    ) -> None:
        self.settings = settings
        self.channel_settings = channels
        """The channels' settings the detectors took their T, targets and concurrency from."""
        scopes = settings.scopes(channels, list(window_spans))
        windows = list(window_spans)
        self.detectors: list[Detector] = []
        if settings.sla_burn.enabled:
            self.detectors.append(
                SlaBurnDetector(settings.sla_burn, scopes["sla_burn"], channels, windows)
            )
        if settings.complaint_spike.enabled:
            cs = settings.complaint_spike
            self.detectors.append(
                ComplaintSpikeDetector(
                    cs,
                    scopes["complaint_spike"],
                    window_spans[resolve_window(cs.window, window_spans)],
                    windows,
                )
            )
        if settings.backlog_growth.enabled:
            self.detectors.append(
                BacklogGrowthDetector(
                    settings.backlog_growth, scopes["backlog_growth"], channels, windows
                )
            )
        if settings.tickets_at_risk.enabled:
            self.detectors.append(
                TicketsAtRiskDetector(
                    settings.tickets_at_risk, scopes["tickets_at_risk"], channels, windows
                )
            )
        if settings.understaffing.enabled:
            self.detectors.append(
                UnderstaffingDetector(
                    settings.understaffing, scopes["understaffing"], channels, windows
                )
            )
        if settings.estimated_wait.enabled:
            self.detectors.append(
                EstimatedWaitDetector(
                    settings.estimated_wait, scopes["estimated_wait"], channels, windows
                )
            )
        for name in VOICE_NAMES:
            voice = getattr(settings, name)
            if voice.enabled:
                span = window_spans[resolve_window(voice.window, window_spans)]
                self.detectors.append(build_voice(name, voice, scopes[name], span, windows))
        for t in settings.active_thresholds:
            self.detectors.append(ThresholdDetector(t, scopes[t.name], windows))
        self.last: list[Signal] = []
        """Every signal of the last evaluation, detector by detector, channel by channel."""
        self.active: list[Signal] = []
        """The active ones among ``last`` (what alert rules look at), in the same order."""
        self.last_time = -math.inf
        self._exported: list[Signal] = []
        # Per detector: its last groups, and per group the exported row and the active signals.
        self._groups: list[Groups] = [[] for _ in self.detectors]
        self._by_group: list[list[tuple[Signal, list[Signal]]]] = [[] for _ in self.detectors]

    def evaluate(self, engine: Engine, now: float) -> list[Signal]:
        """Signals of every detector at ``now`` (call once per tick, ``now`` never decreasing).

        Returns the very list of the last call when no detector's signals changed."""
        if now < self.last_time:
            return self.last  # a clock that went back: keep the last verdicts, learn nothing
        readings = Readings(engine, now)
        changed = False
        for d, detector in enumerate(self.detectors):
            groups = detector.evaluate(readings)
            before = self._groups[d]
            if groups is before:
                continue
            changed = True
            rows = self._by_group[d]
            new_rows = []
            for i, group in enumerate(groups):
                if i < len(before) and group is before[i] and i < len(rows):
                    new_rows.append(rows[i])
                elif len(group) == 1:  # its own worst, strictest, ... row
                    new_rows.append((group[0], group if group[0].active else []))
                elif group:
                    new_rows.append((detector.export(group), [s for s in group if s.active]))
                else:
                    new_rows.append((_NO_ROW, []))
            self._groups[d] = groups
            self._by_group[d] = new_rows
        self.last_time = now
        if changed:
            self._collect()
        return self.last

    def _collect(self) -> None:
        """``last``, ``active`` and the exported rows from the per-detector groups."""
        chain = itertools.chain.from_iterable
        self.last = list(chain(chain(self._groups)))
        rows = list(chain(self._by_group))
        self.active = list(chain(active for _, active in rows))
        self._exported = [row for row, _ in rows if row is not _NO_ROW]

    # --- state across restarts ----------------------------------------------------------

    def export_state(self) -> dict[str, object]:
        """Every detector's learnt and temporal state, plus the last verdicts, as plain data
        (numbers, strings, lists, string-keyed dicts): msgpack- and JSON-encodable. Call it
        between two ticks, together with the engine capture it belongs to."""
        detectors: dict[str, object] = {}
        for detector in self.detectors:
            entry: dict[str, object] = {"fingerprint": detector_fingerprint(detector)}
            if isinstance(detector, Stateful):
                entry["state"] = detector.export_state()
            entry["last"] = [_dump_signal(s) for s in self.last if s.detector == detector.name]
            detectors[detector.name] = entry
        return {
            "v": STATE_VERSION,
            "last_time": None if math.isinf(self.last_time) else self.last_time,
            "detectors": detectors,
        }

    def restore_state(self, data: Mapping[str, Any]) -> None:
        """Put back what :meth:`export_state` returned. Per detector: state taken under other
        settings (or channels) is dropped and logged (``detector_state_dropped``), as is state
        that does not read; the detector then starts afresh. Never raises."""
        if not isinstance(data, Mapping) or data.get("v") != STATE_VERSION:
            version = data.get("v") if isinstance(data, Mapping) else None
            log.warning(
                "detector_state_dropped",
                detector="*",
                reason=f"state version {version!r} is not {STATE_VERSION}",
            )
            return
        stored = data.get("detectors")
        if not isinstance(stored, Mapping):
            stored = {}
        for d, detector in enumerate(self.detectors):
            entry = stored.get(detector.name)
            own = None if entry is None else self._restore_one(detector, entry)
            # new detector (nothing stored) or dropped state: it starts afresh
            by_channel: dict[str, list[Signal]] = {}
            for signal in own or []:
                by_channel.setdefault(signal.channel, []).append(signal)
            self._groups[d] = [by_channel.pop(ch, []) for ch in detector.channels]
            self._groups[d].extend(by_channel.values())  # channels no longer in its scope
            self._by_group[d] = [
                (detector.export(group), [s for s in group if s.active]) if group else (_NO_ROW, [])
                for group in self._groups[d]
            ]
        for name in sorted(set(stored) - {d.name for d in self.detectors}):
            log.info("detector_state_dropped", detector=name, reason="no longer configured")
        last_time = data.get("last_time")
        try:
            self.last_time = -math.inf if last_time is None else float(last_time)
        except (TypeError, ValueError):
            self.last_time = -math.inf
        self._collect()

    def _restore_one(self, detector: Detector, entry: object) -> list[Signal] | None:
        """Restore one detector; its last signals, or ``None`` when its state was dropped."""
        name = detector.name
        if not isinstance(entry, Mapping):
            log.warning("detector_state_dropped", detector=name, reason="state is not a mapping")
            return None
        try:
            stored = entry.get("fingerprint")
            if stored not in {
                detector_fingerprint(detector),
                detector_fingerprint(detector, ordered=True),
            }:
                log.warning(
                    "detector_state_dropped",
                    detector=name,
                    reason="settings or channels changed since the snapshot",
                )
                return None
            own = [_load_signal(s) for s in entry.get("last", [])]
            if isinstance(detector, Stateful) and "state" in entry:
                detector.restore_state(entry["state"])
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            log.warning(
                "detector_state_dropped", detector=name, reason=f"state does not read: {exc!r}"
            )
            return None
        return own

    def series(self) -> Iterable[Series]:
        """The latest verdicts as gauges labelled exactly (channel, detector)."""
        return list(self._rows())

    def _rows(self) -> Iterator[Series]:
        fields = (
            ("support_detector_score", "score"),
            ("support_detector_expected", "expected"),
            ("support_detector_threshold", "threshold"),
        )
        for name, attr in fields:
            for s in self._exported:
                labels = (("channel", s.channel), ("detector", s.detector))
                yield Series(name, labels, float(getattr(s, attr)))
