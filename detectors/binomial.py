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
from functools import lru_cache

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
    ``k`` on the falling side of the mode in that direction (terms shrink as i moves on)."""
    first = log_pmf(k, n, p)
    terms = [first]
    i = k + step
    floor = first + math.log(_TAIL_EPS)
    while 0 <= i <= n:
        term = log_pmf(i, n, p)
        terms.append(term)
        if term < floor:
            break
        i += step
    return _logsumexp(terms)


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


@lru_cache(maxsize=8192)
def upper_critical(n: int, p: float, alpha: float) -> int:
    """Smallest k with P(X >= k | n, p) < alpha; ``n + 1`` when not even ``n`` is that rare."""
    log_alpha = math.log(alpha)
    k = max(1, math.floor(n * p) + 1)
    while k <= n and log_sf(k, n, p) >= log_alpha:
        k += 1
    return k


@lru_cache(maxsize=8192)
def lower_critical(n: int, p: float, alpha: float) -> int:
    """Largest k with P(X <= k | n, p) < alpha; ``-1`` when not even 0 is that rare."""
    log_alpha = math.log(alpha)
    k = min(n - 1, math.ceil(n * p) - 1)
    while k >= 0 and log_cdf(k, n, p) >= log_alpha:
        k -= 1
    return k
