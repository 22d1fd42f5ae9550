"""How long the default and configured detectors can still change their verdict with no event.

The replay's tick road jumps over a quiet gap once nothing the tick handlers read can change
(``monitor.clock.quiet_horizon``). For the detectors that is the longest of:

- an oldest-wait threshold (and its recover level) of any channel, in seconds: a waiting
  contact crosses it with time alone (``relative_to`` thresholds per channel);
- the backlog detector's ``rate_window`` (its slope history);
- how long a CUSUM can stay active without an event: from its cap (threshold + ln r) down to
  its release level it falls by (r - 1) x rate per second, and the rate is at least 1 an hour
  for complaints and 12 an hour for arrivals (the backlog surge CUSUM, live channels only).

A CUSUM learns each complete hour also inside a gap; its step closes every hour boundary it
passes, so one long step learns exactly what a tick per second would. The first-response
drought of ``tickets_at_risk`` grows in silence instead, but it is judged only while the
longest window holds ``min_count`` new tickets: that window drains within its span after the
last event, and the span is already part of the engine's horizon (``monitor.clock``).

A binomial CUSUM (the CSAT threshold's ``cusum``, ``negative_sentiment``'s, the service-level
CUSUM of ``sla_burn``) does not move without outcomes: one left active by the last outcome lets
go at the first hour boundary that closes an hour without any, at most 2 hours after that
outcome (:func:`binomial_reset_horizon`; a service-level outcome can come up to T after the
last event, a breach at its deadline).

Once those conditions stop changing, a detector with its own persistence (``sustain``,
``release``: ``detectors/sustain.py``) can still change its signal for the longer of the two
(:func:`persistence_horizon`).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from support_monitor.detectors.backlog import SURGE_MIN_RATE_PER_HOUR
from support_monitor.detectors.complaint_cusum import MIN_RATE_PER_HOUR

if TYPE_CHECKING:
    from collections.abc import Mapping

    from support_monitor.detectors.config import DetectorSettings
    from support_monitor.monitor.config_channel import ChannelSettings


def cusum_hold(ratio: float, threshold: float, release: float, min_rate_per_hour: float) -> float:
    """Seconds an event-less CUSUM can stay active: (cap - release) / ((r - 1) x min rate)."""
    if threshold <= 0:
        return 0.0
    fall = threshold + math.log(ratio) - release
    return fall / ((ratio - 1.0) * min_rate_per_hour / 3600.0)


def detector_horizon(detectors: DetectorSettings, channels: Mapping[str, ChannelSettings]) -> float:
    """The longest time after the last event in which a detector verdict can still change."""
    spans = [0.0]
    backlog = detectors.backlog_growth
    if backlog.rate_window is not None:
        spans.append(backlog.rate_window)
    for t in detectors.active_thresholds:
        if t.metric == "support_queue_oldest_wait_seconds":
            for ch in channels.values():
                spans.extend(v for v in t.levels(ch.answer_seconds) if v is not None)
    spike = detectors.complaint_spike
    if spike.enabled:
        threshold = spike.cusum_threshold
        spans.append(cusum_hold(spike.cusum_ratio, threshold, threshold, MIN_RATE_PER_HOUR))
        fast = spike.cusum_fast_threshold
        spans.append(cusum_hold(spike.cusum_fast_ratio, fast, fast, MIN_RATE_PER_HOUR))
    live = [
        name
        for name, ch in channels.items()
        if ch.answer_seconds is not None and (not backlog.channels or name in backlog.channels)
    ]
    if backlog.enabled and live:  # the arrival CUSUM runs on live channels only
        surge = backlog.surge_threshold
        spans.append(cusum_hold(backlog.surge_ratio, surge, surge / 2, SURGE_MIN_RATE_PER_HOUR))
    return max(spans)


BINOMIAL_RESET = 2 * 3600.0
"""A binomial CUSUM is reset by the first closed hour without an outcome: within 2 h of the last."""


def binomial_reset_horizon(
    detectors: DetectorSettings, channels: Mapping[str, ChannelSettings]
) -> float:
    """Seconds after the last outcome decided by an event's time (a rating, an answer) in which
    a binomial CUSUM left active can still let go: ``BINOMIAL_RESET``, plus the longest answer
    target for the service-level CUSUM, whose last outcome may be a breach at a deadline (the
    caller adds the allowed lateness). 0 without such a CUSUM."""
    spans = [0.0]
    sentiment = detectors.negative_sentiment
    if any(t.cusum is not None for t in detectors.active_thresholds) or (
        sentiment.enabled and sentiment.cusum_threshold > 0
    ):
        spans.append(BINOMIAL_RESET)
    burn = detectors.sla_burn
    if burn.enabled and burn.cusum is not None and any(p.cusum for p in burn.windows):
        answers = [ch.answer_seconds for ch in channels.values() if ch.answer_seconds is not None]
        if answers:
            spans.append(BINOMIAL_RESET + max(answers))
    return max(spans)


def persistence_horizon(detectors: DetectorSettings) -> float:
    """The longest time a detector's signal can still change after its condition stopped
    changing: a condition that holds from then on is active ``sustain`` (or a sustained
    level's ``over``) later; one that stopped holding lets go within ``release`` (no held time is
    left in its window then)."""
    persistent = (detectors.backlog_growth, detectors.understaffing, detectors.estimated_wait)
    spans = [0.0, *(max(p.sustain, p.release) for p in persistent if p.enabled)]
    spans.extend(  # a threshold's sustained level: active within ``over``, released in ``release``
        max(t.sustained.over, t.sustained.release)
        for t in detectors.active_thresholds
        if t.sustained is not None
    )
    return max(spans)
