"""Threshold detector on real engine state: exporter numbers, hysteresis, volume guards."""

from __future__ import annotations

import math

import pytest

from support_monitor.detectors.signal import Signal
from support_monitor.monitor.engine.readout import series
from tests.detectors.detector_streams import Feed, Script, only, pick

WAIT = {
    "name": "longest_wait",
    "metric": "support_queue_oldest_wait_seconds",
    "op": ">",
    "value": 30,
}


def _run(threshold: dict[str, object], script: Script, until: int) -> dict[int, list[Signal]]:
    feed = Feed(only({"thresholds": [threshold]}))
    out = {}
    for second in range(until + 1):
        script.feed(feed, second)
        out[second] = feed.tick(second)
        exported = max(
            row.value
            for row in series(feed.engine)
            if row.name == "support_queue_oldest_wait_seconds" and row.label("channel") == "voice"
        )
        assert pick(out[second], "longest_wait", "voice").score == exported
    return out


def _wait_script() -> Script:
    script = Script()
    script.contact("a", 0, 35, queue="billing")  # oldest: 31 s at t=31, answered at t=35
    script.contact("b", 22, 18, queue="tech")  # then oldest: 13 s at t=35, answered at t=40
    return script


def _active_seconds(out, **labels) -> list[int]:
    return [t for t, sig in out.items() if pick(sig, "longest_wait", "voice", **labels).active]


def test_oldest_wait_without_hysteresis_follows_the_value():
    out = _run(WAIT, _wait_script(), 45)
    assert _active_seconds(out) == [31, 32, 33, 34]  # 30 is not > 30; at 35 the oldest is 13 s
    assert pick(out[35], "longest_wait", "voice").score == 13


def test_recover_keeps_it_active_until_the_value_crosses_back():
    out = _run({**WAIT, "recover": 10}, _wait_script(), 45)
    # at 35..39 the oldest (b) waits 13..17 s: above recover 10, still active; b answered at 40
    assert _active_seconds(out) == [31, 32, 33, 34, 35, 36, 37, 38, 39]
    s = pick(out[36], "longest_wait", "voice")
    assert "not yet back past 10" in s.summary


def test_per_queue_signals_carry_the_queue_label():
    feed = Feed(only({"thresholds": [{**WAIT, "per_queue": True}]}))
    script = _wait_script()
    script.feed(feed, 32)
    signals = feed.tick(32)
    assert pick(signals, "longest_wait", "voice", queue="billing").active
    tech = pick(signals, "longest_wait", "voice", queue="tech")
    assert not tech.active
    assert tech.score == 10
    # the exported gauge keeps exactly {detector, channel}: the worst queue
    rows = [r for r in feed.suite.series() if r.name == "support_detector_score"]
    assert [(r.labels, r.value) for r in rows] == [
        ((("channel", "voice"), ("detector", "longest_wait")), 32.0),
        ((("channel", "chat"), ("detector", "longest_wait")), 0.0),
    ]


SL = {
    "name": "sl_low",
    "metric": "support_service_level_ratio",
    "window": "5m",
    "op": "<",
    "value": 0.8,
}


def test_one_call_at_zero_service_level_is_not_an_incident():
    feed = Feed(only({"thresholds": [SL]}))
    script = Script()
    script.contact("late", 0, 30)  # the only call: answered late, SL 0
    for i in range(5):  # short abandons are not offered contacts
        script.contact(f"short{i}", 1 + i, 2, outcome="abandoned")
    script.feed(feed)
    s = pick(feed.tick(40), "sl_low", "voice")
    assert s.score == 0.0
    assert not s.active
    assert "only 1 offered in 5m (min_volume 10)" in s.summary
    # nine more calls, seven in SLA: SL 7/10 = 0.7 with volume 10 -> active
    for i in range(9):
        script.contact(f"c{i}", 50 + i, 10 if i < 7 else 25)
    script.feed(feed)
    s = pick(feed.tick(90), "sl_low", "voice")
    assert s.score == pytest.approx(0.7)
    assert s.active


def test_min_volume_zero_and_empty_window_is_nan_and_inactive():
    feed = Feed(only({"thresholds": [{**SL, "min_volume": 0}]}))
    s = pick(feed.tick(10), "sl_low", "voice")
    assert math.isnan(s.score)
    assert not s.active


def test_csat_guard_counts_ratings():
    cfg = {
        "name": "csat",
        "metric": "support_csat_ratio",
        "window": "1h",
        "op": "<",
        "value": 0.7,
        "min_volume": 4,
        "channels": ["email"],
    }
    feed = Feed(only({"thresholds": [cfg]}))
    for i in range(3):
        feed.event("ticket.rated", 10 + i, "email", rating=1)
    assert not pick(feed.tick(20), "csat", "email").active
    feed.event("ticket.rated", 21, "email", rating=5)
    s = pick(feed.tick(22), "csat", "email")
    assert s.score == 0.25
    assert s.active


def test_tickets_at_risk_per_sla_threshold():
    cfg = {
        "name": "fr_risk",
        "metric": "support_tickets_at_risk",
        "sla": "first_response",
        "op": ">=",
        "value": 2,
    }
    feed = Feed(only({"thresholds": [cfg]}))
    feed.event("ticket.created", 0, "email", ticket_id="t1")
    feed.event("ticket.created", 1, "email", ticket_id="t2")
    # lead time is 10% of 3600 s: at risk from 3240 s; timers fire 5 s (allowed lateness) later
    assert not pick(feed.tick(3240), "fr_risk", "email").active
    s = pick(feed.tick(3250), "fr_risk", "email")
    assert s.score == 2
    assert s.active
