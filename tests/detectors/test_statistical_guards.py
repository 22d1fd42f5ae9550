"""Issue 11 tuning: Wilson volume guards, thresholds relative to T, the complaint CUSUM and
the backlog warning's hysteresis, on hand-made streams with hand-computed expectations."""

from __future__ import annotations

import math
import re

import pytest

from support_monitor.detectors.complaint_cusum import RateCusum
from support_monitor.detectors.evidence import min_trials, wilson
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.errors import ConfigError
from tests.detectors.detector_streams import RAW, Feed, Script, config, only, pick


def _wilson_by_bisection(k: int, n: int, z: float, *, upper: bool) -> float:
    """The Wilson bound as the root of (k/n - p)^2 = z^2 p (1 - p) / n on the wanted side."""
    phat = k / n

    def f(p: float) -> float:
        return (phat - p) ** 2 - z * z * p * (1 - p) / n

    lo, hi = (phat, 1.0) if upper else (0.0, phat)
    if f(lo if upper else hi) > 0 or (upper and f(hi) < 0) or (not upper and f(lo) < 0):
        return hi if upper else lo
    for _ in range(200):
        mid = (lo + hi) / 2
        inside = f(mid) < 0  # between the two roots
        if upper:
            lo, hi = (mid, hi) if inside else (lo, mid)
        else:
            lo, hi = (lo, mid) if inside else (mid, hi)
    return (lo + hi) / 2


@pytest.mark.parametrize(("k", "n"), [(3, 20), (12, 40), (0, 15), (15, 15), (27, 200)])
def test_wilson_bounds_solve_the_score_equation(k: int, n: int) -> None:
    z95 = 1.6448536269514722
    lower, upper = wilson(k, n, 0.95)
    assert lower == pytest.approx(_wilson_by_bisection(k, n, z95, upper=False), abs=1e-9)
    assert upper == pytest.approx(_wilson_by_bisection(k, n, z95, upper=True), abs=1e-9)


def test_wilson_by_hand_3_of_20() -> None:
    # z = 1.6448536, z^2 = 2.705543; centre = (3 + 1.352772) / 22.705543 = 0.191706;
    # half = 1.6448536 * sqrt(3 * 17 / 20 + 0.676386) / 22.705543 = 0.130124
    lower, upper = wilson(3, 20, 0.95)
    assert lower == pytest.approx(0.061582, abs=2e-6)
    assert upper == pytest.approx(0.321830, abs=2e-6)
    assert wilson(0, 0, 0.95) == (0.0, 1.0)


def test_min_trials_is_the_first_n_whose_extreme_bound_passes() -> None:
    # "> 0.1" at 99.9%: z^2 = 9.5495; k = n lower bound n / (n + z^2) > 0.1 needs n > 1.061
    n = min_trials(0.1, 0.999, upward=True)
    assert n == 2
    assert wilson(n, n, 0.999)[0] > 0.1
    assert wilson(n - 1, n - 1, 0.999)[0] <= 0.1
    # "< 0.8" at 99.9%: k = 0 upper bound z^2 / (n + z^2) < 0.8 needs n > 2.387
    assert min_trials(0.8, 0.999, upward=False) == 3


ABANDON = {
    "name": "abandon_rate",
    "metric": "support_abandon_ratio",
    "window": "5m",
    "op": ">",
    "value": 0.1,
    "min_volume": 0,
    "confidence": 0.95,
    "channels": ["voice"],
}


def _abandons(feed: Feed, answered: int, abandoned: int, start: int) -> None:
    script = Script()
    for i in range(answered):
        script.contact(f"a{start}-{i}", start + i, 3)
    for i in range(abandoned):  # waits 30 s: long abandons (short is 5 s)
        script.contact(f"x{start}-{i}", start + i, 30, outcome="abandoned")
    script.feed(feed)


def test_abandon_guard_wants_evidence_not_a_few_calls() -> None:
    feed = Feed(only({"thresholds": [ABANDON]}))
    _abandons(feed, 17, 3, 0)  # 3 of 20 = 15%: Wilson lower bound 6.2% at 95%
    s = pick(feed.tick(60), "abandon_rate", "voice")
    assert s.score == pytest.approx(0.15)
    assert not s.active
    assert "not shown at 0.95 confidence" in s.summary
    # now 12 of 40 = 30%: centre 13.352772 / 42.705543 = 0.312671, half 0.116038: lower 0.19663
    _abandons(feed, 11, 9, 100)
    s = pick(feed.tick(160), "abandon_rate", "voice")
    assert s.score == pytest.approx(0.3)
    assert wilson(12, 40, 0.95)[0] == pytest.approx(0.19663, abs=1e-5)
    assert s.active


