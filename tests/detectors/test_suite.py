"""The suite: default config end to end, exported label set, help texts, last signals."""

from __future__ import annotations

from support_monitor.detectors.suite import DetectorSuite
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from tests.detectors.detector_streams import Feed, Script

GAUGES = {"support_detector_score", "support_detector_expected", "support_detector_threshold"}


def test_default_suite_exports_exactly_detector_and_channel():
    feed = Feed()
    script = Script()
    for i in range(30):
        script.contact(f"c{i}", 5 * i, 30 if i % 2 else 5, queue="tech")
    script.feed(feed)
    for i in range(6):
        feed.event("complaint.received", 200 + i, "chat", category="x")
    signals = feed.tick(300)
    assert feed.suite.last == signals
    rows = list(feed.suite.series())
    assert {r.name for r in rows} == GAUGES
    assert set(feed.suite.help) == GAUGES
    keys = [(r.name, r.labels) for r in rows]
    assert len(keys) == len(set(keys))  # one row per (gauge, detector, channel)
    for r in rows:
        assert [k for k, _ in r.labels] == ["channel", "detector"]
    pairs = {(dict(r.labels)["detector"], dict(r.labels)["channel"]) for r in rows}
    assert ("sla_burn", "voice") in pairs
    assert ("tickets_at_risk", "email") in pairs
    assert ("sla_burn", "email") not in pairs
    # every signal has bounded labels only
    for s in signals:
        assert {k for k, _ in s.labels} <= {"queue", "category", "sla", "long", "short", "severity"}
        assert s.summary


def test_clock_going_back_keeps_the_last_verdicts():
    feed = Feed()
    first = feed.tick(100)
    assert feed.suite.evaluate(feed.engine, feed.settings.exporter.tick_seconds) is first


def test_suite_is_built_from_settings_parts():
    settings = parse_settings({})
    suite = DetectorSuite(settings.detectors, settings.channels, settings.window_seconds)
    engine = Engine(settings)
    engine.advance(1_000_000.0)
    assert len(suite.evaluate(engine, 1_000_000.0)) == len(suite.last) > 0
