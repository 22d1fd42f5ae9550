"""Backlog growth on a simulated FIFO voice queue: quiet while steady, warns before the breach."""

from __future__ import annotations

import json
import math
import random
from collections import deque
from collections.abc import Iterator

import pytest

from support_monitor.detectors.backlog import seconds_to_breach, slope
from support_monitor.detectors.suite import DetectorSuite
from tests.detectors.detector_streams import RAW, T0, Feed, Script, episodes, only, pick

DEGRADE = 3600  # service falls behind from here on


def _script(seed: int, until: int) -> Script:
    """Random arrivals (mean gap 4 s), FIFO answers with waits of 0-12 s; from DEGRADE on the
    agents take 50% longer per contact, so answers fall behind arrivals."""
    rng = random.Random(seed)
    script = Script()
    t, last_answer, i = 0.0, 0.0, 0
    while t < until:
        t += rng.expovariate(1 / 4)
        if t < DEGRADE:
            answer = max(t + rng.uniform(0, 12), last_answer)
        else:
            answer = max(t + rng.uniform(0, 4), last_answer + rng.uniform(5, 7))
        script.contact(f"c{i}", t, answer - t, queue="billing")
        last_answer, i = answer, i + 1
    return script


def test_quiet_while_steady_and_warns_before_the_breach():
    feed = Feed(only({"backlog_growth": {"channels": ["voice"], **RAW}}))
    script = _script(seed=3, until=DEGRADE + 300)
    active, breach, oldest = [], None, []
    for second in range(DEGRADE + 300):
        script.feed(feed, second)
        s = pick(feed.tick(second), "backlog_growth", "voice")
        assert s.threshold == 10  # half of T = 20 s
        active.append(s.active)
        q = feed.engine.channels["voice"].queues["billing"]
        oldest_ts = q.oldest_queued_ts()
        oldest.append(0.0 if oldest_ts is None else feed.engine.now - oldest_ts)
        if breach is None and oldest[-1] > 20:
            breach = second
    edges = episodes(active)
    assert breach is not None
    before = [e for e in edges if e < DEGRADE]
    assert before == []  # an hour of steady random traffic with waits up to ~12 s: no warning
    first = edges[0]
    lead = breach - first
    print(
        f"backlog growth: warned {lead} s before the first breach at t={breach} "
        f"(degradation from t={DEGRADE}), steady-hour false alarms: {len(before)}"
    )
    assert first > DEGRADE
    assert 3 <= lead <= 120


def test_projection_math():
    assert seconds_to_breach(20, 12, 0.5) == 16
    assert seconds_to_breach(20, 12, 2.0) == 8  # the oldest wait cannot grow faster than 1 s/s
    assert seconds_to_breach(20, 25, 0.5) == 0
    assert math.isinf(seconds_to_breach(20, 12, 0.0))
    points = deque([(0.0, 1.0), (1.0, 2.0), (2.0, 3.0)])
    assert slope(points) == pytest.approx(1.0)
    assert slope(deque([(5.0, 1.0)])) == 0.0


def test_nobody_answering_warns_with_the_horizon_and_min_waiting():
    # two callers, nobody answers: oldest grows at 1 s/s; with horizon 5 s the warning starts
    # when the oldest wait reaches 15 s (projected 5 s to the 20 s target)
    feed = Feed(
        only({"backlog_growth": {"channels": ["voice"], "horizon": 5, "min_waiting": 2, **RAW}})
    )
    feed.event("contact.queued", 0, "voice", contact_id="a", queue="tech")
    first = None
    for second in range(1, 25):
        if second == 3:
            feed.event("contact.queued", 3, "voice", contact_id="b", queue="tech")
        s = pick(feed.tick(second), "backlog_growth", "voice")
        if s.active and first is None:
            first = second
            assert s.score == pytest.approx(5.0)
            assert (
                s.summary
                == "voice: backlog growing, 2 waiting, oldest 15s in tech (answer target 20s)"
            )
    assert first == 15


def test_single_waiting_contact_is_ignored_with_min_waiting_two():
    feed = Feed(only({"backlog_growth": {"channels": ["voice"], "min_waiting": 2, **RAW}}))
    feed.event("contact.queued", 0, "voice", contact_id="a")
    assert not any(pick(feed.tick(t), "backlog_growth", "voice").active for t in range(1, 30))