WAIT_T = {
    "name": "longest_wait",
    "metric": "support_queue_oldest_wait_seconds",
    "op": ">",
    "value": 4,
    "recover": 3,
    "relative_to": "answer_seconds",
    "floor": 120,
}


def test_longest_wait_relative_to_each_channels_answer_target() -> None:
    # voice T = 20 s: 4 x 20 = 80 s, floored at 120 s; chat T = 60 s: 240 s, recover 180 s
    feed = Feed(only({"thresholds": [WAIT_T]}))
    feed.event("contact.queued", 0, "voice", contact_id="v", queue="billing")
    feed.event("contact.queued", 0, "chat", contact_id="c", queue="sales")
    at_120 = feed.tick(120)
    assert not pick(at_120, "longest_wait", "voice").active  # 120 is not > 120
    assert pick(at_120, "longest_wait", "voice").threshold == 120
    at_121 = feed.tick(121)
    assert pick(at_121, "longest_wait", "voice").active
    assert not pick(at_121, "longest_wait", "chat").active
    assert pick(at_121, "longest_wait", "chat").threshold == 240
    assert not pick(feed.tick(240), "longest_wait", "chat").active
    assert pick(feed.tick(241), "longest_wait", "chat").active


@pytest.mark.parametrize(
    ("in_sla", "active"),
    # one-sided Wilson upper bound of k of 11 (10 offered and the customer waiting past T)
    # at 0.9 (z = 1.2816, z^2 = 1.6424), target 0.8: centre (k + 0.8212) / 12.6424,
    # half 1.2816 sqrt(k (11 - k) / 11 + 0.4106) / 12.6424:
    # 10 -> 0.972, 8 -> 0.861 (not shown below 0.8), 7 -> 0.793, 5 -> 0.640, 0 -> 0.130
    [(10, False), (8, False), (7, True), (5, True), (0, True), (None, True)],
)
def test_longest_wait_with_service_level_evidence(in_sla: int | None, active: bool) -> None:
    # One voice customer waits from 0 s; ten others queue at 60-78 s and are answered 5 s
    # (in SLA) or 21 s (late) later. At 121 s the oldest wait is past 120 s: the detector pages
    # only while the 5-minute service level, the waiting customer counted as late, is shown
    # below the 80% target at 0.9 (``None``: nothing offered, 0 of 1: upper bound 0.622).
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.9}]}))
    feed.event("contact.queued", 0, "voice", contact_id="v", queue="billing")
    for i in range(10 if in_sla is not None else 0):
        queued = 60 + 2 * i
        feed.event("contact.queued", queued, "voice", contact_id=f"c{i}", queue="tech")
        wait = 5 if in_sla is not None and i < in_sla else 21
        feed.event("contact.answered", queued + wait, "voice", contact_id=f"c{i}")
    signal = pick(feed.tick(121), "longest_wait", "voice")
    assert signal.active is active
    if in_sla is not None and not active:
        shown = f"{in_sla / 11:.0%} of 10 offered and 1 waiting past T over 5m not shown below"
        assert f"service level {shown}" in signal.summary


def test_service_level_evidence_counts_the_customer_it_pages_for() -> None:
    # Two chat customers (T = 60 s, pages above 240 s) wait from 0 s and 100 s with nothing
    # offered: 0 of 2, upper bound 0.451 at 0.9: active at 241 s. At 400 s the first is
    # answered after 400 s: 0 in SLA of 1 offered, and the second has waited 300 s, past the
    # level. With the waiting one
    # counted as late, 0 of 2 has an upper bound of 1.6424 / 3.6424 = 0.451 at 0.9: shown
    # below 80%, so the page goes on (0 of 1 alone, 0.622, would have let it go while the
    # second customer still waits).
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.9}]}))
    feed.event("contact.queued", 0, "chat", contact_id="a", queue="sales")
    feed.event("contact.queued", 100, "chat", contact_id="b", queue="sales")
    assert pick(feed.tick(241), "longest_wait", "chat").active
    feed.event("contact.answered", 400, "chat", contact_id="a")
    signal = pick(feed.tick(400), "longest_wait", "chat")
    assert signal.active
    assert signal.score == 300


