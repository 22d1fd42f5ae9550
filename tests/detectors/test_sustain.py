"""A detector's own persistence (``Sustain``): by hand, and against a brute-force model of its
rule (held at every tick for ``hold``; released once it held for less than ``share`` of the
last ``release`` seconds). The hand-worked cases use a share of one half."""

from __future__ import annotations

import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from support_monitor.detectors.quiet import persistence_horizon
from support_monitor.detectors.sustain import RELEASE_SHARE, Sustain
from support_monitor.monitor.config import parse_settings
from tests.detectors.detector_streams import config


def test_hold_by_hand() -> None:
    s = Sustain(hold=3, release=4, share=0.5)
    # holds at 0-2 (3 s is not reached), breaks at 3, holds from 4: active at 7 (7 - 4 >= 3)
    pattern = [True, True, True, False, True, True, True, True]
    assert [s.step(float(t), c) for t, c in enumerate(pattern)] == [False] * 7 + [True]
    assert s.since == 4.0


def test_release_by_share_by_hand() -> None:
    s = Sustain(hold=2, release=4, share=0.5)
    for t in range(3):
        s.step(float(t), condition=True)
    assert s.active  # held at 0, 1, 2
    # last 4 s at t=3: (-1, 3], held (0, 2] = 2 s: not below half: still active
    assert s.step(3.0, condition=False)
    # t=4: (0, 4], held (0, 2] = 2 s: still active; t=5: (1, 5], held (1, 2] = 1 s < 2: released
    assert s.step(4.0, condition=False)
    assert not s.step(5.0, condition=False)
    assert math.isnan(s.since)


def test_a_flickering_condition_releases_a_clean_one_holds() -> None:
    # 10 s held, then held 1 tick in 5 (20%): released once the last 10 s held less than 5 s
    s = Sustain(hold=10, release=10, share=0.5)
    for t in range(11):
        s.step(float(t), condition=True)
    assert s.active
    states = [s.step(float(t), condition=(t % 5 == 0)) for t in range(11, 30)]
    # at t: held time in (t - 10, t] = (10 - (t - 10)) from the run + 1 s at t = 15
    # t=14: 6 s; t=15: 5 s + 1 s (held: no release at a held tick); t=16: 4 + 1 = 5; t=17: 4
    assert states.index(False) == 17 - 11
    assert not any(states[17 - 11 :])  # a single held tick never holds for 10 s again


def test_zero_hold_and_release_follow_the_condition() -> None:
    s = Sustain(hold=0, release=0, share=0.5)
    pattern = [False, True, False, True, True, False]
    assert [s.step(float(t), c) for t, c in enumerate(pattern)] == pattern


def test_dump_and_load_continue_the_same_way() -> None:
    a = Sustain(hold=4, release=6)
    for t in range(6):
        a.step(float(t), condition=True)
    a.step(6.0, condition=False)
    b = Sustain(hold=4, release=6)
    b.load(a.dump())
    for t in range(7, 14):
        c = t % 3 == 0
        assert a.step(float(t), condition=c) == b.step(float(t), condition=c)


def _model(
    timeline: list[tuple[float, bool]], hold: float, release: float, share: float
) -> list[bool]:
    """The rule written out over the whole history at every tick."""
    out: list[bool] = []
    active = False
    for i, (now, condition) in enumerate(timeline):
        if condition:
            start = i
            while start > 0 and timeline[start - 1][1]:
                start -= 1
            if not active and now - timeline[start][0] >= hold:
                active = True
        elif active and (release <= 0 or _held(timeline, i, release) / release < share):
            active = False
        out.append(active)
    return out


@given(
    st.lists(st.booleans(), min_size=1, max_size=150),
    st.integers(min_value=0, max_value=12),
    st.integers(min_value=0, max_value=12),
    st.sampled_from([1.0, 2.5]),
    st.sampled_from([0.25, 0.5]),
)
def test_against_the_rule_written_out(
    pattern: list[bool], hold: int, release: int, step: float, share: float
) -> None:
    timeline = [(i * step, c) for i, c in enumerate(pattern)]
    sustain = Sustain(hold=hold, release=release, share=share)
    assert [sustain.step(t, c) for t, c in timeline] == _model(timeline, hold, release, share)


def test_the_replay_jump_waits_for_the_longest_persistence() -> None:
    # replay jumps over a quiet gap only after every detector's own persistence could have run
    # out: the longer of sustain and release of each enabled persistent detector
    def horizon(**detectors: Any) -> float:
        return persistence_horizon(parse_settings(config(detectors)).detectors)

    assert horizon() == 1500  # estimated_wait: sustain 25m (release 20m)
    assert horizon(estimated_wait={"enabled": False}) == 1200  # the others: release 20m
    assert horizon(backlog_growth={"release": 3000}) == 3000
    off = {"enabled": False}
    others_off = {"estimated_wait": off, "understaffing": off, "backlog_growth": off}
    # longest_wait's sustained level: over 4m, release 5m
    assert horizon(**others_off) == 300
    assert horizon(**others_off, thresholds=[{"name": "longest_wait", "enabled": False}]) == 0
    held = {"value": 3, "over": "10m", "release": "7m"}
    slow = [{"name": "held", "metric": "support_queue_waiting", "op": ">", "value": 9}]
    slow[0]["sustained"] = held
    assert horizon(thresholds=slow) == 1500  # estimated_wait still the longest
    assert horizon(**others_off, thresholds=slow) == 600


def _held(timeline: list[tuple[float, bool]], i: int, span: float) -> float:
    """Seconds held within (now - span, now]: a tick at which it holds counts since the last."""
    now = timeline[i][0]
    held = 0.0
    for j in range(1, i + 1):
        t, c = timeline[j]
        lo = max(timeline[j - 1][0], now - span)
        if c and t > lo:
            held += t - lo
    return held


def _model_share(
    timeline: list[tuple[float, bool]], hold: float, release: float, hold_share: float
) -> list[bool]:
    """Activation by a share of ``hold``, written out over the whole history at every tick."""
    out: list[bool] = []
    active = False
    for i, (_, condition) in enumerate(timeline):
        if condition and not active and _held(timeline, i, hold) / hold >= hold_share:
            active = True
        elif (not condition and active) and (
            release <= 0 or _held(timeline, i, release) / release < RELEASE_SHARE
        ):
            active = False
        out.append(active)
    return out


def test_activation_by_share_by_hand() -> None:
    s = Sustain(hold=4, release=4, hold_share=0.5)
    # held at 1 and 3 (1 s each, counted back to the tick before): 2 s of (-1, 3] at t=3
    pattern = [False, True, False, True]
    assert [s.step(float(t), c) for t, c in enumerate(pattern)] == [False, False, False, True]
    assert s.since == 0.0  # the first held second in the last 4 s: (0, 1]


@given(
    st.lists(st.booleans(), min_size=1, max_size=150),
    st.integers(min_value=1, max_value=12),
    st.integers(min_value=0, max_value=12),
    st.sampled_from([1.0, 2.5]),
    st.sampled_from([0.5, 0.75]),
)
def test_activation_by_share_against_the_rule_written_out(
    pattern: list[bool], hold: int, release: int, step: float, hold_share: float
) -> None:
    timeline = [(i * step, c) for i, c in enumerate(pattern)]
    sustain = Sustain(hold=hold, release=release, hold_share=hold_share)
    got = [sustain.step(t, c) for t, c in timeline]
    assert got == _model_share(timeline, hold, release, hold_share)
