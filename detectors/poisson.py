"""Poisson tail probabilities in log space (no scipy).

Complaint counts are small integers, so a spike is judged by how unlikely the observed count is
under the expected rate, not by a z-score. Terms are summed in log space with ``math.lgamma`` so
that tails far below 1e-300 stay exact instead of underflowing to 0.
"""

from __future__ import annotations

import math
from functools import lru_cache

_TAIL_EPS = 1e-17


def log_pmf(k: int, lam: float) -> float:
    """log P(X = k) for X ~ Poisson(lam)."""
    if lam == 0:
        return 0.0 if k == 0 else -math.inf
    return k * math.log(lam) - lam - math.lgamma(k + 1)


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    if top == -math.inf:
        return -math.inf
    return top + math.log(math.fsum(math.exp(v - top) for v in values))


def log_sf(k: int, lam: float) -> float:
    """log P(X >= k) for X ~ Poisson(lam)."""
    if k <= 0:
        return 0.0
    if lam <= 0:
        return -math.inf
    if k > lam:
        # Upper tail: terms fall by the factor lam / (i + 1) < 1, so it converges quickly.
        terms = [log_pmf(k, lam)]
        i = k
        while True:
            nxt = terms[-1] + math.log(lam / (i + 1))
            terms.append(nxt)
            i += 1
            if nxt - terms[0] < math.log(_TAIL_EPS):
                break
        return _logsumexp(terms)
    # k <= lam: the tail is at least about 1/2; 1 - CDF(k - 1) is accurate here.
    cdf = math.fsum(math.exp(log_pmf(i, lam)) for i in range(k))
    return math.log(max(1.0 - cdf, 1e-300))


def sf(k: int, lam: float) -> float:
    """P(X >= k) for X ~ Poisson(lam)."""
    return math.exp(log_sf(k, lam))


@lru_cache(maxsize=4096)
def critical_count(lam: float, alpha: float) -> int:
    """Smallest k with P(X >= k | lam) < alpha: the count at which the tail test fires.

    Cached: the expected rate only changes when the baseline learns or the hour slot changes.
    """
    log_alpha = math.log(alpha)
    k = max(1, math.floor(lam) + 1)
    while log_sf(k, lam) >= log_alpha:
        k += 1
    return k


_MARGIN = 1e-9
"""How far (in log probability) from ``log(alpha)`` both ends of a range must be before
:func:`constant_critical_count` vouches for it: far above ``log_sf``'s rounding (~1e-15)."""


def critical_bracket(lo: float, hi: float, alpha: float) -> tuple[int, int] | None:
    """Bounds ``(c_lo, c_hi)`` on the critical count of every rate in ``[lo, hi]``, or ``None``.

    P(X >= k | lam) grows with lam and falls with k. With ``c_lo = critical_count(lo)`` and
    ``c_hi = critical_count(hi)``: if ``c_lo - 1`` has its tail at or above alpha at ``lo`` and
    ``c_hi`` has its tail below alpha at ``hi``, both with a margin far above ``log_sf``'s
    rounding, then for every rate in between no count below ``c_lo`` fires and ``c_hi`` does, so
    :func:`critical_count`'s search ends in ``[c_lo, c_hi]``, exactly where it would.
    """
    if not 0 <= lo <= hi or not math.isfinite(hi):
        return None
    c_lo, c_hi = critical_count(lo, alpha), critical_count(hi, alpha)
    if c_lo > c_hi:
        return None
    log_alpha = math.log(alpha)
    slack = _MARGIN * max(1.0, abs(log_alpha))
    if log_sf(c_hi, hi) >= log_alpha - slack:
        return None
    if c_lo - 1 >= max(1, math.floor(lo) + 1) and log_sf(c_lo - 1, lo) < log_alpha + slack:
        return None
    return c_lo, c_hi


def constant_critical_count(lo: float, hi: float, alpha: float) -> int | None:
    """The critical count of every rate in ``[lo, hi]``, or ``None`` when it may not be one
    (see :func:`critical_bracket`)."""
    bracket = critical_bracket(lo, hi, alpha)
    return bracket[0] if bracket is not None and bracket[0] == bracket[1] else None


def critical_count_within(lam: float, alpha: float, bracket: tuple[int, int]) -> int:
    """``critical_count(lam, alpha)`` for a rate inside the range ``bracket`` was computed for:
    the same search, started at ``c_lo`` and stopped at ``c_hi`` (one tail evaluation when the
    two differ by one, none when they are equal)."""
    c_lo, c_hi = bracket
    log_alpha = math.log(alpha)
    k = max(c_lo, 1, math.floor(lam) + 1)
    while k < c_hi:
        if log_sf(k, lam) < log_alpha:
            return k
        k += 1
    return c_hi