def test_service_level_evidence_lets_a_dead_queue_page_in_a_healthy_channel() -> None:
    # billing has no agent (a customer every 30 s, each abandoning after 240 s); tech answers
    # one every 6 s after 5 s. The 5-minute service level stays above target (tech), but more
    # than one customer waits past T: the gate only holds back a lone one.
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.9}]}))
    events = []
    for i in range(20):
        events.append((i * 30.0, "contact.queued", {"contact_id": f"b{i}", "queue": "billing"}))
        events.append((i * 30.0 + 240, "contact.abandoned", {"contact_id": f"b{i}"}))
    for i in range(100):
        events.append((i * 6 + 0.5, "contact.queued", {"contact_id": f"t{i}", "queue": "tech"}))
        events.append((i * 6 + 5.5, "contact.answered", {"contact_id": f"t{i}"}))
    events.sort(key=lambda e: e[0])
    for at, kind, fields in events:
        if at > 300:
            break
        feed.event(kind, at, "voice", **fields)
    signal = pick(feed.tick(300), "longest_wait", "voice")
    # billing: b0..b10 queued at 0..300 s, b0-b2 abandoned by 300 s; b3 (90 s) has waited 210 s
    assert signal.active
    assert signal.score == 210


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({**WAIT_T, "confidence": 0.99}, "thresholds[0].confidence"),
        ({**ABANDON, "service_level_evidence": 0.9}, "thresholds[0].service_level_evidence"),
        ({**ABANDON, "relative_to": "answer_seconds"}, "thresholds[0].relative_to"),
        ({**ABANDON, "floor": 30}, "thresholds[0].floor"),
    ],
)
def test_guards_only_where_they_mean_something(block: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_settings(config({"thresholds": [block]}))


# ---------------------------------------------------------------------- complaint CUSUM

HOUR0 = 1_772_409_600.0  # 2026-03-02 00:00 UTC, a Monday


def _slot(t: float) -> int:
    return int((t - HOUR0) // 3600) % 168


def test_cusum_by_hand() -> None:
    c = RateCusum(ratio=4.0, threshold=10.0, prior_per_hour=6.0, relearn_hours=2)
    t = HOUR0 + 600
    assert not c.step(t, 0, _slot)  # the first tick only starts the count
    # 10 complaints in 60 s: S = 10 ln 4 - 3 x (6 / 3600) x 60 = 13.563, capped at 10 + ln 4
    assert c.step(t + 60, 10, _slot)
    assert c.stat == pytest.approx(10 + math.log(4))
    # then no complaint: S falls 0.005 a second; below 10 after 1.386 / 0.005 = 277.3 s
    assert c.step(t + 60 + 270, 10, _slot)
    assert c.stat == pytest.approx(10 + math.log(4) - 0.005 * 270)
    assert not c.step(t + 60 + 290, 10, _slot)


def test_cusum_never_learns_a_spike_hour_even_in_warm_up() -> None:
    c = RateCusum(ratio=4.0, threshold=10.0, prior_per_hour=6.0, relearn_hours=2)
    total = 0
    for minute in range(4 * 60 + 1):  # 6/h, but 60/h in hour 1
        now = HOUR0 + minute * 60
        if minute % 10 == 5:
            total += 1
        if 60 <= minute < 120 and minute % 10 != 5:
            total += 1  # 54 more in hour 1
        c.step(now, total, _slot)
    # hour 0 was not seen from its start (the first tick starts the count); hour 1 was flagged;
    # hour 2 too: at its start S was at the cap 11.386 and took 277 s to fall below 10
    assert 0 not in c.week
    assert 1 not in c.week
    assert 1 not in c.day
    assert 2 not in c.week
    assert c.skipped == []  # hour 3 was learned; the held-back hour 2 was dropped
    assert c.week[3] == [6.0, 1.0]
    # hour-of-week 6 (n 1), hour-of-day 6 (n 1), day factor (10 + 6) / (10 + 6) = 1: they
    # agree, so the usual rate is their blend, 6 (no margin by default)
    assert c.per_hour(3) == pytest.approx(6.0)
    # an unseen hour: max(all-hours mean 6, recent-hours mean 6, prior 6)
    assert c.per_hour(1) == 6.0


def test_cusum_catches_a_5x_rise_no_window_test_sees() -> None:
    # usual 4 complaints an hour (the prior), then one every 3 minutes (20/h): one per 5-minute
    # window or two, below the window test's min_count of 5
    c = RateCusum(ratio=4.0, threshold=10.0, prior_per_hour=4.0, relearn_hours=2)
    total = 0
    first = None
    for second in range(0, 3 * 3600, 60):
        every = 15 if second < 3600 else 3
        if (second // 60) % every == 0:
            total += 1
        if c.step(HOUR0 + second, total, _slot) and first is None:
            first = second - 3600
    # S is 0 at minute 60 (hour 0's complaints decayed). Each minute takes 3 x 4/3600 x 60 =
    # 0.2; the j-th complaint (minute 60 + 3(j - 1)) leaves S = j ln 4 - 0.2 (3j - 2)
    # = 0.7863 j + 0.4, first >= 10 at j = 13: minute 96, 36 minutes into the rise
    assert first == 36 * 60


# ---------------------------------------------------------------------- backlog hysteresis


def test_backlog_warning_holds_while_the_head_is_past_half_of_t() -> None:
    feed = Feed(only({"backlog_growth": {"channels": ["voice"], **RAW}}))
    script = Script()
    # three callers queue at 0, 1, 2 s and nobody answers: the oldest wait grows at 1 s/s;
    # T = 20 s, horizon 10 s: active once (20 - w) / 1 <= 10, i.e. at w = 10 (t = 10)
    for i in range(3):
        script.contact(f"c{i}", i, 100)
    script.feed(feed, 2)
    active = {}
    for t in range(3, 40):
        if t == 25:  # the head is answered: the oldest is now c1 (24 s), the slope dips
            feed.event("contact.answered", t, "voice", contact_id="c0", queue="billing")
        active[t] = pick(feed.tick(t), "backlog_growth", "voice").active
    assert not active[9]
    assert active[10]
    # from 25 on the slope over the last 20 s is below 1 but the oldest (24 s+) is past T/2
    assert all(active[t] for t in range(10, 40))


def test_backlog_surge_cusum_fires_when_arrivals_quadruple() -> None:
    # the usual rate of this hour (Monday 00:00 UTC, hour of the day 0) learned as 60/h over 5
    # samples: expected 60 + sqrt(60 / 5) = 63.464/h. Contacts arrive every 15 s (240/h) and are
    # answered at once (nobody waits: the projection stays quiet). Each arrival adds ln 1.4 =
    # 0.33647, each second takes 0.4 x 63.464 / 3600 = 0.0070515. The first tick only starts the
    # count; until the first arrival S stays at 0; at the j-th arrival (t = 15 j) it is
    # 0.32942 + (j - 1) x 0.23070: 7.9425 at j = 34, 8.1732 at j = 35 (t = 525) >= 8.
    # (surge_min_wait 0: the surge counts with nobody waiting, to see the CUSUM on its own)
    feed = Feed(only({"backlog_growth": {"channels": ["voice"], **RAW, "surge_min_wait": 0}}))
    backlog = next(d for d in feed.suite.detectors if d.name == "backlog_growth")
    backlog._surge["voice"].day[0] = [60.0, 5.0]  # type: ignore[attr-defined]
    script = Script()
    for j in range(1, 60):
        script.contact(f"c{j}", 15 * j, 0)
    first = None
    for t in range(900):
        script.feed(feed, t)
        s = pick(feed.tick(t), "backlog_growth", "voice")
        if s.active and first is None:
            first = t
            assert s.summary == (
                "voice: arrivals above 1.4x the usual rate for this hour, 0 waiting, oldest 0s "
                "(answer target 20s)"
            )
    assert first == 525


def test_a_surge_answered_at_once_is_no_backlog() -> None:
    # By default the surge counts only while contacts wait, the oldest for T/2 or more: the
    # surge CUSUM alone paged healthy Poisson traffic 14-22 times a channel-week (most with
    # nobody waiting). The same quadrupled arrivals as above, answered at once: never active
    # (with surge_min_wait 0 the surge CUSUM made it active at t = 525).
    def first_active(wait: float, **gate: float) -> float | None:
        feed = Feed(only({"backlog_growth": {"channels": ["voice"], **RAW, **gate}}))
        backlog = next(d for d in feed.suite.detectors if d.name == "backlog_growth")
        backlog._surge["voice"].day[0] = [60.0, 5.0]  # type: ignore[attr-defined]
        script = Script()
        for j in range(1, 60):
            script.contact(f"c{j}", 15 * j, wait)
        for t in range(900):
            script.feed(feed, t)
            if pick(feed.tick(t), "backlog_growth", "voice").active:
                return t
        return None

    assert first_active(0) is None
    assert first_active(0, surge_min_wait=0) is not None  # the same stream, the gate off


def test_a_surge_whose_callers_give_up_is_a_backlog() -> None:
    # Short patience: the quadrupled arrivals above, but every even caller hangs up after 6 s
    # (a long abandon, below T/2 = 10 s: nobody ever waits T/2, so the queue gate never holds)
    # and the odd ones are answered at once. The surge CUSUM is driven by the arrivals alone:
    # active at t = 525 (j = 35) as above. By then 18 were answered (j = 1, 3, ..., 35) and 17
    # gave up (j = 2, ..., 34): the 1h service level is 18 / 35 = 51.4%, below the 80% target,
    # so the surge counts. With callers giving up at 1 in 10 (the 1h service level stays at or
    # above 90%) it does not, nor with surge_service_window null.
    def first_active(every: int, **gate: object) -> tuple[float, str] | None:
        feed = Feed(only({"backlog_growth": {"channels": ["voice"], **RAW, **gate}}))
        backlog = next(d for d in feed.suite.detectors if d.name == "backlog_growth")
        backlog._surge["voice"].day[0] = [60.0, 5.0]  # type: ignore[attr-defined]
        script = Script()
        for j in range(1, 60):
            if j % every == 0:
                script.contact(f"c{j}", 15 * j, 6, outcome="abandoned")
            else:
                script.contact(f"c{j}", 15 * j, 0)
        for t in range(900):
            script.feed(feed, t)
            s = pick(feed.tick(t), "backlog_growth", "voice")
            if s.active:
                return t, s.summary
        return None

    summary = (
        "voice: arrivals above 1.4x the usual rate for this hour, service level 51% over 1h "
        "(target 80%), 0 waiting, oldest 0s (answer target 20s)"
    )
    assert first_active(2) == (525, summary)
    assert first_active(10) is None
    assert first_active(2, surge_service_window=None) is None
    assert first_active(2, surge_service_window="5m") is not None


def test_service_level_evidence_only_holds_back_a_start() -> None:
    # A voice customer (T = 20 s, pages above 120 s, recover below 60 s) waits from 0 s with
    # nothing offered: 0 of 1, upper bound 1.6424 / 2.6424 = 0.622 at 0.9: active at 121 s.
    # Ten others are then answered on time (at 140 s the 5-minute service level is 10 of 10
    # offered and 1 waiting past T: upper bound 0.972 at 0.9, not shown below 80%). The page
    # stays active while the customer it is for waits past the level; once the wait is over
    # (answered at 200 s), it ends. A second lone customer past the level in the same good
    # service level does not start a page.
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.9}]}))
    feed.event("contact.queued", 0, "voice", contact_id="v", queue="billing")
    assert pick(feed.tick(121), "longest_wait", "voice").active
    for i in range(10):
        feed.event("contact.queued", 122 + i, "voice", contact_id=f"c{i}", queue="tech")
        feed.event("contact.answered", 125 + i, "voice", contact_id=f"c{i}")
    held = pick(feed.tick(140), "longest_wait", "voice")
    assert held.active
    assert held.score == 140
    assert "not judged" not in held.summary
    feed.event("contact.queued", 190, "voice", contact_id="w", queue="billing")
    feed.event("contact.answered", 200, "voice", contact_id="v")
    assert not pick(feed.tick(200), "longest_wait", "voice").active
    lone = pick(feed.tick(311), "longest_wait", "voice")  # w has waited 121 s
    assert lone.score == 121
    assert not lone.active
    assert "not judged: service level" in lone.summary


