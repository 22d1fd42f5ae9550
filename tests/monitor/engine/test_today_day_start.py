"""The ``today`` window holds its own day start: ``D <= t <= now`` (docs/metrics.md).

An outcome stamped exactly at a local day start is the new day's, whether the clock has reached
that instant when the outcome comes (it is added to the new day at once) or not (a source ahead
of the clock: it waits in a pending total that the reset at ``D`` takes in, also across a
snapshot). The sliding windows keep their left-open rule for it."""

from __future__ import annotations

import math

from support_monitor.monitor.engine.windows import SlidingWindows

DAY = 86400.0
D = 5 * DAY  # a day start


def day_start(t: float) -> float:
    return float(math.floor(t / DAY) * DAY)  # UTC midnights


def windows() -> SlidingWindows:
    return SlidingWindows({"1m": 60.0, "today": 86400.0}, day_start)


def add(w: SlidingWindows, ts: float) -> None:
    for agg in w.targets(ts):
        agg.complaints += 1


def counts(w: SlidingWindows) -> tuple[int, int]:
    return w.total("1m").complaints, w.total("today").complaints


def test_an_outcome_at_the_day_start_after_the_reset_is_the_new_days() -> None:
    w = windows()
    w.advance(D - 10)
    add(w, D - 10)
    w.advance(D)  # the reset: the day before (one outcome) is gone from today
    assert counts(w) == (1, 0)
    add(w, D)
    add(w, D - 0.5)  # late, in the day before: the 1m window only
    assert counts(w) == (3, 1)
    w.advance(D + 50)  # the 1m window is (D - 10, D + 50]
    assert counts(w) == (2, 1)
    w.advance(D + 59)
    assert counts(w) == (2, 1)
    w.advance(D + 60)  # the 1m window is (D, D + 60]: the one at D is out, left-open
    assert counts(w) == (0, 1)
    w.advance(D + DAY)  # the next day start
    assert counts(w) == (0, 0)


def test_an_outcome_at_the_day_start_before_the_clock_reaches_it_waits_for_its_day() -> None:
    w = windows()
    w.advance(D - 2)
    add(w, D - 1.5)
    add(w, D)  # stamped ahead of the clock, exactly at the next day start
    add(w, D - 0.25)
    assert counts(w) == (3, 2)  # today is still the day before: not the one at D
    w.advance(D - 1)
    assert counts(w) == (3, 2)
    w.advance(D)
    assert counts(w) == (3, 1)  # the new day holds exactly the one at D
    add(w, D + 0.5)
    assert counts(w) == (4, 2)


def test_the_pending_day_start_outcome_survives_export_and_restore() -> None:
    w = windows()
    w.advance(D - 1)
    add(w, D)
    state = w.export()
    assert state.pending_day is not None
    assert state.pending_day[0] == D
    copy = windows()
    copy.restore(state)
    copy.advance(D)
    assert counts(copy) == (1, 1)


def test_before_the_first_advance_the_day_start_is_asked_of_the_calendar() -> None:
    w = windows()
    add(w, D)  # the clock has not moved yet: the calendar says D is a day start
    add(w, D - 0.5)
    w.advance(D)
    assert counts(w) == (2, 1)


def test_a_second_of_agent_time_ending_at_the_day_start_is_the_day_befores() -> None:
    w = windows()
    w.advance(D - 1)
    for agg in w.second_targets(int(D)):  # the time of (D - 1, D]
        agg.agent_busy_ms += 1000
    w.advance(D)
    assert w.total("1m").agent_busy_ms == 1000
    assert w.total("today").agent_busy_ms == 0


def test_without_a_today_window_nothing_is_pending() -> None:
    w = SlidingWindows({"1m": 60.0}, day_start)
    w.advance(D - 1)
    for agg in w.targets(D):
        agg.complaints += 1
    assert w.total("1m").complaints == 1
    assert w.export().pending_day is None
