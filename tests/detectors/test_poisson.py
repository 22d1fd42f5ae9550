"""The Poisson tail against an exact rational model (Fraction sums of lam^i / i!)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from support_monitor.detectors.poisson import critical_count, log_sf, sf


def exact_log_sf(k: int, lam: Fraction) -> float:
    """log P(X >= k) = -lam + log(sum_{i >= k} lam^i / i!), summed exactly far into the tail."""
    total = Fraction(0)
    term = Fraction(1)
    for i in range(k + 400):
        if i >= k:
            total += term
        term = term * lam / (i + 1)
    return -float(lam) + math.log(total.numerator) - math.log(total.denominator)


@pytest.mark.parametrize(
    ("k", "lam"),
    [(0, 3), (1, 0.5), (3, 10), (10, 10), (16, 5), (15, 5), (40, 2), (200, 1), (60, 30)],
)
def test_log_sf_matches_exact_sums(k, lam):
    expected = exact_log_sf(k, Fraction(lam))
    assert log_sf(k, lam) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_far_tail_does_not_underflow():
    # P(X >= 200 | 1) ~ e^-1 / 200! ~ 1e-375: below the smallest double, still exact in log space
    assert sf(200, 1.0) == 0.0
    assert log_sf(200, 1.0) == pytest.approx(-1 - math.lgamma(201) + math.log1p(1 / 201), rel=1e-6)


def test_zero_rate_and_zero_count():
    assert sf(0, 0.0) == 1.0
    assert sf(1, 0.0) == 0.0
    assert critical_count(0.0, 1e-4) == 1


def test_known_values():
    # P(X >= 16 | 5) = 6.9008e-05 < 1e-4 <= P(X >= 15 | 5) = 2.2625e-04
    assert sf(16, 5.0) == pytest.approx(6.900824e-05, rel=1e-6)
    assert sf(15, 5.0) == pytest.approx(2.262537e-04, rel=1e-6)
    assert critical_count(5.0, 1e-4) == 16


@given(st.floats(0.01, 60), st.sampled_from([1e-2, 1e-3, 1e-4, 1e-6]))
def test_critical_count_is_the_smallest_significant_count(lam, alpha):
    k = critical_count(lam, alpha)
    assert sf(k, lam) < alpha
    assert k == 1 or sf(k - 1, lam) >= alpha
