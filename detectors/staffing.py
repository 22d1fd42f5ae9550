"""Staffing detectors: understaffing and estimated wait above T, from Erlang C.

Both judge each live channel (``answer_seconds``) that has seen an agent (the channels whose
workforce rows exist), as one pool: every agent of the channel serves every queue of it.

Inputs, per channel at each tick (``docs/detectors.md`` "Understaffing"):

- arrival rate λ: the lowest of ``queued / window seconds`` over ``rate_windows`` (default:
  the shortest window for understaffing; the shortest and the longest for the wait);
- mean handle time AHT: (talk + after-call-work time) / ended contacts over ``handle_window``
  (default the longest window); NaN while none ended there;
- agents N: the channel's agents ``available``, ``busy`` or in ``after_call_work`` now (an
  agent in after-call work is serving a contact: its time is part of AHT);
- T and the level: the channel's ``answer_seconds`` and ``service_level_target`` (0.8 unset).

``monitor.engine.erlang.staffing(λ, AHT, N, T, level, concurrency=c)`` gives the agents
required and the estimated wait, c being the channel's ``agent_concurrency`` (contacts one agent
works at once; 1 unset). Both detectors are silent (inactive, "not judged") while fewer than
``min_arrivals`` contacts were queued in the channel's longest window.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from support_monitor.detectors.config import (
    LONGEST,
    EstimatedWaitSettings,
    UnderstaffingSettings,
    resolve_window,
)
from support_monitor.detectors.readings import Groups, GroupsUpdate, Readings, WorstExport, fmt
from support_monitor.detectors.signal import Signal
from support_monitor.detectors.sustain import Sustain
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.erlang import Staffing, staffing
from support_monitor.monitor.engine.windows import SlidingWindows

DEFAULT_LEVEL = 0.8
"""The service-level target of a live channel without ``service_level_target``."""


class Inputs:
    """The Erlang C inputs of one channel at one tick, and what they give. ``handle`` is the
    mean handle time of a contact; ``concurrency`` the contacts one agent works at once (Erlang
    C then takes ``handle / concurrency``)."""

    __slots__ = ("agents", "arrivals", "concurrency", "handle", "rate", "result")

    def __init__(self, rate: float, handle: float, agents: int, arrivals: int) -> None:
        self.rate = rate
        self.handle = handle
        self.agents = agents
        self.arrivals = arrivals
        self.concurrency = 1
        self.result: Staffing | None = None

    def describe(self) -> str:
        """``arrivals 2.1/min, handle time 4m10s`` (``, 2 at once per agent`` with
        concurrency)."""
        handle = "unknown" if math.isnan(self.handle) else format_seconds(round(self.handle))
        text = f"arrivals {self.rate * 60:.1f}/min, handle time {handle}"
        if self.concurrency > 1:
            text += f", {self.concurrency} at once per agent"
        return text


def format_seconds(seconds: int) -> str:
    """Whole seconds as ``4m10s``, ``45s`` or ``1h05m``."""
    minutes, secs = divmod(max(0, seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


class _StaffingDetector(WorstExport):
    """What both detectors share: the scope, the inputs, the hysteresis flags and the
    persistence of each channel's condition (``Sustain``: the signal is active once the
    condition held for ``sustain``, until it held less than a quarter of ``release``)."""

    name: str
    upward: bool
    needs_wait = True
    """Whether ``judge`` reads the expected wait (Erlang C's costliest part)."""
    needs_required = True
    """Whether ``judge`` reads the agents required (a search over agent counts)."""

    def __init__(
        self,
        settings: UnderstaffingSettings | EstimatedWaitSettings,
        channels: list[str],
        channel_settings: Mapping[str, ChannelSettings],
        windows: Sequence[str],
    ) -> None:
        self.settings = settings
        self.channels = channels
        names = list(windows)
        self._rate_i = sorted(
            {names.index(resolve_window(w, names)) for w in settings.rate_windows}
        )
        self._handle_i = names.index(resolve_window(settings.handle_window, names))
        self._longest_i = names.index(resolve_window(LONGEST, names))
        self._answer: dict[str, float] = {}
        self._level: dict[str, float] = {}
        self._concurrency: dict[str, int] = {}
        for name in channels:
            ch = channel_settings[name]
            assert ch.answer_seconds is not None
            self._answer[name] = ch.answer_seconds
            self._concurrency[name] = ch.concurrency
            target = ch.service_level_target
            self._level[name] = DEFAULT_LEVEL if target is None else target
        self._active: dict[str, bool] = dict.fromkeys(channels, False)
        """The hysteresis flags: whether each channel's condition held at the last tick."""
        self._sustain = {ch: self._new_sustain() for ch in channels}
        self._keys: list[tuple[float, ...] | None] = [None] * len(channels)
        """Per channel: the :meth:`key` of its last judgement (``()``: no agent seen)."""
        self._got: list[Inputs | None] = [None] * len(channels)
        """Per channel: the inputs of its last judgement (``None``: no agent seen)."""
        self._shown: list[tuple[bool, float] | None] = [None] * len(channels)
        """Per channel: (active, since) of its last signal."""
        self._groups: Groups = [[] for _ in channels]

    def _new_sustain(self) -> Sustain:
        return Sustain(self.settings.sustain, self.settings.release)

    def export_state(self) -> dict[str, object]:
        """The hysteresis flags (which channels' conditions held at the last tick) and each
        channel's persistence."""
        return {
            "active": [ch for ch, on in self._active.items() if on],
            "sustain": {ch: p.dump() for ch, p in self._sustain.items()},
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        active = {str(ch) for ch in data["active"]}
        self._active = {ch: ch in active for ch in self.channels}
        sustain = {ch: self._new_sustain() for ch in self.channels}
        for ch, stored in data.get("sustain", {}).items():
            if ch in sustain:
                sustain[ch].load(stored)
        self._sustain = sustain
        self._keys = [None] * len(self.channels)  # judge every channel again
        self._got = [None] * len(self.channels)
        self._shown = [None] * len(self.channels)

    def key(self, windows: SlidingWindows, agents: int) -> tuple[int, int, int, int, float]:
        """What the channel's Erlang C inputs are computed from: agents, contacts ended and
        their handle plus after-call-work ms in ``handle_window``, contacts queued in the
        longest window, and the arrival rate. Equal keys give equal inputs."""
        totals, spans = windows.totals, windows.spans
        agg = totals[self._handle_i]
        return (
            agents,
            agg.handled,
            agg.handle_ms + agg.agent_acw_ms,
            totals[self._longest_i].queued,
            min([totals[i].queued / spans[i] for i in self._rate_i]),
        )

    @staticmethod
    def inputs(key: tuple[int, int, int, int, float]) -> Inputs:
        """The Erlang C inputs of a :meth:`key`."""
        agents, handled, handle_ms, arrivals, rate = key
        handle = handle_ms / handled / 1000 if handled else math.nan
        return Inputs(rate, handle, agents, arrivals)

    def evaluate(self, readings: Readings) -> Groups:
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        workforce = readings.engine.workforce
        now = readings.now
        for i, channel in enumerate(self.channels):
            # Judged again only when what its inputs are made of changed; the persistence
            # steps at every tick.
            agents = workforce.working(channel)
            windows = channels[channel].windows
            key = () if agents is None else self.key(windows, agents)
            changed = key != self._keys[i]
            if changed:
                self._keys[i] = key
                got = None
                if key:
                    got = self.inputs(key)
                    got.concurrency = self._concurrency[channel]
                    got.result = staffing(
                        got.rate,
                        got.handle,
                        got.agents,
                        self._answer[channel],
                        self._level[channel],
                        with_wait=self.needs_wait,
                        with_required=self.needs_required,
                        concurrency=got.concurrency,
                    )
                self._got[i] = got
                self._active[channel] = got is not None and self.condition(channel, got)
            sustain = self._sustain[channel]
            shown = (sustain.step(now, self._active[channel]), sustain.since)
            if not changed and shown == self._shown[i]:
                continue
            self._shown[i] = shown
            got = self._got[i]
            out[i] = [] if got is None else [self.judge(channel, got, sustain)]
        self._groups = out.result()
        return self._groups

    def guard(self, got: Inputs) -> str:
        """Why the channel is not judged now ("" when it is)."""
        s = self.settings
        if got.arrivals < s.min_arrivals:
            return (
                f"only {got.arrivals} contacts queued in the window (min_arrivals {s.min_arrivals})"
            )
        if math.isnan(got.handle):
            return "no contact ended in the handle-time window yet"
        return ""

    def condition(self, channel: str, got: Inputs) -> bool:
        """Whether the condition holds now (its hysteresis included: ``_active``)."""
        raise NotImplementedError

    def judge(self, channel: str, got: Inputs, sustain: Sustain) -> Signal:
        raise NotImplementedError


class UnderstaffingDetector(_StaffingDetector):
    """Active when agents N < ``ratio`` x required and N <= required - ``min_shortfall``;
    once active, until N >= ``recover_ratio`` x required or N >= required.

    score = N (agents on the channel), expected = agents required, threshold = ``ratio`` x
    required (the level below which the signal turns active)."""

    name = "understaffing"
    upward = False
    needs_wait = False
    settings: UnderstaffingSettings

    def condition(self, channel: str, got: Inputs) -> bool:
        s = self.settings
        assert got.result is not None
        required = got.result.required
        agents = got.agents
        if self.guard(got) or math.isnan(required):
            return False
        start = agents < s.ratio * required and required - agents >= s.min_shortfall
        hold = self._active[channel] and agents < s.recover_ratio * required and agents < required
        return start or hold

    def judge(self, channel: str, got: Inputs, sustain: Sustain) -> Signal:
        s = self.settings
        assert got.result is not None
        required = got.result.required
        agents = got.agents
        guard = self.guard(got)
        level = self._level[channel]
        answer = self._answer[channel]
        if guard:
            summary = f"{channel} staffing not judged: {guard}"
        elif math.isnan(required):
            summary = f"{channel} staffing not judged: the agents required are unknown"
        else:
            summary = (
                f"{channel} needs {required:.0f} agents, {agents} on the queue "
                f"({got.describe()}; {level:.0%} within {answer:g} s)"
            )
        return Signal(
            detector=self.name,
            channel=channel,
            active=sustain.active,
            score=float(agents),
            threshold=s.ratio * required,
            expected=required,
            summary=summary,
            since=sustain.since,
        )


class EstimatedWaitDetector(_StaffingDetector):
    """Active when the estimated wait W > ``multiple`` x T (+Inf included); once active, until
    W <= the recover multiple x T.

    score = W (seconds, +Inf when overloaded), threshold = ``multiple`` x T, expected = T."""

    name = "estimated_wait"
    upward = True
    needs_required = False
    settings: EstimatedWaitSettings

    def condition(self, channel: str, got: Inputs) -> bool:
        s = self.settings
        assert got.result is not None
        wait = got.result.wait_seconds
        answer = self._answer[channel]
        if self.guard(got) or math.isnan(wait):
            return False
        was = self._active[channel]
        return wait > s.multiple * answer or (was and wait > s.effective_recover * answer)

    def judge(self, channel: str, got: Inputs, sustain: Sustain) -> Signal:
        s = self.settings
        assert got.result is not None
        wait = got.result.wait_seconds
        answer = self._answer[channel]
        limit = s.multiple * answer
        guard = self.guard(got)
        if guard:
            summary = f"{channel} estimated wait not judged: {guard}"
        else:
            if math.isinf(wait):
                said = "unbounded (more load than agents)"
            elif math.isnan(wait):
                said = "unknown"
            else:
                said = f"{fmt(wait)} s"
            summary = (
                f"{channel} estimated wait {said} vs T = {answer:g} s "
                f"(warns above {limit:g} s; {got.result.traffic:.1f} Erlangs on {got.agents} "
                f"agents; {got.describe()})"
            )
        return Signal(
            detector=self.name,
            channel=channel,
            active=sustain.active,
            score=wait,
            threshold=limit,
            expected=answer,
            summary=summary,
            since=sustain.since,
        )
