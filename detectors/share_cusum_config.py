"""Settings of the binomial CUSUM a CSAT threshold may carry (``thresholds[].cusum``).

The CUSUM itself is ``detectors/share_cusum.py``; ``detectors.config`` puts these settings on
a threshold detector of ``support_csat_ratio`` with ``op`` ``<`` or ``<=``.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from support_monitor.monitor.config_helpdesk import ZoneName


class ShareCusumSettings(BaseModel):
    """A one-sided binomial CUSUM on the share of unsatisfied ratings (1-3) of all ratings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ratio: float = Field(default=3.0, gt=1)
    """The CUSUM is tuned for the unsatisfied share rising to this multiple of its usual
    share (capped at 0.99): 3 is a usual 15% of unsatisfied ratings rising to 45%."""
    threshold: float = Field(default=8.0, gt=0)
    """Active when the statistic reaches this; it stays active until it falls below
    ``threshold - ln(ratio)``, and it is capped at ``threshold + ln(ratio)``. 8 is the lowest
    threshold that kept 12 healthy channel-weeks of the detection benchmark quiet
    (docs/detectors.md)."""
    prior: float = Field(default=0.2, gt=0, lt=1)
    """Usual unsatisfied share before anything is learnt."""
    warmup_samples: int | None = Field(default=None, ge=1)
    """No longer read (the usual share is pooled by ratings, ``prior_trials``); accepted so a
    config written for an earlier version still loads, and ``check-config`` says so."""
    prior_trials: float = Field(default=100.0, ge=0)
    """The prior counts as this many outcomes in the all-hours share: after 100 ratings it
    weighs half (0: the learnt share alone once there is one)."""
    slot_weight: float = Field(default=0.3, gt=0, le=1)
    """EWMA weight of the newest hour in an hour-of-week slot (after its running mean)."""
    global_weight: float = Field(default=0.02, gt=0, le=1)
    """EWMA weight of the newest hour in the all-hours share (the warm-up fallback)."""
    relearn_after: int = Field(default=24, ge=0)
    """Hours in which the CUSUM was active are not learnt; after this many in a row they are
    (the level has shifted for good)."""
    timezone: ZoneName = "UTC"
    """IANA zone of the hour-of-week slots."""


class ServiceLevelCusumSettings(ShareCusumSettings):
    """The same CUSUM on each live channel's service-level outcomes (``sla_burn.cusum``): an
    offered contact is a bad outcome at its deadline when it was still waiting then, or when it
    gave up within T after ``short_abandon_seconds``, a good one when it was answered within T.
    Its evidence is discounted by how clustered the channel's outcomes are (below)."""

    ratio: float = Field(default=4.0, gt=1)
    """Tuned for the out-of-SLA share rising to this multiple of its usual share: 4 is a usual
    11% rising to 44% (a service level of 89% falling to 56%)."""
    threshold: float = Field(default=10.0, gt=0)
    """Active when the statistic reaches this times the squared dispersion (below)."""
    prior: float = Field(default=0.2, gt=0, lt=1)
    """Usual out-of-SLA share before anything is learnt."""
    dispersion_prior: float = Field(default=3.0, ge=1)
    """How much more the channel's outcomes are assumed to vary than independent ones before
    its own hours are learnt (the variance ratio of its out-of-SLA counts per 10 minutes)."""
    dispersion_prior_weight: float = Field(default=20.0, ge=0)
    """The prior counts as this many degrees of freedom (an hour of six 10-minute blocks gives
    five)."""
    dispersion_decay: float = Field(default=0.99, gt=0, le=1)
    """Each learnt hour multiplies the weight of the ones before by this (0.99: about the last
    100 learnt hours count)."""
