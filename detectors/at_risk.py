"""Tickets at risk: open tickets inside the warning lead time of a deadline, per ticket channel.

Help desks usually report a breach after the fact; this detector fires while the tickets can
still be saved. It reads the ``support_tickets_at_risk`` gauge (summed over queues) per SLA and is
active when at least ``min_count`` tickets are at risk. score = count, threshold = min_count.
The counts are summed straight from the channel's queues (``at_risk_fr``, ``at_risk_res``, the
values of the gauge's rows, in the same order).

A ticket is at risk only inside the lead window, so when first responses stop altogether the
count cannot rise before the lead window of the first unanswered ticket starts (54 minutes
after the stop with a 1 h target). The first-response signal is therefore also active while a
drought CUSUM is: the Poisson CUSUM of ``complaint_cusum.py`` on the channel's first responses
(the count of ``support_first_response_seconds``), tuned for a drop to ``drought_ratio`` of the
usual hour-of-week rate, against its own hourly baseline (learned from the responses, erring
``DROUGHT_MARGIN`` standard errors low). Its score stays the at-risk count.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from support_monitor.detectors.complaint_cusum import RateCusum
from support_monitor.detectors.config import TicketsAtRiskSettings
from support_monitor.detectors.readings import Groups, GroupsUpdate, Readings, WorstExport
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.config_channel import ChannelSettings

DROUGHT_MARGIN = -1.0
"""The drought CUSUM's usual rate errs low by one standard error of its estimate: a rate
learned high makes every quiet minute count as a drought (the mirror of the arrival CUSUM's
+1 in ``backlog.py``)."""

DROUGHT_RELEARN_HOURS = 2
"""After this many hours in a row flagged, the level has shifted (the complaint CUSUM's rule)."""


def _slot(t: float) -> int:
    """Hour of the week in UTC (0 = Monday 00:00-01:00); 1970-01-01 was a Thursday."""
    return (math.floor(t / 3600.0) + 72) % 168


class TicketsAtRiskDetector(WorstExport):
    """One signal per (ticket channel, sla) the channel has, labelled ``sla``."""

    name = "tickets_at_risk"
    upward = True

    def __init__(
        self,
        settings: TicketsAtRiskSettings,
        channels: list[str],
        channel_settings: Mapping[str, ChannelSettings],
    ) -> None:
        self.settings = settings
        self.channels = channels
        self._slas: dict[str, list[str]] = {}
        for name in channels:
            ch = channel_settings[name]
            self._slas[name] = [
                sla
                for sla, target in (
                    ("first_response", ch.first_response_seconds),
                    ("resolution", ch.resolution_seconds),
                )
                if target is not None
            ]
        self._drought = {
            ch: self._new_drought() for ch in channels if "first_response" in self._slas[ch]
        }
        self._keys: list[tuple[float, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]

    def _new_drought(self) -> RateCusum:
        s = self.settings
        threshold = s.drought_threshold
        return RateCusum(
            s.drought_ratio,
            threshold,
            0.0,
            relearn_hours=DROUGHT_RELEARN_HOURS,
            release=threshold / 2,
            margin=DROUGHT_MARGIN,
        )

    def export_state(self) -> dict[str, object]:
        """Each channel's drought CUSUM (statistic, counts, hourly baseline)."""
        return {"drought": {ch: c.dump() for ch, c in self._drought.items()}}

    def restore_state(self, data: dict[str, Any]) -> None:
        drought = {ch: self._new_drought() for ch in self._drought}
        for ch, stored in data.get("drought", {}).items():
            if ch in drought:
                drought[ch].load(stored)
        self._drought = drought
        self._keys = [None] * len(self.channels)

    def evaluate(self, readings: Readings) -> Groups:
        """A channel is judged again only when its at-risk counts or its drought verdict
        changed."""
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        for i, channel in enumerate(self.channels):
            counts = dict.fromkeys(self._slas[channel], 0.0)
            responses = 0
            for q in channels[channel].queues.values():
                if "first_response" in counts:
                    counts["first_response"] += q.at_risk_fr
                    responses += q.fr_hist.count
                if "resolution" in counts:
                    counts["resolution"] += q.at_risk_res
            drought = self._drought_step(channel, readings.now, responses)
            key = (*counts.values(), drought)
            if key == self._keys[i]:
                continue
            self._keys[i] = key
            out[i] = self._judge(channel, counts, drought)
        self._groups = out.result()
        return self._groups

    def _drought_step(self, channel: str, now: float, responses: int) -> bool:
        """Advance the channel's drought CUSUM with its cumulative first responses."""
        cusum = self._drought.get(channel)
        if cusum is None or self.settings.drought_threshold <= 0:
            return False
        return cusum.step(now, float(responses), _slot)

    def _judge(self, channel: str, counts: dict[str, float], drought: bool) -> list[Signal]:
        out = []
        min_count = self.settings.min_count
        for sla, count in counts.items():
            dry = drought and sla == "first_response"
            summary = (
                f"{channel}: {count:.0f} open tickets close to their {sla} deadline"
                f" (alerts at {min_count})"
            )
            if dry:
                summary += (
                    f"; first responses below {self.settings.drought_ratio:g}x the usual rate"
                    " for this hour"
                )
            out.append(
                Signal(
                    detector=self.name,
                    channel=channel,
                    active=count >= min_count or dry,
                    score=count,
                    threshold=float(min_count),
                    labels=(("sla", sla),),
                    summary=summary,
                )
            )
        return out