def _held_then_answered() -> Iterator[tuple[Feed, int]]:
    """A caller every 10 s from 0 to 390 s, nobody answers until 400 s, then all are: the feed
    (default persistence, horizon 5 s, two waiting at least) at each second from 0 to 1499,
    its events applied."""
    feed = Feed(only({"backlog_growth": {"channels": ["voice"], "horizon": 5, "min_waiting": 2}}))
    for second in range(1500):
        if second < 400 and second % 10 == 0:
            feed.event("contact.queued", second, "voice", contact_id=f"c{second}", queue="tech")
        if second == 400:
            for queued in range(0, 400, 10):
                feed.event("contact.answered", 400, "voice", contact_id=f"c{queued}")
        yield feed, second


def test_default_persistence_holds_five_minutes_each_way() -> None:
    # the oldest wait grows at 1 s/s and the condition holds from 15 s (two waiting, horizon
    # 5 s: as above) at every tick. Sustain 5m: active at 315 s, since 15 s. All are answered
    # at 400 s: nobody waits, the condition ends; release 20m: inactive once it held for less
    # than a quarter (300 s) of the last 20 minutes: at 1300 s the window (100, 1300] holds
    # (100, 399], 299 s (at 1299 s: 300 s).
    active = {}
    since = math.nan
    said = {}
    for feed, second in _held_then_answered():
        s = pick(feed.tick(second), "backlog_growth", "voice")
        active[second] = s.active
        if second == 315:
            since = s.since
        if second in (315, 500, 1400):
            said[second] = s.summary
    assert [t for t in active if active[t] != active.get(t - 1, False)] == [315, 1300]
    assert since == T0 + 15
    # the sentence (the alert's title) while growing, while the detector lets go, and after
    assert said == {
        315: "voice: backlog growing, 32 waiting, oldest 5m 15s in tech (answer target 20s)",
        500: "voice: backlog growth easing, 0 waiting, oldest 0s (answer target 20s)",
        1400: "voice: no backlog growth, 0 waiting, oldest 0s (answer target 20s)",
    }


def test_not_easing_while_contacts_wait_past_the_target() -> None:
    # a caller every 10 s from 0 s, nobody answered (horizon 5 s, two waiting at least, default
    # sustain 5m): active at 315 s as above. At 320 s the 30 callers c10..c300 abandon: over the
    # 5m window (30, 330] 30 were queued (c40..c330) and 30 abandoned, so the window no longer
    # shows growth, yet at 330 s c0, c310, c320 and c330 wait (4), the oldest for 330 s, far past
    # T = 20 s: the title must not say "easing".
    feed = Feed(only({"backlog_growth": {"channels": ["voice"], "horizon": 5, "min_waiting": 2}}))
    said = {}
    for second in range(331):
        if second % 10 == 0:
            feed.event("contact.queued", second, "voice", contact_id=f"c{second}", queue="tech")
        if second == 320:
            for queued in range(10, 310, 10):
                feed.event("contact.abandoned", 320, "voice", contact_id=f"c{queued}")
        s = pick(feed.tick(second), "backlog_growth", "voice")
        said[second] = (s.active, s.summary)
    assert said[330] == (
        True,
        (
            "voice: backlog past the answer target, 4 waiting, oldest 5m 30s in tech (answer "
            "target 20s)"
        ),
    )


def test_persistence_survives_a_snapshot() -> None:
    # the scenario above, cut at 500 s (active since 15 s, the condition ended at 400 s): a
    # suite restored from the cut's state (through JSON) says what the uninterrupted one says,
    # ``since`` included, and lets go at the same tick (1300 s)
    restored = None
    for feed, second in _held_then_answered():
        s = pick(feed.tick(second), "backlog_growth", "voice")
        if second == 500:
            settings = feed.settings
            restored = DetectorSuite(settings.detectors, settings.channels, settings.window_seconds)
            restored.restore_state(json.loads(json.dumps(feed.suite.export_state())))
            assert repr(pick(restored.last, "backlog_growth", "voice")) == repr(s)  # NaN fields
            assert s.active
            assert s.since == T0 + 15
        elif restored is not None:
            again = pick(restored.evaluate(feed.engine, T0 + second), "backlog_growth", "voice")
            assert repr(again) == repr(s)
            assert s.active == (second < 1300)
