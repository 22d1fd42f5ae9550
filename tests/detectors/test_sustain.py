"""A detector's own persistence (``Sustain``): the edges of a rule's ``for`` and
``keep_firing_for``, checked by hand and against the rule state machine itself."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from support_monitor.alerts.state import RuleState, Sample
from support_monitor.detectors.sustain import Sustain

LABELS = (("alertname", "BacklogGrowing"), ("channel", "voice"))


def test_hold_and_release_by_hand() -> None:
    s = Sustain(hold=3, release=2)
    # holds at 0-2 (3 s is not reached), breaks at 3, holds from 4: active at 7 (7 - 4 >= 3)
    held = [True, True, True, False, True, True, True, True, False, True, False, False, False]
    got = [s.step(float(t), c) for t, c in enumerate(held)]
    assert got == [False] * 7 + [True, True, True, True, True, False]
    # t=8 breaks (cleared at 8), t=9 holds again (the clock restarts), t=10 breaks (cleared at
    # 10), t=11: 1 s < 2, t=12: 2 s >= 2: released
    assert math.isnan(s.since)


def test_since_is_the_start_of_the_run_that_made_it_active() -> None:
    s = Sustain(hold=5, release=5)
    for t in range(10):
        s.step(100.0 + t, t >= 2)
    assert s.active
    assert s.since == 102.0
    s.step(110.0, condition=False)
    assert s.since == 102.0  # still active while released for less than 5 s


def test_zero_hold_and_release_follow_the_condition() -> None:
    s = Sustain(hold=0, release=0)
    pattern = [False, True, False, True, True, False]
    assert [s.step(float(t), c) for t, c in enumerate(pattern)] == pattern


def test_dump_and_load_continue_the_same_way() -> None:
    a = Sustain(hold=4, release=4)
    for t in range(6):
        a.step(float(t), condition=True)
    a.step(6.0, condition=False)
    b = Sustain(hold=4, release=4)
    b.load(a.dump())
    for t in range(7, 12):
        assert a.step(float(t), condition=False) == b.step(float(t), condition=False)
    assert not b.active


def _pages(state: RuleState, timeline: list[tuple[float, bool]]) -> list[tuple[float, str]]:
    """(t, "firing") and (t, "resolved") of one label set's alert over the timeline."""
    out: list[tuple[float, str]] = []
    for t, active in timeline:
        samples = [Sample(LABELS, 0.0, {})] if active else []
        for tr in state.eval(t, samples):
            if tr.state == "firing":
                out.append((t, "firing"))
            elif tr.previous == "firing":
                out.append((t, "resolved"))
    return out


@given(
    st.lists(st.booleans(), min_size=1, max_size=200),
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=12),
    st.sampled_from([1.0, 2.5]),
)
def test_same_firing_and_resolve_ticks_as_the_rule_state_machine(
    pattern: list[bool], hold: int, release: int, step: float
) -> None:
    """A condition under a rule with ``for``/``keep_firing_for`` and the same condition
    through ``Sustain`` under a rule with neither fire and resolve at the same ticks."""
    timeline = [(i * step, c) for i, c in enumerate(pattern)]
    expected = _pages(RuleState(hold=hold, keep_firing_for=release, resolved_retention=0), timeline)
    sustain = Sustain(hold=hold, release=release)
    persisted = [(t, sustain.step(t, c)) for t, c in timeline]
    got = _pages(RuleState(hold=0, keep_firing_for=0, resolved_retention=0), persisted)
    assert got == expected
