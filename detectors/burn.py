"""SLA burn rate: how fast each live channel spends its service-level error budget.

error ratio = 1 - service level over a window (from the window's counts), budget = 1 - target,
burn rate = error ratio / budget. A pair fires only when both its long window (it matters) and its
short window (it is still happening) burn at least ``burn_rate``: the long one keeps a short blip
quiet, the short one lets the alert resolve soon after recovery. With target t the highest possible
burn rate is 1 / (1 - t) (every contact missed), e.g. 5 for 80%. A pair with ``cusum: true`` is
also active while the channel's service-level CUSUM is (``sl_cusum.py``): a drop its window does
not show on its own yet; the signal then says ``sustained``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from support_monitor.detectors.config import (
    BURN_DIGITS,
    BurnWindow,
    SlaBurnSettings,
    max_burn_rate,
)
from support_monitor.detectors.evidence import wilson
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    fmt,
    offered,
    window_index,
)
from support_monitor.detectors.share_cusum import HourOfWeek
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.sl_cusum import ServiceLevelCusum
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.readout import service_level
from support_monitor.monitor.engine.state import ChannelRuntime
from support_monitor.monitor.engine.windows import Agg


def burn_rate(service_level_ratio: float, target: float) -> float:
    """(1 - SL) / (1 - target), rounded to ``BURN_DIGITS`` decimals (so that a burn of exactly
    the threshold reaches it whatever the target's float error); NaN when the service level is
    (NaN: no contacts)."""
    burn = (1.0 - service_level_ratio) / (1.0 - target)
    return round(burn, BURN_DIGITS) if math.isfinite(burn) else burn


def _inputs(a: Agg) -> tuple[int, int, int, int]:
    """What a window's service level is made of."""
    return (a.answered_in_sla, a.answered, a.abandoned, a.abandoned_short)


def _outcomes(ch: ChannelRuntime) -> tuple[int, int]:
    """The channel's cumulative service-level outcomes (decided, bad): answered within T, still
    waiting at the deadline (a breach), gave up within T after ``short_abandon_seconds``."""
    good = breached = gave_up = 0
    for q in ch.queues.values():
        good += q.answered_in_sla
        breached += q.breaches_answer
        gave_up += q.abandoned_in_sla - q.abandoned_short
    settings = ch.settings
    answer = settings.answer_seconds
    if answer is None or settings.short_abandon_seconds > answer:
        gave_up = 0  # every abandon within T is a short one: none counts
    bad = breached + gave_up
    return good + bad, bad


def _doubt(
    windows: tuple[tuple[str, Agg], tuple[str, Agg]], level: float, confidence: float
) -> str:
    """Why the (long, short) windows do not yet show a service level below ``level`` at
    ``confidence`` (the one-sided Wilson upper bound of in SLA / offered), naming the first
    window that does not; "" when both do."""
    for name, agg in windows:
        n = offered(agg)
        upper = wilson(agg.answered_in_sla, n, confidence)[1]
        if not upper < level:
            return (
                f"{agg.answered_in_sla} of {n} within T over {name} could still be a service "
                f"level of {upper:.0%} ({confidence * 100:g}% bound), not below {level:.0%}"
            )
    return ""


HOLD_AFTER = 120.0
"""A pair with a ``confidence`` active (on evidence) this long is held while it burns: the
default ``ServiceLevelBurn`` rule's ``for``, so the rule's firing still needs the evidence at
every evaluation of its pending time."""


class SlaBurnDetector:
    """One signal per (channel, window pair), labelled ``long``, ``short`` and ``severity``.

    A channel is judged again only when one of the four counts the service level of its windows
    is made of (answered in SLA, answered, abandoned, short abandoned) changed."""

    name = "sla_burn"
    upward = True
    sustained_words = (
        " (a sustained drop, too gradual for one window to show yet)",
        (
            " One window alone does not show it at the alert level yet: the service-level "
            "CUSUM pages on the share of contacts out of SLA staying well above its usual share "
            "for several windows."
        ),
    )
    """The alert texts of a signal the CUSUM made active (``alerts.rules``): they give the
    service level, which drops, not the burn rate, which rises."""

    def __init__(
        self,
        settings: SlaBurnSettings,
        channels: list[str],
        channel_settings: Mapping[str, ChannelSettings],
        windows: Sequence[str],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self._targets: dict[str, float] = {}
        for name in channels:
            target = channel_settings[name].service_level_target
            assert target is not None
            self._targets[name] = target
        names = list(windows)
        self._pairs: list[tuple[str, str, int, int, BurnWindow]] = []
        labels: set[tuple[int, int, str]] = set()
        for pair in settings.windows:
            long_i, short_i = window_index(names, pair.long), window_index(names, pair.short)
            key = (long_i, short_i, pair.severity)
            if key in labels:  # only defaults repeat (configured repeats are refused): one window
                continue
            labels.add(key)
            self._pairs.append((names[long_i], names[short_i], long_i, short_i, pair))
        self._used = sorted({i for p in self._pairs for i in (p[2], p[3])})
        self._keys: list[tuple[int, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]
        cusum = settings.cusum if any(p[4].cusum for p in self._pairs) else None
        self._slot_of = HourOfWeek(cusum.timezone if cusum is not None else "UTC")
        self._cusum = {ch: ServiceLevelCusum(cusum) for ch in channels} if cusum else {}
        """Per channel: the service-level CUSUM (none when no pair has ``cusum: true``)."""
        self._shown: dict[tuple[str, int], float] = {}
        """(channel, pair index) -> since when each active pair with a confidence has been
        active. Its evidence must be shown at every judgement for ``HOLD_AFTER`` seconds (the
        default rule's ``for``: so the rule fires exactly as on evidence alone); from then on it
        stays active while it burns at its rate with ``min_volume`` offered, evidence or not
        (thinning traffic in an ongoing collapse must not read as an all-clear)."""

    def export_state(self) -> dict[str, object]:
        """Since when each pair with a confidence has been active; the CUSUMs."""
        state: dict[str, object] = {
            "shown": sorted([ch, j, t] for (ch, j), t in self._shown.items())
        }
        if self._cusum:
            state["cusum"] = {ch: c.dump() for ch, c in self._cusum.items()}
        return state

    def restore_state(self, data: dict[str, Any]) -> None:
        cusum = self.settings.cusum
        fresh = {ch: ServiceLevelCusum(cusum) for ch in self._cusum} if cusum else {}
        for ch, stored in data.get("cusum", {}).items():
            if ch in fresh:
                fresh[ch].load(stored)
        shown = {
            (str(ch), int(j)): float(t)
            for ch, j, t in data["shown"]
            if ch in self._targets and 0 <= int(j) < len(self._pairs)
        }
        self._shown, self._cusum = shown, fresh
        self._keys = [None] * len(self.channels)

    def evaluate(self, readings: Readings) -> Groups:
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        used = self._used
        for i, channel in enumerate(self.channels):
            ch = channels[channel]
            totals = ch.windows.totals
            cusum = self._cusum.get(channel)
            rising = cusum is not None and cusum.step(readings.now, _outcomes(ch), self._slot_of)
            key = (
                *(
                    [n for w in used for n in _inputs(totals[w])]
                    if len(used) != 2
                    else (*_inputs(totals[used[0]]), *_inputs(totals[used[1]]))
                ),
                rising,
            )
            if key == self._keys[i]:
                continue
            self._keys[i] = key
            out[i] = self._judge(channel, totals, readings.now, rising=rising)
        self._groups = out.result()
        return self._groups

    def _judge(
        self, channel: str, totals: Sequence[Agg], now: float, *, rising: bool
    ) -> list[Signal]:
        out = []
        min_volume = self.settings.min_volume
        target = self._targets[channel]
        for j, (long_name, short_name, long_i, short_i, pair) in enumerate(self._pairs):
            # Configured pairs above the ceiling are refused; a default one is capped there.
            limit = min(pair.burn_rate, max_burn_rate(target))
            level = 1.0 - limit * (1.0 - target)  # the service level the burn rate stands for
            capped = pair.confidence is not None and level <= 0
            cusum = pair.cusum and bool(self._cusum)
            if capped and not cusum:
                continue  # a default pair capped at 0%: no bound is ever below it (no signal)
            long_agg = totals[long_i]
            short_agg = totals[short_i]
            long_burn = burn_rate(service_level(long_agg), target)
            short_burn = burn_rate(service_level(short_agg), target)
            low = min(offered(long_agg), offered(short_agg))
            both = long_burn + short_burn
            score = math.nan if math.isnan(both) else min(long_burn, short_burn)
            guarded = low < min_volume
            active = not guarded and score >= limit and not capped
            doubt = ""
            if pair.confidence is not None:
                windows = ((long_name, long_agg), (short_name, short_agg))
                doubt = self._evidence((channel, j), active, windows, level, now)
                active = active and not doubt
            sustained = not active and rising and cusum
            if sustained:
                summary = self._rising(channel, short_burn, short_name, target)
            elif guarded:
                summary = (
                    f"{channel} SLA burn not judged: {low} offered contacts in a window "
                    f"(min_volume {min_volume})"
                )
            elif doubt:
                summary = f"{channel} SLA burn {fmt(score)}x, not yet shown: {doubt}"
            elif long_name == short_name:  # a single-window pair (judged on evidence)
                summary = (
                    f"{channel} burns its {target:.0%} service-level budget "
                    f"{fmt(short_burn)}x over {short_name} (threshold {limit:g}x)"
                )
            else:
                summary = (
                    f"{channel} burns its {target:.0%} service-level budget "
                    f"{fmt(long_burn)}x over {long_name} and {fmt(short_burn)}x over "
                    f"{short_name} (threshold {limit:g}x)"
                )
            out.append(
                Signal(
                    detector=self.name,
                    channel=channel,
                    active=active or sustained,
                    score=score,
                    threshold=limit,
                    labels=(
                        ("long", long_name),
                        ("severity", pair.severity),
                        ("short", short_name),
                    ),
                    summary=summary,
                    sustained=sustained,
                )
            )
        return out

    def _evidence(
        self,
        key: tuple[str, int],
        active: bool,
        windows: tuple[tuple[str, Agg], tuple[str, Agg]],
        level: float,
        now: float,
    ) -> str:
        """For an ``active`` pair with a confidence: why its windows do not show the service
        level below ``level`` ("" when they do, or when it has been shown for ``HOLD_AFTER``);
        keeps since when each such pair has been active."""
        since = self._shown.get(key)
        doubt = ""
        if active and (since is None or now - since < HOLD_AFTER):
            confidence = self._pairs[key[1]][4].confidence
            assert confidence is not None
            doubt = _doubt(windows, level, confidence)
        if not active or doubt:
            self._shown.pop(key, None)
        elif since is None:
            self._shown[key] = now
        return doubt

    def _rising(self, channel: str, burn: float, window: str, target: float) -> str:
        cusum = self._cusum[channel]
        tuned = cusum.settings
        usual = cusum.cusum.p0
        return (
            f"{channel} burns its {target:.0%} service-level budget {fmt(burn)}x over {window}; "
            f"contacts out of SLA rising: CUSUM {cusum.cusum.stat:.1f} (active at "
            f"{cusum.threshold:.1f}, tuned for {tuned.ratio:g}x the usual {usual:.0%}, "
            f"dispersion {cusum.phi:.2f})"
        )

    def export(self, signals: list[Signal]) -> Signal:
        """Gauge row per channel: the strictest active pair (highest threshold), else the pair
        with the lowest threshold."""
        active = [s for s in signals if s.active]
        if active:
            return max(active, key=lambda s: s.threshold)
        return min(signals, key=lambda s: s.threshold)