def test_one_customer_alone_is_held_back_two_are_not() -> None:
    # At 0.99 (the default; z = 2.3263, z^2 = 5.4119), with nothing else offered: one voice
    # customer past the level is 0 in SLA of 1, upper bound 5.4119 / 6.4119 = 0.844, not below
    # the 80% target: held back (a 1-call hour at 0% is no incident). A second customer past T
    # makes it 0 of 2, 5.4119 / 7.4119 = 0.730: judged, and the page may start.
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.99}]}))
    feed.event("contact.queued", 0, "voice", contact_id="a", queue="billing")
    lone = pick(feed.tick(121), "longest_wait", "voice")
    assert not lone.active
    assert "service level 0% of 0 offered and 1 waiting past T over 5m" in lone.summary
    feed.event("contact.queued", 122, "voice", contact_id="b", queue="tech")
    two = pick(feed.tick(143), "longest_wait", "voice")  # b has waited 21 s, past T
    assert two.active
    assert two.score == 143


def _good_hour_then_a_lone_customer(feed: Feed, late: int = 2) -> None:
    """Voice (T = 20 s, pages above 120 s): 40 contacts answered 5 s after queueing at 0, 60,
    ..., 2340 s; ``late`` answered late (25 s after queueing at 3000, 3004, ... s); then one
    customer waits from 3050 s with nobody else offered."""
    for i in range(40):
        feed.event("contact.queued", i * 60, "voice", contact_id=f"c{i}", queue="tech")
        feed.event("contact.answered", i * 60 + 5, "voice", contact_id=f"c{i}")
    for i in range(late):
        feed.event("contact.queued", 3000 + 4 * i, "voice", contact_id=f"late{i}", queue="tech")
        feed.event("contact.answered", 3025 + 4 * i, "voice", contact_id=f"late{i}")
    feed.event("contact.queued", 3050, "voice", contact_id="v", queue="billing")


