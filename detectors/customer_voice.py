"""Customer-voice detectors: containment drop, negative sentiment rise, NPS drop.

Each judges one share of a configured window's counts (``channel.windows.total``), as the
gauges define them (ratios of window sums):

| detector | trials | counted | direction |
|---|---|---|---|
| ``containment_drop`` | ``bot_sessions`` | ``bot_contained`` | lower is worse |
| ``negative_sentiment`` | ``sentiments`` | ``sentiment_negative`` | higher is worse |
| ``nps_drop`` | ``nps_responses`` | ``nps_detractors`` | higher is worse |

The count is tested with the exact one-sided binomial tail (``detectors/binomial.py``) under the
usual share ``p0``: active when ``P(X <= k | n, p0) < alpha`` (containment) or ``P(X >= k | n,
p0) < alpha`` (the others), the window has at least ``min_volume`` trials, and the share has
moved by a minimum factor (``max_ratio`` / ``min_ratio``). Once active, a signal stays active
while the tail is below ``recover_alpha`` and the share is past halfway between the usual share
and that factor (hysteresis).

The usual share is learnt online per hour-of-week slot: at each hour boundary the hour's counts
(differences of the cumulative counters, so every window length learns the same way) teach
the slot an exponentially weighted mean of trials and of each count; the share is the ratio
of the means (a ratio of sums, never an average of ratios). A slot with fewer than
``warmup_samples`` hours is blended with the all-hours share, itself blended with the prior.
An hour in which the series was active is not learnt (unless ``relearn_after`` such hours came
in a row): an incident never becomes the usual. A window's ``p0`` weights the slots it
overlaps by their minutes, so it changes at most once a minute.

``negative_sentiment`` also runs a binomial CUSUM per channel on its scores
(``share_cusum.py``, with its own pooled baseline, ``share_baseline.PooledBaseline``, learnt
with the detector's prior and weights; ``cusum_threshold`` 0: none): the signal is active
while the window test or the CUSUM is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from support_monitor.detectors.binomial import cdf, lower_critical, sf, upper_critical
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    WorstExport,
    window_index,
)
from support_monitor.detectors.share_baseline import RatioBaseline
from support_monitor.detectors.share_cusum import ShareCusum
from support_monitor.detectors.share_cusum_config import ShareCusumSettings
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.voice_config import (
    ContainmentDropSettings,
    NegativeSentimentSettings,
    NpsDropSettings,
)
from support_monitor.monitor.engine.state import ChannelRuntime
from support_monitor.monitor.engine.voice import DETRACTOR_MAX, PROMOTER_MIN
from support_monitor.monitor.engine.windows import Agg

HOUR = 3600.0
_P_MIN, _P_MAX = 1e-3, 1 - 1e-3
"""The usual share is clamped into this range: a share learnt as exactly 0 or 1 would make a
single contrary trial infinitely unlikely."""

VoiceSettings = ContainmentDropSettings | NegativeSentimentSettings | NpsDropSettings
Counts = tuple[int, ...]
"""(trials, counted, other counts of the kind), from a window or from the cumulative counters."""


@dataclass(frozen=True, slots=True)
class Kind:
    """What one detector reads and how it words its verdict."""

    name: str
    upward: bool
    window_counts: Callable[[Agg], Counts]
    cumulative: Callable[[ChannelRuntime], Counts]
    priors: tuple[float, ...]
    """Usual share of each count of ``Counts[1:]`` before anything is learnt."""


def _window_bot(agg: Agg) -> Counts:
    return (agg.bot_sessions, agg.bot_contained)


def _cumulative_bot(ch: ChannelRuntime) -> Counts:
    bot = ch.voice.bot
    return (sum(bot.values()), bot["contained"])


def _window_sentiment(agg: Agg) -> Counts:
    return (agg.sentiments, agg.sentiment_negative)


def _cumulative_sentiment(ch: ChannelRuntime) -> Counts:
    polarity = ch.voice.sentiment
    return (sum(polarity.values()), polarity["negative"])


def _window_nps(agg: Agg) -> Counts:
    return (agg.nps_responses, agg.nps_detractors, agg.nps_promoters)


def _cumulative_nps(ch: ChannelRuntime) -> Counts:
    scores = ch.voice.surveys["nps"]
    return (sum(scores), sum(scores[: DETRACTOR_MAX + 1]), sum(scores[PROMOTER_MIN:]))


class _Series:
    """One channel's state: baseline, flags, the hour's start counts and the last verdict."""

    __slots__ = ("active", "baseline", "exp_for", "expected", "flagged", "skipped", "start")

    def __init__(self, baseline: RatioBaseline) -> None:
        self.baseline = baseline
        self.active = False
        self.flagged = False
        """Active at some tick of the current hour (the hour is then not learnt)."""
        self.skipped = 0
        """Flagged hours in a row that were not learnt."""
        self.start: Counts | None = None
        """Cumulative counts at the start of the current hour."""
        self.exp_for: tuple[int, int] | None = None
        self.expected: tuple[float, ...] = ()


class CustomerVoiceDetector(WorstExport):
    """One of the three customer-voice detectors over its channels (one signal per channel that
    has had a trial; none before)."""

    def __init__(
        self,
        kind: Kind,
        settings: VoiceSettings,
        channels: list[str],
        span: float,
        windows: Sequence[str],
    ) -> None:
        self.kind = kind
        self.name = kind.name
        self.upward = kind.upward
        self.settings = settings
        self.channels = channels
        self.span = span
        self._window_i = window_index(windows, settings.window)
        self._window_label = _label(span)
        self._tz = ZoneInfo(settings.timezone)
        self._series = {ch: _Series(RatioBaseline(settings, kind.priors)) for ch in channels}
        self._period: int | None = None
        self._first_period: int | None = None
        self._keys: list[tuple[object, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]
        self._slot_cache: dict[int, int] = {}
        self._cusum_settings = _cusum_settings(settings)
        self._cusum = self._new_cusums()
        """Per channel: the binomial CUSUM (negative sentiment with ``cusum_threshold``)."""

    def _new_cusums(self) -> dict[str, ShareCusum]:
        cs = self._cusum_settings
        return {} if cs is None else {ch: ShareCusum(cs) for ch in self.channels}

    # ------------------------------------------------------------------ time slots

    def slot(self, t: float) -> int:
        """Hour of the week (0 = Monday 00:00-01:00) in the configured time zone."""
        hour = math.floor(t / HOUR)
        slot = self._slot_cache.get(hour)
        if slot is None:
            if len(self._slot_cache) > 256:
                self._slot_cache.clear()
            local = datetime.fromtimestamp(hour * HOUR, self._tz)
            slot = self._slot_cache[hour] = local.weekday() * 24 + local.hour
        return slot

    def _expected(self, st: _Series, now: float) -> tuple[float, ...]:
        """Usual shares over the window: each hour slot weighted by its minutes in the window
        (the window's start taken to the minute, so this changes at most once a minute)."""
        start = math.floor((now - self.span) / 60.0) * 60.0
        key = (int(start), st.baseline.version)
        if st.exp_for != key:
            end = start + self.span
            t = start
            totals = [0.0] * len(self.kind.priors)
            while t < end:
                edge = min(end, (math.floor(t / HOUR) + 1) * HOUR)
                weight = (edge - t) / self.span
                for j, share in enumerate(st.baseline.shares(self.slot(t))):
                    totals[j] += weight * share
                t = edge
            st.expected = tuple(totals)
            st.exp_for = key
        return st.expected

    # ------------------------------------------------------------------ state

    def export_state(self) -> dict[str, object]:
        return {
            "period": self._period,
            "first_period": self._first_period,
            "series": {
                ch: {
                    "active": st.active,
                    "flagged": st.flagged,
                    "skipped": st.skipped,
                    "start": None if st.start is None else list(st.start),
                    "baseline": st.baseline.dump(),
                }
                for ch, st in self._series.items()
            },
            "cusum": {ch: c.dump() for ch, c in self._cusum.items()},
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        """Put back what :meth:`export_state` returned; built first, assigned last, so a
        malformed state changes nothing."""
        series = {
            ch: _Series(RatioBaseline(self.settings, self.kind.priors)) for ch in self.channels
        }
        for ch, stored in data["series"].items():
            st = series.get(ch)
            if st is None:
                continue
            st.active, st.flagged = bool(stored["active"]), bool(stored["flagged"])
            st.skipped = int(stored["skipped"])
            start = stored["start"]
            st.start = None if start is None else tuple(int(x) for x in start)
            st.baseline.load(stored["baseline"])
        cusum = self._new_cusums()
        for ch, stored in data.get("cusum", {}).items():
            if ch in cusum:
                cusum[ch].load(stored)
        period, first = data["period"], data["first_period"]
        self._period = None if period is None else int(period)
        self._first_period = None if first is None else int(first)
        self._series, self._cusum = series, cusum
        self._keys = [None] * len(self.channels)

    # ------------------------------------------------------------------ a tick

    def evaluate(self, readings: Readings) -> Groups:
        now = readings.now
        period = math.floor(now / HOUR)
        if self._first_period is None:
            self._first_period = period
        boundary = self._period is None or period > self._period
        complete = (
            self._period is not None
            and period == self._period + 1
            and self._period != self._first_period
        )
        learnt_slot = self.slot((period - 0.5) * HOUR)
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        for i, name in enumerate(self.channels):
            ch = channels[name]
            st = self._series[name]
            if boundary:
                self._learn(st, ch, learnt_slot, learn=complete)
            agg = ch.windows.totals[self._window_i]
            counts = self.kind.window_counts(agg)
            expected = self._expected(st, now)
            cusum = self._cusum.get(name)
            if cusum is not None:
                total = self.kind.cumulative(ch)
                rising = cusum.step(now, (total[0], total[1]), self.slot)
            else:
                rising = False
            key = (counts, expected, rising)
            if self._keys[i] == key:
                continue
            self._keys[i] = key
            if counts[0] == 0 and self.kind.cumulative(ch)[0] == 0:
                out[i] = []  # never had a trial: no row, no verdict
                continue
            signal = self._judge(name, st, counts, expected)
            if rising and cusum is not None and not signal.active:
                signal = _rising(signal, cusum)
            out[i] = [signal]
        self._groups = out.result()
        self._period = period
        return self._groups

    def _learn(self, st: _Series, ch: ChannelRuntime, slot: int, *, learn: bool) -> None:
        """At an hour boundary: teach the ended hour's counts unless it was flagged."""
        now_counts = self.kind.cumulative(ch)
        start, st.start = st.start, now_counts
        flagged, st.flagged = st.flagged, st.active
        if not learn or start is None:
            return
        counts = tuple(a - b for a, b in zip(now_counts, start, strict=True))
        if counts[0] <= 0:
            return
        if flagged and st.skipped < self.settings.relearn_after:
            st.skipped += 1
            return
        st.skipped = 0
        st.baseline.learn(slot, counts)

    def _judge(
        self, channel: str, st: _Series, counts: Counts, expected: tuple[float, ...]
    ) -> Signal:
        s = self.settings
        n, k = counts[0], counts[1]
        share = k / n if n else math.nan
        floor = s.floor if isinstance(s, ContainmentDropSettings) else None
        p0 = min(_P_MAX, max(_P_MIN, floor if floor is not None else expected[0]))
        if n < s.min_volume:
            st.active = False
            summary = (
                f"{self._what(channel)} not judged: only {n} {self._trials} in "
                f"{self._window_label} (min_volume {s.min_volume})"
            )
            return self._signal(
                channel, active=False, share=share, threshold=math.nan, p0=p0, summary=summary
            )
        was = st.active
        alpha = s.recover_alpha if was else s.alpha
        need, active = self._need(s, counts, p0, floor, alpha, relaxed=was)
        if was and not active:  # recovered: report what a fresh signal needs
            alpha = s.alpha
            need, _ = self._need(s, counts, p0, floor, alpha, relaxed=False)
        threshold = need / n
        st.active = active
        st.flagged = st.flagged or active
        summary = self._summary(channel, counts, expected, p0, need, active=active, alpha=alpha)
        return self._signal(
            channel, active=active, share=share, threshold=threshold, p0=p0, summary=summary
        )

    def _need(
        self,
        s: VoiceSettings,
        counts: Counts,
        p0: float,
        floor: float | None,
        alpha: float,
        *,
        relaxed: bool,
    ) -> tuple[int, bool]:
        """The count at which the signal is active (at least it upward, at most it downward)
        and whether the window's count reaches it (with the NPS floor). At ``recover_alpha``
        (an active signal) the ratio condition is relaxed halfway to the usual share too, so a
        share hovering at ``max_ratio``/``min_ratio`` does not flap."""
        n, k = counts[0], counts[1]
        if isinstance(s, ContainmentDropSettings):
            need = lower_critical(n, p0, alpha)
            if floor is None:
                ratio = (1 + s.max_ratio) / 2 if relaxed else s.max_ratio
                need = min(need, math.floor(ratio * p0 * n + 1e-9))
            return need, k <= need
        ratio = (1 + s.min_ratio) / 2 if relaxed else s.min_ratio
        need = max(upper_critical(n, p0, alpha), math.ceil(ratio * p0 * n - 1e-9))
        if isinstance(s, NegativeSentimentSettings):
            need = max(need, s.min_count)
        active = k >= need
        if isinstance(s, NpsDropSettings) and s.floor is not None:
            active = active and _nps(counts) < s.floor
        return need, active

    def _signal(
        self, channel: str, *, active: bool, share: float, threshold: float, p0: float, summary: str
    ) -> Signal:
        return Signal(
            detector=self.name,
            channel=channel,
            active=active,
            score=share,
            threshold=threshold,
            expected=p0,
            summary=summary,
        )

    # ------------------------------------------------------------------ wording

    @property
    def _trials(self) -> str:
        return {"containment_drop": "sessions", "negative_sentiment": "scores"}.get(
            self.name, "NPS answers"
        )

    def _what(self, channel: str) -> str:
        what = {
            "containment_drop": "self-service containment",
            "negative_sentiment": "negative sentiment",
        }.get(self.name, "NPS")
        return f"{channel} {what}"

    def _summary(
        self,
        channel: str,
        counts: Counts,
        expected: tuple[float, ...],
        p0: float,
        need: int,
        *,
        active: bool,
        alpha: float,
    ) -> str:
        n, k = counts[0], counts[1]
        win = self._window_label
        if self.upward:
            p = sf(k, n, p0)
            fires = (
                f"fires at {need} or more" if need <= n else f"cannot fire at {n} {self._trials}"
            )
        else:
            p = cdf(k, n, p0)
            fires = (
                f"fires at {need} or fewer" if need >= 0 else f"cannot fire at {n} {self._trials}"
            )
        tail = f"p = {p:.1e} < {alpha:.2g}" if active else fires
        floor = getattr(self.settings, "floor", None)
        if self.name == "nps_drop" and not active and floor is not None and k >= need:
            tail = f"p = {p:.1e} < {alpha:.2g}, but not below the {floor:+.0f} floor"
        if self.name == "containment_drop":
            usual = f"the {floor:.0%} floor" if floor is not None else f"{p0:.0%} usual"
            return (
                f"{channel} self-service containment {k / n:.0%} over {win} "
                f"({k} of {n} sessions contained) vs {usual} ({tail})"
            )
        if self.name == "negative_sentiment":
            return (
                f"{channel} negative sentiment {k / n:.0%} over {win} ({k} of {n} scores) "
                f"vs {p0:.0%} usual ({tail})"
            )
        usual_nps = 100 * (expected[1] - expected[0])
        return (
            f"{channel} NPS {_nps(counts):+.0f} over {win} ({n} answers, {counts[2]} promoters, "
            f"{k} detractors) vs {usual_nps:+.0f} usual; detractors {k / n:.0%} vs {p0:.0%} "
            f"usual ({tail})"
        )


def _cusum_settings(settings: VoiceSettings) -> ShareCusumSettings | None:
    """The CUSUM of a negative-sentiment detector with ``cusum_threshold`` (none else): its
    ratio and threshold, and the detector's prior and baseline settings."""
    if not isinstance(settings, NegativeSentimentSettings) or settings.cusum_threshold <= 0:
        return None
    return ShareCusumSettings(
        ratio=settings.cusum_ratio,
        threshold=settings.cusum_threshold,
        prior=settings.prior,
        slot_weight=settings.slot_weight,
        global_weight=settings.global_weight,
        relearn_after=settings.relearn_after,
        timezone=settings.timezone,
    )


def _rising(signal: Signal, cusum: ShareCusum) -> Signal:
    """``signal`` made active by its CUSUM, which the summary names; ``sustained``, so that
    alert texts call it a sustained rise, not a value held past its alert level. Its
    ``expected`` is the share the CUSUM takes as usual (as the CSAT CUSUM's is): the rise is
    against that, which in the first hours can differ from the window test's usual share."""
    tuned = cusum.settings
    return Signal(
        detector=signal.detector,
        channel=signal.channel,
        active=True,
        score=signal.score,
        threshold=signal.threshold,
        expected=cusum.p0,
        labels=signal.labels,
        sustained=True,
        summary=(
            f"{signal.summary}; rising: CUSUM {cusum.stat:.1f} (active at {tuned.threshold:g}, "
            f"tuned for {tuned.ratio:g}x the usual {cusum.p0:.0%})"
        ),
    )


def _nps(counts: Counts) -> float:
    """NPS on the usual -100..100 scale: (promoters - detractors) / answers x 100."""
    n, detractors, promoters = counts
    return 100.0 * (promoters - detractors) / n if n else math.nan


def _label(span: float) -> str:
    """A window length in words people read: ``5 min``, ``1 h``, ``90 min``."""
    if span % HOUR == 0:
        return f"{span / HOUR:g} h"
    if span % 60 == 0:
        return f"{span / 60:g} min"
    return f"{span:g} s"


KINDS: dict[str, Kind] = {
    "containment_drop": Kind(
        "containment_drop", upward=False, window_counts=_window_bot,
        cumulative=_cumulative_bot, priors=(0.0,),
    ),
    "negative_sentiment": Kind(
        "negative_sentiment", upward=True, window_counts=_window_sentiment,
        cumulative=_cumulative_sentiment, priors=(0.0,),
    ),
    "nps_drop": Kind(
        "nps_drop", upward=True, window_counts=_window_nps, cumulative=_cumulative_nps,
        priors=(0.0, 0.0),
    ),
}  # fmt: skip
"""The three kinds; their priors are replaced by the settings' in :func:`build`."""


def build(
    name: str, settings: VoiceSettings, channels: list[str], span: float, windows: Sequence[str]
) -> CustomerVoiceDetector:
    """The detector ``name`` (one of ``KINDS``) with the priors of its settings."""
    kind = KINDS[name]
    if isinstance(settings, NpsDropSettings):
        priors: tuple[float, ...] = (settings.prior_detractors, settings.prior_promoters)
    else:
        priors = (settings.prior,)
    kind = Kind(kind.name, kind.upward, kind.window_counts, kind.cumulative, priors)
    return CustomerVoiceDetector(kind, settings, channels, span, windows)
