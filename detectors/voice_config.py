"""Settings of the customer-voice detectors: containment drop, negative sentiment, NPS drop.

Each judges one share over a configured window (contained of all bot sessions, negative of all
sentiment scores, detractors of all NPS answers) with an exact one-sided binomial tail against
its own seasonal baseline (``detectors/customer_voice.py``). ``detectors.config`` composes these
settings into ``DetectorSettings``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.config_helpdesk import ZoneName

VOICE_NAMES = ("containment_drop", "negative_sentiment", "nps_drop")
"""The built-in customer-voice detector names (``detectors:`` keys and ``detector`` labels)."""

_ALIASES = ("shortest", "longest")


class _Base(BaseModel):
    """What the three share: the window, the tail test, the volume guard and the baseline."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    window: str = "shortest"
    """The configured window (or ``shortest``/``longest``) whose counts are judged."""
    alpha: float = Field(default=1e-5, gt=0, lt=0.5)
    """Significance: active when the one-sided binomial tail of the window's count under the
    usual share is below this."""
    recover_alpha: float = Field(default=1e-3, gt=0, lt=0.5)
    """Hysteresis: once active, the signal stays active while the tail is below this (and the
    other conditions hold); must be at or above ``alpha``."""
    min_volume: int = Field(default=10, ge=1)
    """Not judged while the window has fewer trials (sessions, scores, answers) than this."""
    warmup_samples: int = Field(default=3, ge=1)
    """An hour-of-week slot (or the all-hours baseline) needs this many learnt hours before it
    is trusted on its own; before that it is blended with the fallback."""
    slot_weight: float = Field(default=0.3, gt=0, le=1)
    """EWMA weight of the newest hour in an hour-of-week slot (after its running mean)."""
    global_weight: float = Field(default=0.02, gt=0, le=1)
    """EWMA weight of the newest hour in the all-hours baseline (the warm-up fallback)."""
    relearn_after: int = Field(default=24, ge=0)
    """Hours in which the series was active are not learnt; after this many in a row they are
    (the level has shifted for good)."""
    timezone: ZoneName = "UTC"
    """IANA zone of the hour-of-week slots."""
    channels: tuple[str, ...] = ()
    """Empty: every channel; a channel is judged once it has had a trial."""

    @model_validator(mode="after")
    def _recover(self) -> Self:
        if self.recover_alpha < self.alpha:
            raise ValueError(
                f"recover_alpha: {self.recover_alpha:g} is below alpha {self.alpha:g}; it must "
                "be at or above it (it is the level an active signal recovers at)"
            )
        return self

    def check(
        self, key: str, channels: Mapping[str, ChannelSettings], windows: Sequence[str]
    ) -> list[str]:
        if self.window not in windows and self.window not in _ALIASES:
            raise ValueError(
                f"{key}.window: {self.window!r} is not a configured window (windows: "
                f"{list(windows)}; or 'shortest' / 'longest')"
            )
        if self.window == "today":
            raise ValueError(f"{key}.window: 'today' is not a sliding window")
        for name in self.channels:
            if name not in channels:
                raise ValueError(
                    f"{key}.channels: {name!r} is not a configured channel "
                    f"(channels: {sorted(channels)})"
                )
        self.check_own(key)
        return list(self.channels) if self.channels else list(channels)

    def check_own(self, key: str) -> None:
        """Cross-field checks of one detector (raise ValueError naming the key)."""
        del key


class ContainmentDropSettings(_Base):
    """Self-service containment (contained / all bot sessions) well below usual."""

    window: str = "shortest"
    alpha: float = Field(default=1e-6, gt=0, lt=0.5)
    recover_alpha: float = Field(default=1e-4, gt=0, lt=0.5)
    min_volume: int = Field(default=20, ge=1)
    max_ratio: float = Field(default=0.6, gt=0, lt=1)
    """Containment must also be at most this multiple of the usual share (0.6: 40% lower)."""
    prior: float = Field(default=0.6, gt=0, lt=1)
    """Usual containment before anything is learnt."""
    floor: float | None = Field(default=None, gt=0, le=1)
    """Judge against this fixed containment instead of the learnt baseline: active when the
    window's containment is significantly (``alpha``) below it."""


class NegativeSentimentSettings(_Base):
    """Share of negative sentiment scores well above usual."""

    window: str = "longest"
    min_volume: int = Field(default=20, ge=1)
    min_ratio: float = Field(default=1.5, gt=1)
    """The negative share must also be at least this multiple of the usual share."""
    min_count: int = Field(default=5, ge=1)
    """... and at least this many negative scores."""
    prior: float = Field(default=0.2, gt=0, lt=1)
    """Usual negative share before anything is learnt."""
    cusum_ratio: float = Field(default=3.0, gt=1)
    """Each channel also runs a binomial CUSUM on the negative share (``share_cusum.py``, its
    own baseline learnt with these settings), tuned for the share rising to this multiple of
    usual (capped at 0.99)."""
    cusum_threshold: float = Field(default=11.0, ge=0)
    """The CUSUM is active at or above this (0: no CUSUM), until it falls below this minus
    ln(ratio); the signal is active while the window test or the CUSUM is."""

    def check_own(self, key: str) -> None:
        if self.min_ratio * self.prior >= 1:
            raise ValueError(
                f"{key}.min_ratio: {self.min_ratio:g} x prior {self.prior:g} is 100% or more: "
                "it can never fire before anything is learnt"
            )


class NpsDropSettings(_Base):
    """NPS down: the detractor share (0-6 answers) well above usual, optionally below a floor."""

    window: str = "longest"
    alpha: float = Field(default=1e-4, gt=0, lt=0.5)
    recover_alpha: float = Field(default=1e-2, gt=0, lt=0.5)
    min_volume: int = Field(default=20, ge=1)
    min_ratio: float = Field(default=1.5, gt=1)
    """The detractor share must also be at least this multiple of the usual share."""
    prior_detractors: float = Field(default=0.25, gt=0, lt=1)
    """Usual detractor share before anything is learnt."""
    prior_promoters: float = Field(default=0.45, ge=0, lt=1)
    """Usual promoter share before anything is learnt (only for the usual NPS in messages)."""
    floor: float | None = Field(default=None, ge=-100, le=100)
    """Also require the window's NPS (-100..100) below this; none: the significant rise of the
    detractor share alone."""

    def check_own(self, key: str) -> None:
        if self.prior_detractors + self.prior_promoters > 1:
            raise ValueError(
                f"{key}.prior_promoters: {self.prior_promoters:g} + prior_detractors "
                f"{self.prior_detractors:g} is above 1"
            )
        if self.min_ratio * self.prior_detractors >= 1:
            raise ValueError(
                f"{key}.min_ratio: {self.min_ratio:g} x prior_detractors "
                f"{self.prior_detractors:g} is 100% or more: it can never fire before anything "
                "is learnt"
            )
        if self.floor is not None and self.floor <= -100:
            raise ValueError(f"{key}.floor: NPS is never below -100: it can never fire")