def test_a_lone_customer_in_a_good_hour_is_held_back() -> None:
    # At 0.999 (z^2 = 9.5495), at 3171 s the customer has waited 121 s. Over 5m: 0 in SLA of
    # 2 offered and 1 waiting past T, upper bound 9.5495 / 12.5495 = 0.761, below the 80%
    # target, but on 3 contacts, fewer than 10: the hour must show it too. Over 1h: 40 of 42
    # offered and 1 waiting, 40 / 43 = 93%, whose upper bound is above it (the bound is above
    # the share). One customer at night after a few slow answers in an hour that met its
    # target: held back.
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.999}]}))
    _good_hour_then_a_lone_customer(feed)
    lone = pick(feed.tick(3171), "longest_wait", "voice")
    assert lone.score == 121
    assert not lone.active
    assert "service level 93% of 42 offered and 1 waiting past T over 1h" in lone.summary
    # the same stream with the 5-minute window alone: its evidence lets the page start
    single = Feed(
        only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.999}]}), windows=["5m"]
    )
    _good_hour_then_a_lone_customer(single)
    assert pick(single.tick(3171), "longest_wait", "voice").active


def test_a_lone_customer_pages_at_twice_the_level() -> None:
    # The customer above is held back until the wait reaches twice the 120 s level: at 239 s
    # still held, at 240 s the page may start whatever the service level says.
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.999}]}))
    _good_hour_then_a_lone_customer(feed)
    assert not pick(feed.tick(3289), "longest_wait", "voice").active
    late = pick(feed.tick(3290), "longest_wait", "voice")
    assert late.score == 240
    assert late.active


