"""Statistical volume guards: is a window's ratio past a threshold, or just binomial noise?

A window's ratio is ``k`` of ``n`` contacts (abandoned of offered, satisfied of ratings, in SLA of
offered). Its one-sided Wilson score bound at a confidence ``c`` (``z`` the standard normal
quantile of ``c``) is

    centre = (k + z²/2) / (n + z²),  half = z * sqrt(k (n - k) / n + z²/4) / (n + z²)

lower = centre - half, upper = centre + half. "The true rate is above v" is accepted when the
lower bound is above ``v``; "below v" when the upper bound is below it. Unlike a fixed minimum
volume, the evidence needed shrinks as the ratio moves away from ``v``: 3 abandons of 20 calls
(15%) do not say the rate is above 10%, 60 of 200 (30%) do.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist


@lru_cache(maxsize=64)
def z_of(confidence: float) -> float:
    """The one-sided standard normal quantile of ``confidence`` (1.645 for 0.95)."""
    return NormalDist().inv_cdf(confidence)


def wilson(k: float, n: float, confidence: float) -> tuple[float, float]:
    """(lower, upper) one-sided Wilson bounds of the ratio ``k / n``; (0, 1) for ``n <= 0``."""
    if n <= 0:
        return 0.0, 1.0
    z = z_of(confidence)
    z2 = z * z
    k = min(max(k, 0.0), n)
    centre = (k + z2 / 2) / (n + z2)
    half = z * math.sqrt(max(k * (n - k) / n, 0.0) + z2 / 4) / (n + z2)
    return max(0.0, centre - half), min(1.0, centre + half)


def min_trials(value: float, confidence: float, *, upward: bool) -> int:
    """The fewest trials with which the bound can pass ``value`` at all (every trial on the far
    side): the lower bound at k = n is n / (n + z²), the upper bound at k = 0 is z² / (n + z²)."""
    z2 = z_of(confidence) ** 2
    share = value if upward else 1.0 - value
    if share <= 0:
        return 1
    if share >= 1:
        return 2**62  # never: refused by the settings' own check
    return math.floor(z2 * share / (1.0 - share)) + 1
