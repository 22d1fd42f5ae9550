"""SLA burn rate: how fast each live channel spends its service-level error budget.

error ratio = 1 - service level over a window (from the window's counts), budget = 1 - target,
burn rate = error ratio / budget. A pair fires only when both its long window (it matters) and its
short window (it is still happening) burn at least ``burn_rate``: the long one keeps a short blip
quiet, the short one lets the alert resolve soon after recovery. With target t the highest possible
burn rate is 1 / (1 - t) (every contact missed), e.g. 5 for 80%.
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
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.readout import service_level
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


def _doubt(long_agg: Agg, short_agg: Agg, level: float, confidence: float) -> str:
    """Why the windows do not yet show a service level below ``level`` at ``confidence`` (the
    one-sided Wilson upper bound of in SLA / offered), "" when both do."""
    for agg in (long_agg, short_agg):
        n = offered(agg)
        upper = wilson(agg.answered_in_sla, n, confidence)[1]
        if not upper < level:
            return (
                f"{agg.answered_in_sla} of {n} within T could still be a service level of "
                f"{upper:.0%} ({confidence * 100:g}% bound), not below {level:.0%}"
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
        self._shown: dict[tuple[str, int], float] = {}
        """(channel, pair index) -> since when each active pair with a confidence has been
        active. Its evidence must be shown at every judgement for ``HOLD_AFTER`` seconds (the
        default rule's ``for``: so the rule fires exactly as on evidence alone); from then on it
        stays active while it burns at its rate with ``min_volume`` offered, evidence or not
        (thinning traffic in an ongoing collapse must not read as an all-clear)."""

    def export_state(self) -> dict[str, object]:
        """Since when each pair with a confidence has been active."""
        return {"shown": sorted([ch, j, t] for (ch, j), t in self._shown.items())}

    def restore_state(self, data: dict[str, Any]) -> None:
        self._shown = {
            (str(ch), int(j)): float(t)
            for ch, j, t in data["shown"]
            if ch in self._targets and 0 <= int(j) < len(self._pairs)
        }
        self._keys = [None] * len(self.channels)

    def evaluate(self, readings: Readings) -> Groups:
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        used = self._used
        for i, channel in enumerate(self.channels):
            totals = channels[channel].windows.totals
            key = tuple(
                [n for w in used for n in _inputs(totals[w])]
                if len(used) != 2
                else (*_inputs(totals[used[0]]), *_inputs(totals[used[1]]))
            )
            if key == self._keys[i]:
                continue
            self._keys[i] = key
            out[i] = self._judge(channel, totals, readings.now)
        self._groups = out.result()
        return self._groups

    def _judge(self, channel: str, totals: Sequence[Agg], now: float) -> list[Signal]:
        out = []
        min_volume = self.settings.min_volume
        target = self._targets[channel]
        for j, (long_name, short_name, long_i, short_i, pair) in enumerate(self._pairs):
            # Configured pairs above the ceiling are refused; a default one is capped there.
            limit = min(pair.burn_rate, max_burn_rate(target))
            level = 1.0 - limit * (1.0 - target)  # the service level the burn rate stands for
            if pair.confidence is not None and level <= 0:
                continue  # a default pair capped at 0%: no bound is ever below it (no signal)
            long_agg = totals[long_i]
            short_agg = totals[short_i]
            long_burn = burn_rate(service_level(long_agg), target)
            short_burn = burn_rate(service_level(short_agg), target)
            low = min(offered(long_agg), offered(short_agg))
            both = long_burn + short_burn
            score = math.nan if math.isnan(both) else min(long_burn, short_burn)
            guarded = low < min_volume
            active = not guarded and score >= limit
            doubt = ""
            if pair.confidence is not None:
                since = self._shown.get((channel, j))
                held = since is not None and now - since >= HOLD_AFTER
                if active and not held:
                    doubt = _doubt(long_agg, short_agg, level, pair.confidence)
                    active = not doubt
                if not active:
                    self._shown.pop((channel, j), None)
                elif since is None:
                    self._shown[channel, j] = now
            if guarded:
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
                    active=active,
                    score=score,
                    threshold=limit,
                    labels=(
                        ("long", long_name),
                        ("severity", pair.severity),
                        ("short", short_name),
                    ),
                    summary=summary,
                )
            )
        return out

    def export(self, signals: list[Signal]) -> Signal:
        """Gauge row per channel: the strictest active pair, else the one closest to firing."""
        active = [s for s in signals if s.active]
        if active:
            return max(active, key=lambda s: s.threshold)
        return min(signals, key=lambda s: s.threshold)
