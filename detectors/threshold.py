"""Threshold detector: ``metric op value`` on a gauge of the metric contract.

It reads the values of the exporter's own rows (``LIVE_GAUGES``/``WINDOW_GAUGES``, straight from
the engine), so an alert on ``support_queue_oldest_wait_seconds > 120`` judges exactly what the
wall board shows. Ratios and quantiles carry a minimum-volume guard (a
1-call hour at 0% service level is not an incident), and an optional ``recover`` level gives
hysteresis so a value hovering at the threshold does not flap. A CSAT threshold may also carry
a binomial CUSUM on the share of unsatisfied ratings (``cusum``, ``detectors/share_cusum.py``):
the signal is then active while either the threshold or the CUSUM is. A live threshold may
carry a ``sustained`` level (lower than ``value``): the signal is also active once the value has
stayed past it for most of the last minutes (``detectors/sustain.py``).
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import msgspec

from support_monitor.detectors.config import LONGEST, METRICS, SHORTEST, ThresholdSettings
from support_monitor.detectors.evidence import wilson
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    WorstExport,
    fmt,
    offered,
    same,
    window_index,
)
from support_monitor.detectors.share_cusum import HourOfWeek, ShareCusum
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.sustain import Sustain
from support_monitor.monitor.engine.readout import LIVE_GAUGES, WINDOW_GAUGES, breached_waiting
from support_monitor.monitor.engine.state import ChannelRuntime
from support_monitor.monitor.engine.windows import Agg

LONE = 2
"""``service_level_evidence`` holds back a page only while at most this many customers of the
channel wait past T (more: a queue is not being answered, whatever the others do)."""
LONE_CEILING = 2.0
"""``service_level_evidence`` holds back a page only while the value is below this multiple of
its level, when the level is above 0 (a customer waiting twice as long as the page level is an
incident, alone or not)."""
SHORT_EVIDENCE = 10
"""``service_level_evidence`` takes the shortest window's service level alone when it counts
at least this many contacts (offered and waiting past T; ``sla_burn``'s default ``min_volume``);
on fewer (0 of 3 at night) the longest window must show it too."""

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _combine(values: Sequence[float], how: str) -> float:
    """The values combined by ``how`` (``sum``, ``max``, ``min``), NaNs left out; NaN when
    none is left."""
    if values and (total := sum(values)) == total:  # no NaN (nor inf - inf): none to leave out
        kept = values
    else:
        kept = [v for v in values if not math.isnan(v)]
        if not kept:
            return math.nan
    if how == "sum":
        return math.fsum(kept)
    return max(kept) if how == "max" else min(kept)


def _unsatisfied(ch: ChannelRuntime) -> tuple[int, int]:
    """The channel's cumulative (ratings, unsatisfied ratings 1-3)."""
    ratings = ch.ratings
    bad = ratings[1] + ratings[2] + ratings[3]
    return (bad + ratings[4] + ratings[5], bad)


def _volume(agg: Agg, kind: str) -> int:
    if kind == "offered":
        return offered(agg)
    if kind == "answered":
        return agg.answered
    return agg.ratings


class ThresholdDetector(WorstExport):
    """One configured threshold instance over its channels (and queues, with ``per_queue``).

    Per channel it reads the gauge's values (one per queue, or the window's value and its
    volume) and judges again only when they differ from the last tick's; the hysteresis flag
    it would compare against is then unchanged too, so the last signals still hold."""

    def __init__(
        self, settings: ThresholdSettings, channels: list[str], windows: Sequence[str]
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.upward = settings.upward
        self.channels = channels
        self._info = METRICS[settings.metric]
        self._op = _OPS[settings.op]
        self._aggregate = settings.effective_aggregate
        self._active: dict[tuple[str, str], bool] = {}
        self._window = ""
        self._window_i = 0
        if settings.window is not None:
            self._window_i = window_index(windows, settings.window)
            self._window = list(windows)[self._window_i]
        self._evidence_i = tuple(
            dict.fromkeys((window_index(windows, SHORTEST), window_index(windows, LONGEST)))
        )
        """The shortest and then the longest window's position (one with one window): the
        service levels of ``service_level_evidence``."""
        self._live_value = LIVE_GAUGES.get(settings.metric)
        self._window_value = WINDOW_GAUGES.get(settings.metric)
        self._keys: list[Any] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]
        self._levels: dict[str, tuple[float, float | None]] = {}
        """Per channel: (value, recover), scaled by its T with ``relative_to``."""
        self._held_levels: dict[str, float | None] = {}
        """Per channel: the ``sustained`` level, scaled by its T with ``relative_to``."""
        cusum = settings.cusum
        self._slot_of = HourOfWeek(cusum.timezone if cusum is not None else "UTC")
        self._cusum = {ch: ShareCusum(cusum) for ch in channels} if cusum is not None else {}
        """Per channel: the CUSUM of ``cusum`` (none without)."""
        self._held = self._new_held()
        """Per channel: the persistence of the ``sustained`` level (none without)."""
        self._peaks: dict[str, deque[tuple[float, float]]] = {ch: deque() for ch in self._held}
        """Per channel with a sustained level: (time, value) of the running maximum over its
        ``over`` seconds, each later value smaller (so the first is the peak)."""

    def _new_held(self) -> dict[str, Sustain]:
        arm = self.settings.sustained
        if arm is None:
            return {}
        return {ch: Sustain(arm.over, arm.release, hold_share=arm.share) for ch in self.channels}

    def export_state(self) -> dict[str, object]:
        """The hysteresis flags: which (channel, queue) was active at the last tick; with a
        CUSUM, its state per channel."""
        state: dict[str, object] = {"active": [[ch, q, a] for (ch, q), a in self._active.items()]}
        if self._cusum:
            state["cusum"] = {ch: c.dump() for ch, c in self._cusum.items()}
        if self._held:
            state["sustained"] = {ch: h.dump() for ch, h in self._held.items()}
            state["peaks"] = {ch: [list(p) for p in peaks] for ch, peaks in self._peaks.items()}
        return state

    def restore_state(self, data: dict[str, Any]) -> None:
        active = {(str(ch), str(q)): bool(a) for ch, q, a in data["active"]}
        cusum = self.settings.cusum
        fresh = {ch: ShareCusum(cusum) for ch in self.channels} if cusum is not None else {}
        for ch, stored in data.get("cusum", {}).items():
            if ch in fresh:
                fresh[ch].load(stored)
        held = self._new_held()
        for ch, stored in data.get("sustained", {}).items():
            if ch in held:
                held[ch].load(stored)
        peaks: dict[str, deque[tuple[float, float]]] = {ch: deque() for ch in held}
        for ch, stored in data.get("peaks", {}).items():
            if ch in peaks:
                peaks[ch].extend((float(t), float(v)) for t, v in stored)
        self._active, self._cusum, self._held, self._peaks = active, fresh, held, peaks
        self._keys = [None] * len(self.channels)  # judge every channel again

    def evaluate(self, readings: Readings) -> Groups:
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        windowed = self._info.kind == "windowed"
        for i, channel in enumerate(self.channels):
            ch = channels[channel]
            if channel not in self._levels:
                answer = ch.settings.answer_seconds
                self._levels[channel] = self.settings.levels(answer)
                self._held_levels[channel] = self.settings.sustained_level(answer)
            last = self._keys[i]
            if windowed:
                value, volume = self._window_inputs(ch.windows.totals[self._window_i])
                cusum = self._cusum.get(channel)
                rising = cusum is not None and cusum.step(
                    readings.now, _unsatisfied(ch), self._slot_of
                )
                usual = math.nan if cusum is None else 1.0 - cusum.p0
                if (
                    last is not None
                    and same(value, last[0])
                    and volume == last[1]
                    and rising == last[2]
                    and same(usual, last[3])
                ):
                    continue
                self._keys[i] = (value, volume, rising, usual)
                signals = [self._windowed(channel, value, volume, rising=rising, usual=usual)]
            else:
                values = self._queue_values(readings, ch)
                # the channel's value (not needed with per_queue, where each queue is judged
                # and no sustained level is allowed)
                combined = (
                    math.nan if self.settings.per_queue else _combine(values, self._aggregate)
                )
                held = self._held.get(channel)
                peak = math.nan
                if held is not None:
                    arm = self._step_held(channel, held, combined, readings.now)
                    key: Any = (values, arm)
                    peak = arm[2]
                else:
                    key = values
                met = ""
                if self._may_start(channel, values, combined, held):
                    met = self._service_level_met(ch, readings.now, values, combined)
                if met:
                    key = (key, met)
                if key == last:  # live gauges are never NaN
                    continue
                self._keys[i] = key
                signals = self._live(channel, ch, values, combined, met)
                if held is not None and held.active and not met:
                    signals = [self._sustained(channel, signals[0], held, readings.now, peak)]
            out[i] = signals
        self._groups = out.result()
        return self._groups

    def _step_held(
        self, channel: str, held: Sustain, value: float, now: float
    ) -> tuple[bool, float, float]:
        """Step the sustained level's persistence with the channel's value; (active, since,
        the worst value over the level's ``over`` seconds)."""
        s = self.settings
        level = self._held_levels[channel]
        assert level is not None
        assert s.sustained is not None
        held.step(now, not math.isnan(value) and self._op(value, level))
        peaks = self._peaks[channel]
        if not math.isnan(value):
            while peaks and not self._op(peaks[-1][1], value):  # no worse than the new one
                peaks.pop()
            peaks.append((now, value))
        edge = now - s.sustained.over
        while len(peaks) > 1 and peaks[0][0] <= edge:
            peaks.popleft()
        return held.active, held.since, peaks[0][1] if peaks else math.nan

    def _sustained(
        self, channel: str, signal: Signal, held: Sustain, now: float, peak: float
    ) -> Signal:
        """The channel's signal while its sustained level is active: active, judged against
        that level, its score the worst value over the level's ``over`` seconds, past the level
        (unless the threshold itself is active: then its own signal)."""
        if signal.active:
            return signal
        s = self.settings
        arm = s.sustained
        level = self._held_levels[channel]
        assert arm is not None
        assert level is not None
        share = held.held_share(now, arm.over)
        return msgspec.structs.replace(
            signal,
            active=True,
            score=peak,
            threshold=level,
            since=held.since,
            live=not math.isnan(signal.score) and self._op(signal.score, level),
            summary=(
                f"{s.metric} on {channel} {s.op} {level:g} for {share:.0%} of the last "
                f"{arm.over:g}s (sustained level, active from {arm.share:.0%}); worst "
                f"{fmt(peak)}, now {fmt(signal.score)}"
            ),
        )

    def _window_inputs(self, agg: Agg) -> tuple[float, int | None]:
        assert self._window_value is not None
        value = self._window_value(agg, self.settings.quantile)
        volume = _volume(agg, self._info.volume) if self._info.volume is not None else None
        return value, volume

    def _windowed(
        self,
        channel: str,
        value: float,
        volume: int | None,
        *,
        rising: bool = False,
        usual: float = math.nan,
    ) -> Signal:
        """``usual``: the satisfied share the CUSUM takes as usual now (the signal's
        ``expected``; NaN without a CUSUM)."""
        s = self.settings
        guard = ""
        if volume is not None and volume < s.effective_min_volume:
            guard = (
                f"only {volume} {self._info.volume} in {self._window} "
                f"(min_volume {s.effective_min_volume})"
            )
        bound = math.nan
        if s.confidence is not None and volume and not math.isnan(value):
            lower, upper = wilson(value * volume, volume, s.confidence)
            bound = lower if self.upward else upper
        signal = self._judge(channel, "", value, guard, bound=bound, volume=volume)
        if not math.isnan(usual):
            signal = msgspec.structs.replace(signal, expected=usual)
        if not rising or signal.active:
            return signal
        cusum = self._cusum[channel]
        tuned = cusum.settings
        summary = (
            f"{signal.summary}; unsatisfied ratings rising: CUSUM {cusum.stat:.1f} (active at "
            f"{tuned.threshold:g}, tuned for {tuned.ratio:g}x the usual {cusum.p0:.0%})"
        )
        return Signal(
            detector=signal.detector,
            channel=channel,
            active=True,
            score=signal.score,
            threshold=signal.threshold,
            expected=signal.expected,
            labels=signal.labels,
            summary=summary,
            sustained=True,
        )

    def _queue_values(self, readings: Readings, ch: ChannelRuntime) -> tuple[float, ...]:
        """One value per queue: the queue's rows combined (``aggregate``), as the rows of the
        gauge would be grouped by their ``queue`` label."""
        s = self.settings
        how = self._aggregate
        now = readings.now
        queues = ch.queues.values()
        if s.metric == "support_queue_oldest_wait_seconds" and how != "sum":
            # one row per queue, combined with itself: the row's value
            return readings.waits(ch.name)[0]
        read = self._live_value
        assert read is not None
        return tuple(
            [
                _combine([v for sla, v in read(q, now) if s.sla is None or sla == s.sla], how)
                for q in queues
            ]
        )

    def _may_start(
        self, channel: str, values: tuple[float, ...], combined: float, held: Sustain | None
    ) -> bool:
        """Whether ``service_level_evidence`` can change the channel's signals now: a value
        (``combined``, or with ``per_queue`` one of ``values``) is past the threshold (a page
        could start), or the sustained level is active (the evidence also holds that level
        back). Otherwise the evidence is not looked at."""
        if self.settings.service_level_evidence is None:
            return False
        if held is not None and held.active:
            return True
        threshold = self._levels[channel][0]
        if self.settings.per_queue:
            return any(self._op(v, threshold) for v in values)
        return self._op(combined, threshold)

    def _service_level_met(
        self, ch: ChannelRuntime, now: float, values: tuple[float, ...], combined: float
    ) -> str:
        """With ``service_level_evidence``: why a lone customer past T is no incident, the
        channel's service level not being shown below its target over the shortest window,
        or, when that window counts fewer than ``SHORT_EVIDENCE`` contacts, over the longest
        window ("" when it is, when more than ``LONE`` customers of the channel wait past T now,
        when the value (with ``per_queue`` the worst queue's) is ``LONE_CEILING`` times its
        level or more, when nobody was offered in a window nor waits past T, or without the
        setting). The customers waiting past T now count as contacts out of SLA: they are,
        whatever happens to them next. So at the default 0.999 one or two customers alone at
        night (0 of 1, 0 of 2) are held back, and so are one or two after a few late answers
        (0 of 3) in an hour that met its target; three customers past T are not."""
        confidence = self.settings.service_level_evidence
        target = ch.settings.service_level_target
        if confidence is None or target is None:
            return ""
        level = self._levels[ch.name][0]
        if self.upward and level > 0:  # (a level of 0 has no "twice as long")
            worst = max(values, default=math.nan) if self.settings.per_queue else combined
            if worst >= LONE_CEILING * level:  # NaN: not past it
                return ""
        past_t = 0
        for q in ch.queues.values():
            # what ``breached_waiting`` says of a queue nobody waits in, without the call
            past_t += breached_waiting(q, now) if q.waiting else q.breached_waiting
            if past_t > LONE:
                return ""
        for i in self._evidence_i:
            agg = ch.windows.totals[i]
            done = offered(agg)
            n = done + past_t
            if n == 0:
                break
            _, upper = wilson(agg.answered_in_sla, n, confidence)
            if upper >= target:
                waiting = f" and {past_t} waiting past T" if past_t else ""
                return (
                    f"service level {agg.answered_in_sla / n:.0%} of {done} offered{waiting} "
                    f"over {ch.windows.names[i]} not shown below the {target:.0%} target "
                    f"(upper bound {upper:.0%} at {confidence:g})"
                )
            if n >= SHORT_EVIDENCE:
                break
        return ""

    def _live(
        self,
        channel: str,
        ch: ChannelRuntime,
        values: tuple[float, ...],
        combined: float,
        guard: str = "",
    ) -> list[Signal]:
        """The channel's signal judged on ``combined``, or with ``per_queue`` one signal per
        queue (``values`` in ``ch.queues`` order), sorted by queue."""
        if self.settings.per_queue:
            per_queue = dict(zip(ch.queues, values, strict=True))
            return [
                self._judge(channel, q, v, guard, starts_only=True)
                for q, v in sorted(per_queue.items())
            ]
        return [self._judge(channel, "", combined, guard, starts_only=True)]

    def _judge(
        self,
        channel: str,
        queue: str,
        value: float,
        guard: str,
        *,
        bound: float = math.nan,
        volume: int | None = None,
        starts_only: bool = False,
    ) -> Signal:
        """``bound``: the Wilson bound of a guarded ratio (NaN: no statistical guard).
        ``starts_only``: ``guard`` (the service-level evidence of a live gauge) only keeps an
        inactive signal inactive; an active one is judged as if unguarded, so a page for a
        customer's wait is not let go while that wait is still past the level."""
        s = self.settings
        threshold, recover = self._levels[channel]
        key = (channel, queue)
        was = self._active.get(key, False)
        if starts_only and was:
            guard = ""
        guarded = s.confidence is not None
        past = self._op(value, threshold)
        shown = past and (not guarded or (not math.isnan(bound) and self._op(bound, threshold)))
        if guard or math.isnan(value):
            active = False
        else:
            active = shown or (was and recover is not None and self._op(value, recover))
        self._active[key] = active
        where = channel if not queue else f"{channel}/{queue}"
        metric = s.metric if s.window is None else f"{s.metric}{{window={s.window}}}"
        if guard:
            summary = f"{metric} on {where} not judged: {guard}"
        elif active and not shown:
            summary = f"{metric} on {where} is {fmt(value)}, not yet back past {recover:g}"
        elif past and not shown:
            side = "lower" if self.upward else "upper"
            summary = (
                f"{metric} on {where} {fmt(value)} of {volume} is {s.op} {threshold:g} but not "
                f"shown at {s.confidence:g} confidence ({side} bound {fmt(bound)})"
            )
        else:
            verb = "is" if active else "is not"
            summary = f"{metric} on {where} {fmt(value)} {verb} {s.op} {threshold:g}"
            if guarded and active:
                side = "lower" if self.upward else "upper"
                summary += f" ({volume} contacts, {side} bound {fmt(bound)} at {s.confidence:g})"
        return Signal(
            detector=self.name,
            channel=channel,
            active=active,
            score=value,
            threshold=threshold,
            labels=(("queue", queue),) if queue else (),
            summary=summary,
        )
