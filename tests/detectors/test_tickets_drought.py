"""The first-response drought of ``tickets_at_risk``: a stop is seen before any ticket is at
risk; a slowdown to half is not a drought; the first day, a desk with no tickets and a desk
with too few new tickets are not judged."""

from __future__ import annotations

import math
from typing import Any

from support_monitor.detectors.signal import Signal
from tests.detectors.detector_streams import Feed, only, pick

HOUR, DAY = 3600, 86400
GAP = 180  # a ticket every 3 minutes, answered 60 s after it is created: 20 responses an hour
STOP = DAY + 10 * HOUR  # Tuesday 10:00 UTC
DRY = "first responses have nearly stopped"


def _feed_until(
    feed: Feed, until: int, *, stop: int, gap_after_stop: int = GAP
) -> list[tuple[bool, Signal]]:
    """Tickets every ``GAP`` seconds (every ``gap_after_stop`` from ``stop`` on), each answered
    60 s later when created before ``stop``; a tick every 60 s. The first-response signal per
    tick: (active, signal)."""
    out: list[tuple[bool, Signal]] = []
    created: list[int] = []
    for t in range(0, until, 60):
        if t % (GAP if t < stop else gap_after_stop) == 0:
            feed.event("ticket.created", t, "email", ticket_id=f"t{t}")
            created.append(t)
        if t - 60 in created and t - 60 < stop:
            feed.event("ticket.responded", t, "email", ticket_id=f"t{t - 60}")
        s = pick(feed.tick(t), "tickets_at_risk", "email", sla="first_response")
        out.append((s.active, s))
    return out


def test_a_stop_is_paged_before_any_ticket_is_at_risk() -> None:
    feed = Feed(only({"tickets_at_risk": {}}))
    ticks = _feed_until(feed, STOP + HOUR, stop=STOP)
    # Monday learned every hour at 20 responses; on Tuesday 09:00-11:00 the hour-of-week slot is
    # not learned yet, the hour-of-day slot once (n = 1) and the day factor is (10 + 60) / (10 +
    # 60) = 1: usual rate 20 - 1 x sqrt(20 / 1) an hour (one standard error low). The last
    # response is at 09:58 (ticket 09:57); from there the statistic gains (1 - 0.1) x rate per
    # second of silence and is active at 11 (the responses before kept it at 0: each takes
    # ln(10) = 2.30 off, the 3 minutes between add only 0.70).
    rate = (20 - math.sqrt(20)) / HOUR
    # the last response (09:58) applies at the next tick, 09:59, the first past it by the
    # allowed lateness (5 s): a ticket's events apply in ts order once the watermark passes them
    last = STOP - GAP + 60 + 60
    crossing = last + 11 / (0.9 * rate)  # 2,833.6 s after 09:59: 10:46:13.6
    first = next(60 * i for i, (active, _) in enumerate(ticks) if active)
    assert first == 60 * math.ceil(crossing / 60)  # the first tick at or after the crossing
    s = ticks[first // 60][1]
    # no ticket is at risk yet (the first unanswered one is from 10:00, at risk from 10:54);
    # the tickets of 10:00, 10:03, ..., 10:45 wait for a first response: 16, the score
    assert (s.score, s.threshold) == (16, 4)
    assert s.summary == (
        "email: first responses have nearly stopped, none for 48m where about 16 an hour are "
        "usual; 16 tickets wait for one, 0 close to its deadline"
    )


def test_at_risk_counts_alone_miss_that_stop() -> None:
    # without the drought CUSUM: a ticket every 3 minutes puts at most 2 in the 6-minute lead
    # window (ages 3,240-3,600 s), never the default 4, while none is answered for 2 hours
    feed = Feed(only({"tickets_at_risk": {"drought_threshold": 0}}))
    assert not any(active for active, _ in _feed_until(feed, STOP + 2 * HOUR, stop=STOP))
    assert (
        pick(feed.tick(STOP + 2 * HOUR), "tickets_at_risk", "email", sla="first_response").score
        == 2
    )


def test_half_the_usual_responses_is_no_drought() -> None:
    # Tuesday from 10:00 only every second ticket gets a response (10 an hour): each response
    # takes ln(10) = 2.30 off, the 6 minutes between add 0.9 x 15.5 / 10 = 1.40: stays at 0
    feed = Feed(only({"tickets_at_risk": {}}))
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
        s = pick(feed.tick(t), "tickets_at_risk", "email", sla="first_response")
        assert DRY not in s.summary


def test_the_first_day_is_not_judged() -> None:
    # nothing learned yet on Monday: a stop at 10:00 is left to the at-risk count (at most 2)
    feed = Feed(only({"tickets_at_risk": {}}))
    assert not any(active for active, _ in _feed_until(feed, 12 * HOUR, stop=10 * HOUR))


def test_a_desk_without_tickets_is_never_in_a_drought() -> None:
    # email has a first-response target but no ticket ever comes (its hours are learned at 0,
    # and no rate floor turns them into expected responses); live traffic on voice meanwhile
    feed = Feed(only({"tickets_at_risk": {}}))
    for t in range(0, 3 * DAY, 60):
        if t % 600 == 0:
            feed.event("contact.queued", t, "voice", contact_id=f"c{t}", queue="billing")
            feed.event("contact.answered", t, "voice", contact_id=f"c{t}")
        s = pick(feed.tick(t), "tickets_at_risk", "email", sla="first_response")
        assert not s.active


def test_too_few_new_tickets_are_not_judged() -> None:
    # after the stop a ticket comes only every 20 minutes: from 10:09 the hour holds 4 or
    # more new tickets only while it still holds those of 09:48-09:57, and by then fewer than
    # 4 wait for a response (10:00, 10:20, 10:40); later never more than 3 new ones in an hour.
    # The CUSUM passes its threshold; the signal stays inactive (3 tickets never make 4 at risk)
    feed = Feed(only({"tickets_at_risk": {}}))
    ticks = _feed_until(feed, STOP + 3 * HOUR, stop=STOP, gap_after_stop=1200)
    assert not any(active for active, _ in ticks)
    exported: Any = feed.suite.export_state()
    stat, *_, active = exported["detectors"]["tickets_at_risk"]["state"]["drought"]["email"][:7]
    assert active
    assert stat >= 11


def test_a_pause_in_new_tickets_after_all_were_answered_is_no_drought() -> None:
    # every ticket is answered a minute after it came; from 10:00 none comes for 90 minutes:
    # no response is missing (0 wait for one), so the silence is no drought, however long
    feed = Feed(only({"tickets_at_risk": {}}))
    ticks = _feed_until(feed, STOP + 90 * 60, stop=STOP, gap_after_stop=10**9)
    assert not any(active for active, _ in ticks)
    exported: Any = feed.suite.export_state()
    stat = exported["detectors"]["tickets_at_risk"]["state"]["drought"]["email"][0]
    assert stat >= 11  # the CUSUM alone would have paged
