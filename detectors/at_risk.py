"""Tickets at risk: open tickets inside the warning lead time of a deadline, per ticket channel.

Help desks usually report a breach after the fact; this detector fires while the tickets can
still be saved. It reads the ``support_tickets_at_risk`` gauge (summed over queues) per SLA and is
active when at least ``min_count`` tickets are at risk. score = count, threshold = min_count.
The counts are summed straight from the channel's queues (``at_risk``: first response, next reply,
resolution, the values of the gauge's rows) for each clock the channel has.

A ticket is at risk only inside the lead window, so when first responses stop altogether the
count cannot rise before the lead window of the first unanswered ticket starts (54 minutes
after the stop with a 1 h target). The first-response signal is therefore also active while a
drought CUSUM is: the Poisson CUSUM of ``complaint_cusum.py`` on the channel's first responses
(the count of ``support_first_response_seconds``), tuned for a drop to ``drought_ratio`` of the
usual hour-of-week rate, against its own hourly baseline (learned from the responses, erring
``DROUGHT_MARGIN`` standard errors low, never raised to a floor). It is judged only while at
least ``min_count`` open tickets wait for their first response (a pause in new tickets after
all were answered is no drought) and at least ``min_count`` tickets were created in the
longest window: a replay's quiet gap drains that window, so the drought can change the signal
only within the window's span after the last event (``detectors/quiet.py``). While it is
active its signal's score is the count of tickets waiting for a first response (against the
same ``min_count``), else the at-risk count.

A ticket leaves the at-risk count when it breaches, so an active first-response signal stays
active while the tickets at risk and the open tickets past their first-response deadline
without one are ``min_count`` or more together (score = that sum): a pile of unanswered tickets
passing their deadline is no recovery. Those overdue tickets never start the signal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from support_monitor.detectors.complaint_cusum import RateCusum, hour_of_week
from support_monitor.detectors.config import LONGEST, SLAS, TicketsAtRiskSettings
from support_monitor.detectors.readings import (
    Groups,
    GroupsUpdate,
    Readings,
    WorstExport,
    window_index,
)
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.durations import format_duration
from support_monitor.monitor.engine.state import ChannelRuntime

SLA_NAMES = {sla: sla.replace("_", " ") for sla in SLAS}

DROUGHT_MARGIN = -1.0
"""The drought CUSUM's usual rate errs low by one standard error of its estimate: a rate
learned high makes every quiet minute count as a drought (the mirror of the arrival CUSUM's
+1 in ``backlog.py``)."""

DROUGHT_RELEARN_HOURS = 2
"""After this many hours in a row flagged, the level has shifted (the complaint CUSUM's rule)."""


class TicketsAtRiskDetector(WorstExport):
    """One signal per (ticket channel, sla) the channel has, labelled ``sla``."""

    name = "tickets_at_risk"
    upward = True

    def __init__(
        self,
        settings: TicketsAtRiskSettings,
        channels: list[str],
        channel_settings: Mapping[str, ChannelSettings],
        windows: Sequence[str],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self._slas: dict[str, list[tuple[str, int]]] = {}
        """Per channel: (sla, index in ``QueueState.at_risk``) of the clocks it has."""
        for name in channels:
            ch = channel_settings[name]
            # the clocks the channel's `support_tickets_at_risk` rows have (a priority's own
            # targets included)
            self._slas[name] = [(sla, i) for i, sla in enumerate(SLAS) if ch.has_clock(i)]
        self._window_i = window_index(windows, LONGEST)
        self._window = list(windows)[self._window_i]
        self._drought = (
            {ch: self._new_drought() for ch in channels if (SLAS[0], 0) in self._slas[ch]}
            if settings.drought_threshold > 0
            else {}
        )
        self._last_response: dict[str, tuple[int, float]] = {}
        """Per drought channel: (first responses so far, when that count was first seen)."""
        self._keys: list[tuple[object, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]
        self._active: dict[str, bool] = {}
        """Per channel: whether its first-response signal was active at the last judgement."""

    def _new_drought(self) -> RateCusum:
        threshold = self.settings.drought_threshold
        return RateCusum(
            self.settings.drought_ratio,
            threshold,
            0.0,
            relearn_hours=DROUGHT_RELEARN_HOURS,
            release=threshold / 2,
            min_rate_per_hour=0.0,
            margin=DROUGHT_MARGIN,
        )

    def export_state(self) -> dict[str, object]:
        """Each channel's drought CUSUM (statistic, counts, hourly baseline) and its last
        first response."""
        return {
            "drought": {ch: c.dump() for ch, c in self._drought.items()},
            "last_response": {ch: list(v) for ch, v in self._last_response.items()},
            "active": sorted(ch for ch, on in self._active.items() if on),
        }

    def restore_state(self, data: dict[str, Any]) -> None:
        drought = {ch: self._new_drought() for ch in self._drought}
        for ch, stored in data.get("drought", {}).items():
            if ch in drought:
                drought[ch].load(stored)
        self._drought = drought
        self._last_response = {
            ch: (int(count), float(at))
            for ch, (count, at) in data.get("last_response", {}).items()
            if ch in drought
        }
        known = set(self.channels)
        self._active = {str(ch): True for ch in data.get("active", []) if ch in known}
        self._keys = [None] * len(self.channels)  # judge every channel again

    def evaluate(self, readings: Readings) -> Groups:
        """A channel is judged again only when its at-risk counts or its drought verdict
        changed."""
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        for i, channel in enumerate(self.channels):
            slas = self._slas[channel]
            ch = channels[channel]
            counts = dict.fromkeys((sla for sla, _ in slas), 0.0)
            for q in ch.queues.values():
                at_risk = q.at_risk
                for sla, index in slas:
                    counts[sla] += at_risk[index]
            dry, waiting = self._drought_step(channel, readings)
            overdue = 0
            if self._active.get(channel) and SLAS[0] in counts:
                overdue = _overdue(ch)
            key = (*counts.values(), dry, overdue)
            if key == self._keys[i]:
                continue
            self._keys[i] = key
            out[i] = self._judge(channel, counts, dry, waiting, overdue)
        self._groups = out.result()
        return self._groups

    def _drought_step(self, channel: str, readings: Readings) -> tuple[str, int]:
        """Advance the channel's drought CUSUM with its cumulative first responses. While it is
        active, at least ``min_count`` tickets were created in the longest window and at least
        ``min_count`` open tickets wait for their first response: what to say about it and how
        many wait (else ``("", 0)``)."""
        cusum = self._drought.get(channel)
        if cusum is None:
            return "", 0
        ch = readings.channels[channel]
        now = readings.now
        responses = 0
        for q in ch.queues.values():
            responses += q.fr_hist.count
        last = self._last_response.get(channel)
        if last is None or last[0] != responses:
            last = self._last_response[channel] = (responses, now)
        if not cusum.step(now, float(responses), hour_of_week):
            return "", 0
        min_count = self.settings.min_count
        if ch.windows.totals[self._window_i].created < min_count:
            return "", 0
        waiting = _awaiting(ch)
        if waiting < min_count:
            return "", 0
        usual = cusum.per_hour(hour_of_week(now))
        return (
            f"{channel}: first responses have nearly stopped, none for "
            f"{format_duration(now - last[1])} where about {usual:.0f} an hour are usual; "
            f"{waiting} tickets wait for one"
        ), waiting

    def _judge(
        self, channel: str, counts: dict[str, float], dry: str, waiting: int, overdue: int
    ) -> list[Signal]:
        """``dry``: the drought's summary (its signal's score is then ``waiting``, the tickets
        without a first response, judged against the same ``min_count``). ``overdue``: the
        tickets past their first-response deadline without one, counted only while the
        first-response signal is active: it stays active while those and the ones at risk
        are ``min_count`` or more (a backlog that breached is no recovery)."""
        out = []
        min_count = self.settings.min_count
        for sla, count in counts.items():
            active = count >= min_count
            score = count
            their = "its" if count == 1 else "their"
            summary = f"{channel}: {_tickets(count)} close to {their} {SLA_NAMES[sla]} deadline"
            if sla == SLAS[0] and not active and overdue and count + overdue >= min_count:
                active, score = True, count + overdue
                their = "its" if overdue == 1 else "their"
                summary = (
                    f"{channel}: {_tickets(overdue)} past {their} first response deadline "
                    f"without one, {count:.0f} close to it"
                )
            if dry and sla == SLAS[0]:
                active, score = True, float(waiting)
                summary = f"{dry}, {count:.0f} close to its deadline"
            if sla == SLAS[0]:
                self._active[channel] = active
            out.append(
                Signal(
                    detector=self.name,
                    channel=channel,
                    active=active,
                    score=score,
                    threshold=float(min_count),
                    labels=(("sla", sla),),
                    summary=summary,
                )
            )
        return out


def _tickets(count: float) -> str:
    return "1 ticket" if count == 1 else f"{count:.0f} tickets"


def _awaiting(ch: ChannelRuntime) -> int:
    """Open tickets of the channel without a first response (the engine's running count)."""
    count = 0
    for q in ch.queues.values():
        count += q.awaiting_first_response
    return count


def _overdue(ch: ChannelRuntime) -> int:
    """Open tickets of the channel past their first-response deadline without a first response
    (their clock breached and still running or paused; the engine's running count)."""
    count = 0
    for q in ch.queues.values():
        count += q.overdue_first_response
    return count
