"""Tickets at risk: open tickets inside the warning lead time of a deadline, per ticket channel.

Help desks usually report a breach after the fact; this detector fires while the tickets can
still be saved. It reads the ``support_tickets_at_risk`` gauge (summed over queues) per SLA and is
active when at least ``min_count`` tickets are at risk. score = count, threshold = min_count.
The counts are summed straight from the channel's queues (``at_risk``: first response, next reply,
resolution, the values of the gauge's rows) for each clock the channel has.
"""

from __future__ import annotations

from collections.abc import Mapping

from support_monitor.detectors.config import TicketsAtRiskSettings
from support_monitor.detectors.readings import Groups, GroupsUpdate, Readings, WorstExport
from support_monitor.detectors.signal import Signal
from support_monitor.monitor.config_channel import ChannelSettings

SLAS = ("first_response", "next_reply", "resolution")
"""The ticket clocks, in the order of ``QueueState.at_risk``."""


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
        self._slas: dict[str, list[tuple[str, int]]] = {}
        """Per channel: (sla, index in ``QueueState.at_risk``) of the clocks it has."""
        for name in channels:
            ch = channel_settings[name]
            # the clocks the channel's `support_tickets_at_risk` rows have (a priority's own
            # targets included)
            self._slas[name] = [(sla, i) for i, sla in enumerate(SLAS) if ch.has_clock(i)]
        self._keys: list[tuple[float, ...] | None] = [None] * len(channels)
        self._groups: Groups = [[] for _ in channels]

    def evaluate(self, readings: Readings) -> Groups:
        """A channel is judged again only when its at-risk counts changed."""
        out = GroupsUpdate(self._groups)
        channels = readings.channels
        for i, channel in enumerate(self.channels):
            slas = self._slas[channel]
            counts = dict.fromkeys((sla for sla, _ in slas), 0.0)
            for q in channels[channel].queues.values():
                at_risk = q.at_risk
                for sla, index in slas:
                    counts[sla] += at_risk[index]
            key = tuple(counts.values())
            if key == self._keys[i]:
                continue
            self._keys[i] = key
            out[i] = self._judge(channel, counts)
        self._groups = out.result()
        return self._groups

    def _judge(self, channel: str, counts: dict[str, float]) -> list[Signal]:
        out = []
        min_count = self.settings.min_count
        for sla, count in counts.items():
            active = count >= min_count
            out.append(
                Signal(
                    detector=self.name,
                    channel=channel,
                    active=active,
                    score=count,
                    threshold=float(min_count),
                    labels=(("sla", sla),),
                    summary=(
                        f"{channel}: {count:.0f} open tickets close to their {sla} deadline"
                        f" (alerts at {min_count})"
                    ),
                )
            )
        return out
