"""A binomial CUSUM on a live channel's service-level outcomes, discounted by their dispersion.

The outcomes are those of the service level, each counted once when it is decided: a contact
answered within T is good (at its answer), one still waiting at its deadline is bad (at the
deadline: ``support_sla_breaches_total{sla="answer"}``), and one that gave up within T after
``short_abandon_seconds`` is bad (at its abandon). ``share_cusum.ShareCusum`` accumulates them
against the usual out-of-SLA share of the hour-of-week slot, tuned for ``ratio`` times that share.

A line of agents does not miss its contacts one by one: a few busy minutes make a run of late
answers, so a channel's outcomes vary more than independent trials would, and a CUSUM that
treats them as independent pages on every such run. The dispersion ``phi`` measures how much
more: at each hour boundary the ended hour's out-of-SLA counts in its six 10-minute blocks give
the Pearson statistic ``X2 = sum (b_j - n_j p)^2 / (n_j p (1 - p))`` on ``m - 1`` degrees of
freedom (``m`` blocks with outcomes, ``p`` the hour's share; hours with fewer than 20 outcomes,
none or all bad, or in which the CUSUM was active are not learnt). ``phi`` is the ratio of the
decayed sums of ``X2`` and of the degrees of freedom (each learnt hour weighs the earlier ones by
``dispersion_decay``; the prior ``dispersion_prior`` counts as ``dispersion_prior_weight`` degrees
of freedom), at least 1. ``n`` clustered outcomes are worth about ``n / phi`` independent ones, and
each step of the statistic is judged against a variance ``phi`` times the binomial one, so the
threshold is ``threshold x phi^2``: about 10 on independent outcomes (``phi`` near 1), about 160
on the detection benchmark's line of agents (``phi`` about 4), where the window pairs page.
State per channel: the CUSUM (``ShareCusum.dump``), two sums, the hour's six blocks.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from support_monitor.detectors.share_cusum import HOUR, Pair, ShareCusum
from support_monitor.detectors.share_cusum_config import ServiceLevelCusumSettings

BLOCK = 600.0
"""The dispersion is measured over blocks of this many seconds (six an hour)."""
BLOCKS = int(HOUR // BLOCK)
MIN_OUTCOMES = 20
"""An hour with fewer outcomes teaches the dispersion nothing."""


def dispersion_of(blocks: list[list[int]]) -> tuple[float, int] | None:
    """(Pearson statistic, degrees of freedom) of the bad counts of ``blocks`` ([outcomes, bad]
    each) against their pooled share; None when the hour cannot say (too few outcomes, none or
    all bad, fewer than two blocks with outcomes)."""
    used = [(n, b) for n, b in blocks if n > 0]
    n_all = sum(n for n, _ in used)
    b_all = sum(b for _, b in used)
    if n_all < MIN_OUTCOMES or not 0 < b_all < n_all or len(used) < 2:
        return None
    p = b_all / n_all
    chi2 = sum((b - n * p) ** 2 / (n * p * (1 - p)) for n, b in used)
    return chi2, len(used) - 1


class ServiceLevelCusum:
    """The CUSUM and the dispersion of one channel."""

    __slots__ = ("blocks", "chi2", "cusum", "dof", "flagged", "hour", "seen", "settings")

    def __init__(self, settings: ServiceLevelCusumSettings) -> None:
        self.settings = settings
        self.cusum = ShareCusum(settings)
        self.chi2 = settings.dispersion_prior * settings.dispersion_prior_weight
        self.dof = settings.dispersion_prior_weight
        self.blocks = [[0, 0] for _ in range(BLOCKS)]
        """[outcomes, bad] per 10-minute block of ``hour``."""
        self.hour = -1
        """The hour (epoch hours) the blocks are of; -1 before the first tick."""
        self.flagged = False
        """Active at some tick of ``hour``: it is not learnt."""
        self.seen: Pair | None = None
        self.cusum.scale = self.phi**2

    @property
    def phi(self) -> float:
        """The dispersion the threshold is scaled by (at least 1)."""
        return max(1.0, self.chi2 / self.dof) if self.dof > 0 else 1.0

    @property
    def threshold(self) -> float:
        """The level the statistic is compared with now."""
        return self.settings.threshold * self.cusum.scale

    def step(self, now: float, counts: Pair, slot_of: Callable[[float], int]) -> bool:
        """Advance to ``now`` (a whole second) with the channel's cumulative (outcomes, bad);
        whether active. The outcomes counted at ``now`` happened in the second before it."""
        hour = math.floor((now - 0.5) / HOUR)
        if counts == self.seen and hour == self.hour and now // HOUR == self.cusum.hour:
            return self.cusum.active  # nothing decided since the last tick (the usual case)
        if hour != self.hour:
            self._close_hour(hour)
        seen = self.seen
        if seen is not None and counts[0] >= seen[0] and counts[1] >= seen[1]:
            n, b = counts[0] - seen[0], counts[1] - seen[1]
            if n:
                block = self.blocks[min(BLOCKS - 1, int(((now - 0.5) % HOUR) // BLOCK))]
                block[0] += n
                block[1] += min(b, n)
        self.seen = counts
        active = self.cusum.step(now, counts, slot_of)
        self.flagged = self.flagged or active
        return active

    def _close_hour(self, hour: int) -> None:
        """Learn the dispersion of the ended hour (when it follows on the one before, was not
        flagged and can say), then start ``hour``."""
        if hour == self.hour + 1 and not self.flagged:
            learnt = dispersion_of(self.blocks)
            if learnt is not None:
                decay = self.settings.dispersion_decay
                self.chi2 = decay * self.chi2 + learnt[0]
                self.dof = decay * self.dof + learnt[1]
                self.cusum.scale = self.phi**2
        self.hour = hour
        self.flagged = self.cusum.active
        for block in self.blocks:
            block[0] = block[1] = 0

    def dump(self) -> list[Any]:
        return [
            self.cusum.dump(),
            self.chi2,
            self.dof,
            [list(b) for b in self.blocks],
            self.hour,
            self.flagged,
            None if self.seen is None else list(self.seen),
        ]

    def load(self, data: list[Any]) -> None:
        """Put back what :meth:`dump` returned (all read first, so a malformed dump raises
        before anything changes)."""
        stored, chi2, dof, blocks, hour, flagged, seen = data
        cusum = ShareCusum(self.settings)
        cusum.load(stored)
        rows = [[int(n), int(b)] for n, b in blocks]
        if len(rows) != BLOCKS:
            msg = f"{len(rows)} dispersion blocks, not {BLOCKS}"
            raise ValueError(msg)
        self.cusum, self.chi2, self.dof = cusum, float(chi2), float(dof)
        self.blocks, self.hour, self.flagged = rows, int(hour), bool(flagged)
        self.seen = None if seen is None else (int(seen[0]), int(seen[1]))
        self.cusum.scale = self.phi**2
