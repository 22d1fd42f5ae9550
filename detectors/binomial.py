"""Binomial tail probabilities in log space (no scipy), for the customer-voice detectors.

A ratio over a window (contained sessions of all sessions, negative scores of all scores,
detractors of all NPS answers) is ``k`` successes in ``n`` trials. Whether it moved away from
the usual share ``p`` is judged by the exact one-sided binomial tail, not by a normal
approximation: windows hold tens of trials, where the normal tail is off by orders of magnitude.
Terms are summed from the small side in log space with ``math.lgamma``, so tails far below
1e-300 stay exact instead of underflowing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache
from statistics import NormalDist

_TAIL_EPS = 1e-17


def log_pmf(k: int, n: int, p: float) -> float:
    """log P(X = k) for X ~ Binomial(n, p)."""
    if k < 0 or k > n:
        return -math.inf
    if p <= 0:
        return 0.0 if k == 0 else -math.inf
    if p >= 1:
        return 0.0 if k == n else -math.inf
    return (
        math.lgamma(n + 1)
        - math.lgamma(k + 1)
        - math.lgamma(n - k + 1)
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def _run(k: int, n: int, p: float, step: int) -> float:
    """log of the sum of P(X = i) from ``k`` in direction ``step`` (+1 or -1) to the end, for a
    ``k`` on the falling side of the mode in that direction (terms shrink as i moves on).

    The first term is exact (``log_pmf``); each next one is the previous times the ratio of
    neighbouring terms, (n - i)/(i + 1) x p/(1 - p) upward, i/(n - i + 1) x (1 - p)/p downward,
    summed relative to the first until a term is below ``_TAIL_EPS`` of it: a few float
    operations a term instead of three ``lgamma`` calls, so a tail of a 100,000-trial window
    (about 1,200 terms) costs a tenth of a millisecond."""
    first = log_pmf(k, n, p)
    if first == -math.inf or p <= 0 or p >= 1:
        return first  # the one possible outcome, or none
    odds = p / (1 - p) if step > 0 else (1 - p) / p
    total = term = 1.0
    i = k
    while 0 < i < n if step < 0 else i < n:
        if step > 0:
            term *= (n - i) / (i + 1) * odds
        else:
            term *= i / (n - i + 1) * odds
        i += step
        total += term
        if term < _TAIL_EPS:
            break
    return first + math.log(total)


def log_sf(k: int, n: int, p: float) -> float:
    """log P(X >= k)."""
    if k <= 0:
        return 0.0
    if k > n:
        return -math.inf
    if k > n * p:
        return _run(k, n, p, +1)
    low = math.exp(_run(k - 1, n, p, -1))  # k - 1 < n p: the lower side is the small one
    return math.log(max(1.0 - low, 1e-300))


def log_cdf(k: int, n: int, p: float) -> float:
    """log P(X <= k)."""
    if k < 0:
        return -math.inf
    if k >= n:
        return 0.0
    if k < n * p:
        return _run(k, n, p, -1)
    high = math.exp(_run(k + 1, n, p, +1))
    return math.log(max(1.0 - high, 1e-300))


def sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p)."""
    return math.exp(log_sf(k, n, p))


def cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p)."""
    return math.exp(log_cdf(k, n, p))


def _z(alpha: float) -> float:
    """The standard normal quantile above which ``alpha`` lies (a starting guess only)."""
    return NormalDist().inv_cdf(min(max(1.0 - alpha, 1e-12), 1.0 - 1e-12))


def _first_true(lo: int, hi: int, guess: int, holds: Callable[[int], bool]) -> int:
    """The smallest k in [lo, hi] for which ``holds`` (false below it, true from it on), or
    ``hi + 1`` when it holds nowhere: found by galloping from ``guess`` and then bisecting, so
    a guess near the answer costs a few calls whatever the width of [lo, hi]."""
    if lo > hi:
        return hi + 1
    guess = min(max(guess, lo), hi)
    bottom, top = lo - 1, hi + 1  # holds at top (or top is past hi), not at bottom (or below)
    step = 1
    if holds(guess):
        top = guess
        while top - step >= lo:
            if not holds(top - step):
                bottom = top - step
                break
            top -= step
            step *= 2
    else:
        bottom = guess
        while bottom + step <= hi:
            if holds(bottom + step):
                top = bottom + step
                break
            bottom += step
            step *= 2
    while top - bottom > 1:
        middle = (bottom + top) // 2
        if holds(middle):
            top = middle
        else:
            bottom = middle
    return top


@lru_cache(maxsize=8192)
def upper_critical(n: int, p: float, alpha: float) -> int:
    """Smallest k with P(X >= k | n, p) < alpha; ``n + 1`` when not even ``n`` is that rare.

    The tail only shrinks as k grows, so the answer is searched from the normal
    approximation's guess (galloping, then bisection) instead of stepping up from the mean."""
    log_alpha = math.log(alpha)
    start = max(1, math.floor(n * p) + 1)
    if start > n:
        return n + 1
    guess = math.ceil(n * p + _z(alpha) * math.sqrt(n * p * (1 - p)))
    return _first_true(start, n, guess, lambda k: log_sf(k, n, p) < log_alpha)


@lru_cache(maxsize=8192)
def lower_critical(n: int, p: float, alpha: float) -> int:
    """Largest k with P(X <= k | n, p) < alpha; ``-1`` when not even 0 is that rare (searched
    as :func:`upper_critical`, mirrored)."""
    log_alpha = math.log(alpha)
    start = min(n - 1, math.ceil(n * p) - 1)
    if start < 0:
        return -1
    guess = math.floor(n * p - _z(alpha) * math.sqrt(n * p * (1 - p)))
    # in m = start - k the condition is false for small m and true from some m on
    m = _first_true(0, start, start - guess, lambda m: log_cdf(start - m, n, p) < log_alpha)
    return start - m if m <= start else -1
