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
