"""The first-response drought of ``tickets_at_risk``: a stop is seen before any ticket is at
risk; a slowdown to half is not a drought; the first day is not judged."""

from __future__ import annotations

import math

from support_monitor.detectors.signal import Signal
from tests.detectors.detector_streams import Feed, only, pick

HOUR, DAY = 3600, 86400
GAP = 180  # a ticket every 3 minutes, answered 60 s after it is created: 20 responses an hour
STOP = DAY + 10 * HOUR  # Tuesday 10:00 UTC


def _feed_until(feed: Feed, until: int, *, stop: int) -> list[bool]:
    """Tickets at ``i * GAP``, each answered 60 s later, none created from ``stop`` on
    answered; tick every 60 s. The first-response signal's activity per tick (its summary
    and score at the first active tick in ``feed.first``)."""
    active: list[bool] = []
    for t in range(0, until, 60):
        if t % GAP == 0:
            feed.event("ticket.created", t, "email", ticket_id=f"t{t}")
        created = t - 60
        if created >= 0 and created % GAP == 0 and created < stop:
            feed.event("ticket.responded", t, "email", ticket_id=f"t{created}")
        s = pick(feed.tick(t), "tickets_at_risk", "email", sla="first_response")
        if s.active and not any(active):
            FIRST_ACTIVE[id(feed)] = s
        active.append(s.active)
    return active


FIRST_ACTIVE: dict[int, Signal] = {}


def test_a_stop_is_paged_before_any_ticket_is_at_risk():
    feed = Feed(only({"tickets_at_risk": {}}))
    until = STOP + HOUR
    active = _feed_until(feed, until, stop=STOP)
    # Monday learned every hour at 20 responses; on Tuesday 09:00-11:00 the hour-of-week slot is
    # not learned yet, the hour-of-day slot once (n = 1) and the day factor is (10 + 60) / (10 +
    # 60) = 1: usual rate 20 - 1 x sqrt(20 / 1) an hour (one standard error low). The last
    # response is at 09:58 (ticket 09:57); from there the statistic gains (1 - 0.1) x rate per
    # second of silence and is active at 11 (the responses before kept it at 0: each takes
    # ln(10) = 2.30 off, the 3 minutes between add only 0.70).
    rate = (20 - math.sqrt(20)) / HOUR
    last = STOP - GAP + 60
    crossing = last + 11 / (0.9 * rate)  # 2,833.6 s after the last response: 10:45:13.6
    first = next(60 * i for i, a in enumerate(active) if a)
    assert first == 60 * math.ceil(crossing / 60)  # the first tick at or after the crossing
    assert not any(active[: first // 60])
    s = FIRST_ACTIVE[id(feed)]  # no ticket is at risk yet: the first unanswered one is from 10:54
    assert (s.score, s.threshold) == (0, 4)
    assert "first responses below 0.1x the usual rate" in s.summary


def test_at_risk_counts_alone_miss_that_stop():
    # without the drought CUSUM: a ticket every 3 minutes puts at most 2 in the 6-minute lead
    # window (ages 3,240-3,600 s), never the default 4, while none is answered for 2 hours
    feed = Feed(only({"tickets_at_risk": {"drought_threshold": 0}}))
    assert not any(_feed_until(feed, STOP + 2 * HOUR, stop=STOP))
    assert (
        pick(feed.tick(STOP + 2 * HOUR), "tickets_at_risk", "email", sla="first_response").score
        == 2
    )


def test_half_the_usual_responses_is_no_drought():
    # Tuesday from 10:00 only every second ticket gets a response (10 an hour): each response
    # takes ln(10) = 2.30 off, the 6 minutes between add 0.9 x 15.5 / 10 = 1.40: stays at 0
    feed = Feed(only({"tickets_at_risk": {"min_count": 1000}}))
    for t in range(0, STOP, 60):
        if t % GAP == 0:
            feed.event("ticket.created", t, "email", ticket_id=f"t{t}")
        if t >= 60 and (t - 60) % GAP == 0:
            feed.event("ticket.responded", t, "email", ticket_id=f"t{t - 60}")
        feed.tick(t)
    for t in range(STOP, STOP + 3 * HOUR, 60):
        if t % GAP == 0:
            feed.event("ticket.created", t, "email", ticket_id=f"t{t}")
        if (t - 60) % (2 * GAP) == 0:
            feed.event("ticket.responded", t, "email", ticket_id=f"t{t - 60}")
        assert not pick(feed.tick(t), "tickets_at_risk", "email", sla="first_response").active


def test_the_first_day_is_not_judged():
    # nothing learned yet on Monday: a stop at 10:00 is left to the at-risk count (at most 2)
    feed = Feed(only({"tickets_at_risk": {}}))
    assert not any(_feed_until(feed, 12 * HOUR, stop=10 * HOUR))
