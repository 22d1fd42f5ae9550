"""The optimal change detector: CUSUM on a count stream, at a matched false-alarm rate.

CUSUM (Page 1954) is optimal for a change from a known rate to a known rate (Lorden,
Moustakides): the smallest worst-case detection delay among detectors with the same mean
time between false alarms. Here it is given the true pre-change rate and the post-change
rate of each incident, so its delay is a lower bound for any detector watching that stream.

Poisson (arrivals, complaints, first responses), in continuous time: with pre-change rate
``r(t)`` and post-change rate ``k r(t)`` the log-likelihood ratio grows by ``log k`` at each
event and by ``(1 - k) r(t) dt`` between events; ``S = max(0, S + dLLR)``; alarm at
``S >= h``, then ``S = 0``. Binomial (service-level and CSAT trials): each trial adds
``x log(p1/p0) + (1 - x) log((1 - p1)/(1 - p0))``.

``calibrate`` picks the smallest ``h`` that gives at most ``n`` alarms on the healthy span,
so the CUSUM has the false-alarm count the default rules had there.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

Rate = Callable[[float], float]
"""Events per second at ``t``. It is read at each event and at each hour boundary and taken as
constant until the next of these (the traffic's profile changes on the hour)."""

HOUR = 3600.0


def poisson(
    times: Sequence[float], rate: Rate, ratio: float, h: float, span: tuple[float, float]
) -> list[float]:
    """Alarm times of a Poisson CUSUM for a rate change by ``ratio`` over ``span`` (from
    ``S = 0`` at its start, up to its end excluded).

    ``times`` is sorted. Between events the statistic moves linearly within each hour, so a
    rise to ``h`` (``ratio < 1``) is found at its exact time.
    """
    start, end = span
    jump = math.log(ratio)
    alarms: list[float] = []
    s, t = 0.0, start
    i = bisect.bisect_left(times, start)
    n = len(times)
    while t < end:
        target = min(times[i] if i < n else end, end)
        while t < target:  # drift up to the next event, hour by hour
            edge = min(target, (math.floor(t / HOUR) + 1) * HOUR)
            drift = (1 - ratio) * rate(t)
            if drift > 0 and s + drift * (edge - t) >= h:
                t += (h - s) / drift
                alarms.append(t)
                s = 0.0
                continue
            s = max(0.0, s + drift * (edge - t))
            t = edge
        if i >= n or times[i] >= end:
            break
        s = max(0.0, s + jump)
        if s >= h:
            alarms.append(t)
            s = 0.0
        i += 1
    return alarms


def binomial(
    trials: Sequence[tuple[float, int]], p0: float, p1: float, h: float, span: tuple[float, float]
) -> list[float]:
    """Alarm times of a Bernoulli CUSUM for P(bad) changing from ``p0`` to ``p1``."""
    start, end = span
    bad = math.log(p1 / p0)
    good = math.log((1 - p1) / (1 - p0))
    alarms: list[float] = []
    s = 0.0
    for t, x in trials:
        if t < start:
            continue
        if t >= end:
            break
        s = max(0.0, s + (bad if x else good))
        if s >= h:
            alarms.append(t)
            s = 0.0
    return alarms


def calibrate(alarms_at: Callable[[float], int], allowed: int, high: float = 64.0) -> float:
    """The smallest threshold (to 0.1%) with at most ``allowed`` alarms, by bisection (the
    alarm count falls as the threshold rises)."""
    low = 1e-3
    if alarms_at(high) > allowed:
        return high
    for _ in range(60):
        if high - low < 1e-3 * high:
            break
        mid = (low + high) / 2
        if alarms_at(mid) > allowed:
            low = mid
        else:
            high = mid
    return high
