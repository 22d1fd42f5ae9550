"""The pooled usual share of the binomial CUSUM (``detectors.share_baseline.PooledBaseline``),
with hand-computed numbers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from support_monitor.detectors.share_baseline import Ewma, PooledBaseline, effective_hours


@dataclass(frozen=True)
class Settings:
    slot_weight: float = 0.3
    global_weight: float = 0.02
    prior_trials: float = 100.0


def test_effective_hours_of_a_running_mean_then_an_ewma() -> None:
    e = Ewma()
    for _ in range(3):
        e.update(1.0, 0.3)
    assert effective_hours(e, 0.3) == 3.0  # running mean (up to 1 / 0.3 samples)
    for _ in range(7):
        e.update(1.0, 0.3)
    assert effective_hours(e, 0.3) == pytest.approx(1.7 / 0.3)  # (2 - w) / w = 5.6666667
    assert effective_hours(Ewma(), 0.02) == 0.0


def test_the_prior_counts_as_prior_trials_outcomes() -> None:
    b = PooledBaseline(Settings(), 0.2)
    assert b.share(5) == 0.2  # nothing learnt: the prior
    b.learn(5, (50, 5))  # one hour, 10% bad
    # (5 + 100 x 0.2) / (50 + 100) = 25 / 150: a first hour is not taken at its word
    assert b.overall() == pytest.approx(1 / 6)
    assert b.share(5) == pytest.approx(1 / 6)  # one slot: no spread to judge by
    assert b.share(6) == pytest.approx(1 / 6)
    without = PooledBaseline(Settings(prior_trials=0.0), 0.2)
    assert without.share(5) == 0.2
    without.learn(5, (50, 5))
    assert without.share(5) == pytest.approx(0.1)


def test_slots_no_further_apart_than_noise_have_the_all_hours_share() -> None:
    b = PooledBaseline(Settings(prior_trials=0.0), 0.5)
    b.learn(1, (100, 18))
    b.learn(2, (100, 22))
    # p = 0.2; D = 100 x 0.02^2 x 2 = 0.08 < (2 - 1) x 0.2 x 0.8 = 0.16: tau2 = 0
    assert math.isinf(b.pseudo_trials())
    assert b.share(1) == pytest.approx(0.2)  # the all-hours share (200 trials, 40 bad)
    assert b.share(2) == pytest.approx(0.2)


def test_slots_that_differ_keep_part_of_their_own_share() -> None:
    b = PooledBaseline(Settings(prior_trials=0.0), 0.5)
    b.learn(1, (100, 10))
    b.learn(2, (100, 50))
    # p = 60 / 200 = 0.3; D = 100 x 0.2^2 + 100 x 0.2^2 = 8; noise (2 - 1) x 0.21 = 0.21;
    # T_s - sum t^2 / T_s = 200 - 20000 / 200 = 100: tau2 = 7.79 / 100, k = 0.21 / tau2
    k = 21 / 7.79
    assert b.pseudo_trials() == pytest.approx(k)  # 2.6957638
    # slot 1: (10 + k x 0.3) / (100 + k) = 10.808729 / 102.695764
    assert b.share(1) == pytest.approx(0.1052501)
    assert b.share(2) == pytest.approx((50 + k * 0.3) / (100 + k))  # 0.4947499
    assert b.share(3) == pytest.approx(0.3)  # a slot not learnt: the all-hours share


def test_the_pseudo_count_follows_what_was_learnt_and_loaded() -> None:
    b = PooledBaseline(Settings(prior_trials=0.0), 0.5)
    b.learn(1, (100, 10))
    b.learn(2, (100, 50))
    assert not math.isinf(b.pseudo_trials())
    b.learn(2, (100, 10))  # slot 2: means 100 trials, 30 bad over 2 hours: 60 of 200
    # p = 70 / 300 = 7/30; D = 100 (1/10 - 7/30)^2 + 200 (3/10 - 7/30)^2 = 16/9 + 8/9 = 8/3;
    # noise (7/30)(23/30) = 161/900; T_s - sum t^2 / T_s = 300 - 50000 / 300 = 400/3
    k = (161 / 900) * (400 / 3) / (8 / 3 - 161 / 900)
    assert b.pseudo_trials() == pytest.approx(k)  # 9.5876
    copy = PooledBaseline(Settings(prior_trials=0.0), 0.5)
    assert math.isinf(copy.pseudo_trials())
    copy.load(b.dump())
    assert copy.pseudo_trials() == pytest.approx(k)
    assert copy.share(1) == b.share(1)
