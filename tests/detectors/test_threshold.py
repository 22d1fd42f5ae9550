"""Threshold detector on real engine state: exporter numbers, hysteresis, volume guards."""

from __future__ import annotations

import math

import pytest

from support_monitor.detectors.signal import Signal
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.readout import series
from support_monitor.monitor.errors import ConfigError
from tests.detectors.detector_streams import T0 as _T0
from tests.detectors.detector_streams import Feed, Script, config, only, pick

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
        signal = pick(out[second], "longest_wait", "voice")
        if signal.threshold == threshold["value"]:
            assert signal.score == exported
        else:  # the sustained level's signal: the worst value of its span, at least the gauge
            assert signal.score >= exported
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


# --- the sustained level (``sustained``): a lower level that must hold most of the time -------

HELD = {**WAIT, "sustained": {"value": 10, "share": 0.32, "over": "20s", "release": "10s"}}


def _flicker_script() -> Script:
    # One contact at a time, each answered after 14-16 s: the oldest wait passes 10 s at
    # 11..15 (a), 27..29 (b) and 41..43 (c), never 30 s (the threshold's own level).
    script = Script()
    script.contact("a", 0, 16)
    script.contact("b", 16, 14)
    script.contact("c", 30, 14)
    return script


def test_a_sustained_level_fires_on_a_value_that_keeps_coming_back() -> None:
    out = _run(HELD, _flicker_script(), 50)
    # A tick at which the oldest wait is past 10 s counts the second before it as held. At 27
    # the last 20 s, (7, 27], hold 10-15 and 26-27: 6 s, 0.30 < 0.32. At 28, (8, 28] holds
    # 10-15 and 26-28: 7 s, 0.35: active, since 10. Released at the first tick without the
    # condition at which under a quarter of the last 10 s was held: at 36, (26, 36] holds
    # 26-29 (3 s, 0.3); at 37, (27, 37] holds 27-29 (2 s, 0.2). At 43, (23, 43] holds 26-29
    # and 40-43: 6 s, 0.30: not active again.
    assert _active_seconds(out) == list(range(28, 37))
    s = pick(out[28], "longest_wait", "voice")
    # the score is the worst oldest wait of the last 20 s: a waited 15 s at 15 (it was answered
    # at 16); now b has waited 12 s
    assert (s.score, s.threshold, s.since) == (15, 10, 10 + _T0)
    assert s.summary.endswith(
        "for 35% of the last 20s (sustained level, active from 32%); worst 15, now 12"
    )
    assert s.live  # b is past the level now
    # at 36 the last 20 s, (16, 36], saw b at 13 s (29) at worst; nobody waits now
    released = pick(out[36], "longest_wait", "voice")
    assert released.score == 13
    assert not released.live  # held by the persistence only: a rule does not fire on it
    quiet = pick(out[27], "longest_wait", "voice")
    assert (quiet.active, quiet.threshold) == (False, 30)


def test_without_a_sustained_level_the_same_waits_never_fire() -> None:
    assert _active_seconds(_run(WAIT, _flicker_script(), 50)) == []


def test_the_threshold_level_itself_still_speaks_for_the_signal() -> None:
    script = _flicker_script()
    script.contact("d", 44, 40)  # waits 40 s: past 30 s at 75..83
    out = _run(HELD, script, 90)
    s = pick(out[80], "longest_wait", "voice")
    assert (s.active, s.threshold, s.score) == (True, 30, 36)
    assert math.isnan(s.since)


def test_the_sustained_level_survives_a_snapshot() -> None:
    # one run straight through; a second cut at 28 (active), restored into a third
    whole, first, resumed = (Feed(only({"thresholds": [HELD]})) for _ in range(3))
    scripts = {id(feed): _flicker_script() for feed in (whole, first, resumed)}
    for second in range(29):
        for feed in (whole, first):
            scripts[id(feed)].feed(feed, second)
            feed.tick(second)
    scripts[id(resumed)].feed(resumed, 28)
    resumed.suite.restore_state(first.suite.export_state())
    seen = []
    for second in range(29, 50):
        for feed in (whole, resumed):
            scripts[id(feed)].feed(feed, second)
        a = pick(whole.tick(second), "longest_wait", "voice")
        b = pick(resumed.tick(second), "longest_wait", "voice")
        assert (a.active, a.score, a.threshold, a.since) == (
            b.active,
            b.score,
            b.threshold,
            b.since,
        ), second
        seen.append(a.active)
    assert seen[:8] == [True] * 8  # 29..36: active across the cut


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        (
            {**HELD, "sustained": {"value": 30}},
            r"thresholds\[0\]\.sustained\.value: 30 must be below value 30",
        ),
        (
            {**HELD, "per_queue": True},
            r"thresholds\[0\]\.sustained: only a live gauge judged per channel",
        ),
        (
            {
                "name": "sl",
                "metric": "support_service_level_ratio",
                "window": "5m",
                "op": "<",
                "value": 0.5,
                "sustained": {"value": 0.6},
            },
            r"thresholds\[0\]\.sustained: only a live gauge",
        ),
    ],
)
def test_a_sustained_level_that_cannot_work_is_refused(
    threshold: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(config(only({"thresholds": [threshold]})))
