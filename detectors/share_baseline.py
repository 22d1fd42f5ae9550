"""Usual shares of a binomial series per hour-of-week slot, learnt hour by hour.

Used by the customer-voice detectors (``customer_voice.py``) and the binomial CUSUM
(``share_cusum.py``): at each hour boundary the ended hour's counts (trials and each counted
outcome) teach the slot an exponentially weighted mean of each; the usual share is the ratio of
the means (a ratio of sums, never an average of ratios). :class:`RatioBaseline` (the
customer-voice window tests) blends a slot with fewer than ``warmup_samples`` hours with the
all-hours share, itself blended with the prior. :class:`PooledBaseline` (the CUSUM) pools by
counts instead: the prior counts as ``prior_trials`` trials of the all-hours share, and a slot
is pulled toward the all-hours share by as much as the spread between the slots shows it
should be (empirical Bayes). At most 168 slots per series.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

Counts = tuple[int, ...]
"""(trials, counted, other counts of the kind)."""


class Ewma:
    """Running mean for the first 1/weight samples, then an exponentially weighted mean."""

    __slots__ = ("mean", "n")

    def __init__(self) -> None:
        self.mean = 0.0
        self.n = 0

    def update(self, x: float, weight: float) -> None:
        self.n += 1
        self.mean += max(weight, 1.0 / self.n) * (x - self.mean)

    def dump(self) -> list[float]:
        return [self.mean, self.n]

    @classmethod
    def load(cls, data: list[float]) -> Ewma:
        mean, n = data[0], data[1]
        e = cls()
        e.mean, e.n = float(mean), int(n)
        return e


class MeansSettings(Protocol):
    """The EWMA weights a :class:`SlotMeans` reads of its settings."""

    @property
    def slot_weight(self) -> float: ...

    @property
    def global_weight(self) -> float: ...


class BaselineSettings(MeansSettings, Protocol):
    """What a :class:`RatioBaseline` reads of its settings."""

    @property
    def warmup_samples(self) -> int: ...


class PooledSettings(MeansSettings, Protocol):
    """What a :class:`PooledBaseline` reads of its settings."""

    @property
    def prior_trials(self) -> float: ...


class SlotMeans:
    """EWMAs of an hour's trials and counts per hour-of-week slot and over all hours."""

    __slots__ = ("glob", "global_weight", "slot_weight", "slots", "version")

    def __init__(self, settings: MeansSettings, width: int) -> None:
        self.slot_weight = settings.slot_weight
        self.global_weight = settings.global_weight
        self.slots: dict[int, list[Ewma]] = {}
        self.glob = [Ewma() for _ in range(width)]
        self.version = 0
        """Bumped at every change of the means (learn, load)."""

    def learn(self, slot: int, counts: Counts) -> None:
        """Teach one complete hour (not called for hours without trials, nor for flagged ones
        unless ``relearn_after`` of them came in a row)."""
        self.version += 1
        ewmas = self.slots.setdefault(slot, [Ewma() for _ in counts])
        for e, x in zip(ewmas, counts, strict=True):
            e.update(float(x), self.slot_weight)
        for e, x in zip(self.glob, counts, strict=True):
            e.update(float(x), self.global_weight)

    def dump(self) -> dict[str, object]:
        return {
            "glob": [e.dump() for e in self.glob],
            "slots": [
                [slot, [e.dump() for e in ewmas]] for slot, ewmas in sorted(self.slots.items())
            ],
        }

    def load(self, data: dict[str, Any]) -> None:
        width = len(self.glob)
        glob = [Ewma.load(e) for e in data["glob"]]
        slots = {int(slot): [Ewma.load(e) for e in ewmas] for slot, ewmas in data["slots"]}
        if len(glob) != width or any(len(v) != width for v in slots.values()):
            raise ValueError("baseline width does not match the detector")
        self.glob, self.slots = glob, slots
        self.version += 1


