"""The detector suite: every configured detector, evaluated once per tick in time order.

Pure: state advances only through ``evaluate(engine, now)``; no wall clock, no I/O. The alert rules
consume ``evaluate``'s signals; ``series()`` exports the latest ones as gauges with exactly the
labels ``detector`` and ``channel`` (the dashboards depend on that label set), one row per detector
and channel: the worst of its signals (an active one first), so per-category, per-queue or
per-window-pair signals fold into one line.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping

from detectors.at_risk import TicketsAtRiskDetector
from detectors.backlog import BacklogGrowthDetector
from detectors.burn import SlaBurnDetector
from detectors.complaints import ComplaintSpikeDetector
from detectors.config import DetectorSettings, resolve_window
from detectors.readings import Detector, Readings
from detectors.signal import Signal
from detectors.threshold import ThresholdDetector
from monitor.config import ChannelSettings
from monitor.engine.engine import Engine
from monitor.engine.readout import Series

HELP: dict[str, str] = {
    "support_detector_score": (
        "Value each detector judged (burn rate, complaint count, seconds to breach, metric value);"
        " the worst signal per detector and channel."
    ),
    "support_detector_expected": (
        "What the detector expected (complaint baseline for the window); NaN when it has none."
    ),
    "support_detector_threshold": "The level at which the detector's signal becomes active.",
}


class DetectorSuite:
    """All detectors of one config. Build it again on a config reload (state starts afresh)."""

    help: dict[str, str] = HELP

    def __init__(
        self,
        settings: DetectorSettings,
        channels: Mapping[str, ChannelSettings],
        window_spans: Mapping[str, float],
    ) -> None:
        self.settings = settings
        scopes = settings.scopes(channels, list(window_spans))
        self.detectors: list[Detector] = []
        if settings.sla_burn.enabled:
            self.detectors.append(
                SlaBurnDetector(settings.sla_burn, scopes["sla_burn"], channels)
            )
        if settings.complaint_spike.enabled:
            cs = settings.complaint_spike
            self.detectors.append(
                ComplaintSpikeDetector(
                    cs, scopes["complaint_spike"],
                    window_spans[resolve_window(cs.window, window_spans)],
                )
            )
        if settings.backlog_growth.enabled:
            self.detectors.append(
                BacklogGrowthDetector(settings.backlog_growth, scopes["backlog_growth"], channels)
            )
        if settings.tickets_at_risk.enabled:
            self.detectors.append(
                TicketsAtRiskDetector(settings.tickets_at_risk, scopes["tickets_at_risk"], channels)
            )
        for t in settings.thresholds:
            self.detectors.append(ThresholdDetector(t, scopes[t.name]))
        self.last: list[Signal] = []
        self.last_time = -math.inf
        self._exported: list[Signal] = []

    def evaluate(self, engine: Engine, now: float) -> list[Signal]:
        """Signals of every detector at ``now`` (call once per tick, ``now`` never decreasing)."""
        if now < self.last_time:
            return self.last  # a clock that went back: keep the last verdicts, learn nothing
        readings = Readings(engine, now)
        signals: list[Signal] = []
        exported: list[Signal] = []
        for detector in self.detectors:
            own = detector.evaluate(readings)
            signals.extend(own)
            by_channel: dict[str, list[Signal]] = {}
            for signal in own:
                by_channel.setdefault(signal.channel, []).append(signal)
            exported.extend(detector.export(group) for group in by_channel.values())
        self.last = signals
        self.last_time = now
        self._exported = exported
        return signals

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
