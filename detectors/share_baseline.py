"""Usual shares of a binomial series per hour-of-week slot, learnt hour by hour.

Used by the customer-voice detectors (``customer_voice.py``) and the binomial CUSUM
(``share_cusum.py``): at each hour boundary the ended hour's counts (trials and each counted
outcome) teach the slot an exponentially weighted mean of each; the usual share is the ratio of
the means (a ratio of sums, never an average of ratios). A slot with fewer than
``warmup_samples`` hours is blended with the all-hours share, itself blended with the prior.
At most 168 slots per series.
"""

from __future__ import annotations

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


class BaselineSettings(Protocol):
    """What a :class:`RatioBaseline` reads of its settings."""

    @property
    def warmup_samples(self) -> int: ...

    @property
    def slot_weight(self) -> float: ...

    @property
    def global_weight(self) -> float: ...


class RatioBaseline:
    """Usual shares of one series per hour-of-week slot: EWMAs of the hour's trials and counts."""

    __slots__ = ("glob", "priors", "settings", "slots", "version")

    def __init__(self, settings: BaselineSettings, priors: tuple[float, ...]) -> None:
        self.settings = settings
        self.priors = priors
        self.slots: dict[int, list[Ewma]] = {}
        self.glob = [Ewma() for _ in range(len(priors) + 1)]
        self.version = 0

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

    def learn(self, slot: int, counts: Counts) -> None:
        """Teach one complete hour (not called for hours without trials or flagged ones)."""
        s = self.settings
        self.version += 1
        ewmas = self.slots.setdefault(slot, [Ewma() for _ in counts])
        for e, x in zip(ewmas, counts, strict=True):
            e.update(float(x), s.slot_weight)
        for e, x in zip(self.glob, counts, strict=True):
            e.update(float(x), s.global_weight)

    def dump(self) -> dict[str, object]:
        return {
            "glob": [e.dump() for e in self.glob],
            "slots": [
                [slot, [e.dump() for e in ewmas]] for slot, ewmas in sorted(self.slots.items())
            ],
        }

    def load(self, data: dict[str, Any]) -> None:
        width = len(self.priors) + 1
        glob = [Ewma.load(e) for e in data["glob"]]
        slots = {int(slot): [Ewma.load(e) for e in ewmas] for slot, ewmas in data["slots"]}
        if len(glob) != width or any(len(v) != width for v in slots.values()):
            raise ValueError("baseline width does not match the detector")
        self.glob, self.slots = glob, slots