class RatioBaseline(SlotMeans):
    """Usual shares of one series per hour-of-week slot: EWMAs of the hour's trials and counts."""

    __slots__ = ("priors", "settings")

    def __init__(self, settings: BaselineSettings, priors: tuple[float, ...]) -> None:
        super().__init__(settings, len(priors) + 1)
        self.settings = settings
        self.priors = priors

    @staticmethod
    def _shares(ewmas: list[Ewma]) -> list[float] | None:
        trials = ewmas[0].mean
        if ewmas[0].n == 0 or trials <= 0:
            return None
        return [e.mean / trials for e in ewmas[1:]]

    def shares(self, slot: int) -> tuple[float, ...]:
        """The usual share of each count in ``slot`` (blended during warm-up)."""
        warmup = self.settings.warmup_samples
        fallback = list(self.priors)
        glob = self._shares(self.glob)
        if glob is not None:
            n = self.glob[0].n
            w = min(n, warmup)
            fallback = [
                (w * g + (warmup - w) * f) / warmup for g, f in zip(glob, fallback, strict=True)
            ]
        ewmas = self.slots.get(slot)
        own = None if ewmas is None else self._shares(ewmas)
        if ewmas is None or own is None:
            return tuple(fallback)
        w = min(ewmas[0].n, warmup)
        return tuple(
            (w * s + (warmup - w) * f) / warmup for s, f in zip(own, fallback, strict=True)
        )


def effective_hours(e: Ewma, weight: float) -> float:
    """How many equally weighted hours the mean of ``e`` is worth: its sample count during the
    running mean, then at most ``(2 - weight) / weight``, the count whose plain mean has the
    variance of an EWMA with ``weight`` (5.7 hours for 0.3, 99 for 0.02)."""
    return min(float(e.n), (2.0 - weight) / weight)


class PooledBaseline(SlotMeans):
    """The usual share of one count per hour-of-week slot, pooled by counts.

    A slot's trials ``t`` and count ``b`` are its EWMA means times :func:`effective_hours`
    (``T`` and ``B`` over all hours). The all-hours share is ``(B + k0 x prior) / (T + k0)``
    with ``k0 = prior_trials``: the prior weighs as much as ``k0`` trials, so a first day of
    few outcomes is not taken at its word. A learnt slot has ``(b + k x all-hours) / (t + k)``,
    where ``k`` is the empirical-Bayes pseudo-count of the slots: ``k = p (1 - p) / tau2``, with
    ``p`` the pooled share of the learnt slots and ``tau2`` the method-of-moments variance of
    their true shares (their spread beyond what binomial noise gives, at least 0):

        D = sum t_i (b_i / t_i - p)^2,    E[D] = (m - 1) p (1 - p) + tau2 (T_s - sum t_i^2 / T_s)

    (m slots with trials, ``T_s = sum t_i``). When the slots differ no more than noise
    (``tau2`` 0), every slot has the all-hours share; the more they differ, and the more trials
    a slot has, the more it keeps its own. ``k`` is computed once per change of the means, over
    at most 168 slots."""

    __slots__ = ("pool", "prior", "prior_trials")

    def __init__(self, settings: PooledSettings, prior: float) -> None:
        super().__init__(settings, 2)
        self.prior = prior
        self.prior_trials = settings.prior_trials
        self.pool = (-1, math.inf)
        """(version, k) of the last pseudo-count computed."""

    @staticmethod
    def _totals(ewmas: list[Ewma], weight: float) -> tuple[float, float]:
        hours = effective_hours(ewmas[0], weight)
        return ewmas[0].mean * hours, ewmas[1].mean * hours

    def overall(self) -> float:
        """The all-hours share, pooled with the prior."""
        trials, count = self._totals(self.glob, self.global_weight)
        k0 = self.prior_trials
        if trials + k0 <= 0:
            return self.prior
        return (count + k0 * self.prior) / (trials + k0)

    def pseudo_trials(self) -> float:
        """``k`` of the class docstring: how many trials the all-hours share weighs in a slot
        (infinite when the slots differ no more than noise or fewer than 2 have trials)."""
        version, k = self.pool
        if version == self.version:
            return k
        totals = [t for e in self.slots.values() if (t := self._totals(e, self.slot_weight))[0] > 0]
        k = math.inf
        if len(totals) >= 2:
            trials = math.fsum(t for t, _ in totals)
            p = math.fsum(b for _, b in totals) / trials
            spread = math.fsum(t * (b / t - p) ** 2 for t, b in totals)
            noise = (len(totals) - 1) * p * (1 - p)
            span = trials - math.fsum(t * t for t, _ in totals) / trials
            if spread > noise and span > 0:
                k = p * (1 - p) * span / (spread - noise)
        self.pool = (self.version, k)
        return k

    def share(self, slot: int) -> float:
        """The usual share in ``slot``."""
        overall = self.overall()
        ewmas = self.slots.get(slot)
        k = self.pseudo_trials()
        if ewmas is None or math.isinf(k):
            return overall
        trials, count = self._totals(ewmas, self.slot_weight)
        return (count + k * overall) / (trials + k)
