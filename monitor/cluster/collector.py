"""Cluster exposition: the ``support_*`` families of the channels this replica owns.

Only partitions that caught up are read, and of each only the channels its engine applied events
of (``owned_channels``): a replica never exports a channel's zeros or NaNs for a channel another
replica owns, so ``sum by (channel)`` across replicas is exact. Same families, names, labels and
types as the single-engine ``EngineCollector``; every family is exposed even when empty.
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from support_monitor.alerts.runtime import HELP as ALERT_HELP
from support_monitor.monitor import catalogue
from support_monitor.monitor.cluster.node import ClusterNode
from support_monitor.monitor.config_channel import ChannelSettings
from support_monitor.monitor.engine.histogram import Histogram
from support_monitor.monitor.engine.readout import queue_series, voice_series, window_series
from support_monitor.monitor.engine.rows import Series
from support_monitor.monitor.engine.workforce_readout import WORKFORCE_HELP, workforce_series
from support_monitor.monitor.exporter import (
    HELP,
    HIST_ATTRS,
    LIVE_HISTOGRAMS,
    channel_settings_families,
    group,
    histogram_family,
    possible,
    series_family,
    wait_summary_family,
)

log = structlog.get_logger("support_monitor.cluster")

_HISTOGRAMS = tuple(
    (name, attr, text)
    for (name, text), attr in zip(
        catalogue.help_texts("histograms").items(), HIST_ATTRS, strict=True
    )
)
_WAIT = "support_wait_quantile_seconds"


class ClusterCollector(Collector):
    def __init__(self, node: ClusterNode) -> None:
        self._node = node
        self._conflicts: set[str] = set()

    def collect(self) -> Iterator[Metric]:  # noqa: C901, PLR0912 - one pass, read top down
        rows: list[Series] = []
        extra: list[Series] = []
        hists: dict[str, list[tuple[list[str], Histogram]]] = {n: [] for n, _, _ in _HISTOGRAMS}
        helps: dict[str, str] = dict(ALERT_HELP)
        owner: dict[str, str] = {}
        settings: dict[str, ChannelSettings] = {}
        partitions = catalogue.gauge("support_monitor_cluster_partition_ready")
        for part in list(self._node.parts.values()):
            if not part.owned:
                continue
            partitions.add_metric([part.tp.topic, str(part.tp.partition)], float(part.ready))
            if not part.ready:
                continue
            engine = part.engine
            mine = set()
            for name in sorted(part.channels()):
                if name in owner:
                    if name not in self._conflicts:
                        self._conflicts.add(name)
                        log.warning(
                            "channel_in_two_partitions",
                            channel=name,
                            partitions=[owner[name], part.key],
                            hint="producers must key events by channel",
                        )
                    continue
                owner[name] = part.key
                mine.add(name)
                channel = engine.channels[name]
                live = channel.settings.answer_seconds is not None
                for q in channel.queues.values():
                    rows.extend(queue_series(channel, q, engine.now))
                    for metric, attr, _ in _HISTOGRAMS:
                        if live or metric not in LIVE_HISTOGRAMS:
                            hists[metric].append(([name, q.name], getattr(q, attr)))
                rows.extend(window_series(channel))
                rows.extend(voice_series(channel))
                extra.extend(workforce_series(engine, channel))
                settings[name] = channel.settings
            helps.update(part.alerting.help)
            helps.update(WORKFORCE_HELP)
            extra.extend(r for r in part.alerting.series() if r.label("channel") in mine)
        grouped = group(row for row in rows if possible(row, settings))
        quantiles = grouped.pop(_WAIT, [])
        for name, text in HELP.items():
            if name != _WAIT:
                yield series_family(name, text, grouped.get(name, []))
        yield wait_summary_family(quantiles)
        for metric, _, text in _HISTOGRAMS:
            yield histogram_family(metric, text, ["channel", "queue"], hists[metric])
        yield from channel_settings_families(settings)  # of the channels this replica owns
        grouped_extra = group(extra)
        for name in {**dict.fromkeys(helps), **dict.fromkeys(grouped_extra)}:
            yield series_family(name, helps.get(name, name), grouped_extra.get(name, []))
        yield partitions
        snapshots = catalogue.gauge("support_monitor_cluster_snapshots")
        for reason, count in sorted(self._node.snapshots.items()):
            snapshots.add_metric([reason], count)
        yield snapshots
        yield catalogue.gauge(
            "support_monitor_cluster_config_mismatch", float(len(self._node.withheld()))
        )