def test_a_bad_5_minutes_of_10_contacts_is_evidence_alone() -> None:
    # Ten late answers in the last 5 minutes: 0 in SLA of 10 offered and 1 waiting past T,
    # upper bound 9.5495 / 20.5495 = 0.465 at 0.999, on 11 contacts (10 or more): judged on
    # the 5 minutes alone, though the hour, 40 of 50 offered and 1 waiting (78%), is not
    # shown below 80% (its upper bound is above the share). The onset of a collapse pages.
    feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.999}]}))
    _good_hour_then_a_lone_customer(feed, late=10)
    signal = pick(feed.tick(3171), "longest_wait", "voice")
    assert signal.score == 121
    assert signal.active
    # nine late answers (0 of 9 and 1 waiting: 10 contacts) are still enough; eight are not
    for late, active in ((9, True), (8, False)):
        feed = Feed(only({"thresholds": [{**WAIT_T, "service_level_evidence": 0.999}]}))
        _good_hour_then_a_lone_customer(feed, late=late)
        assert pick(feed.tick(3171), "longest_wait", "voice").active is active


def test_a_level_of_0_keeps_the_lone_customer_evidence() -> None:
    # support_queue_breached_waiting > 0: twice a level of 0 is 0, which would let every
    # customer through; the ceiling only applies to a level above 0. One voice customer past
    # T (20 s) at 25 s with nothing offered: 0 of 1, upper bound 9.5495 / 10.5495 = 90.5% at
    # 0.999, not below 80%: held back, however long the wait.
    breached = {
        "name": "breached",
        "metric": "support_queue_breached_waiting",
        "op": ">",
        "value": 0,
        "service_level_evidence": 0.999,
    }
    feed = Feed(only({"thresholds": [breached]}))
    feed.event("contact.queued", 0, "voice", contact_id="a", queue="billing")
    for at in (25, 600):
        signal = pick(feed.tick(at), "breached", "voice")
        assert signal.score == 1
        assert not signal.active
