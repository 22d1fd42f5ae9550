"""Daemon health: is support-monitor itself keeping up (sources, events, lag, notifications)?"""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.dashboards import common
from support_monitor.dashboards.common import GREEN, ORANGE, RED, PanelIds, query, thresholds

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import dashboard as dashboard_builders
    from grafana_foundation_sdk.builders import stat, timeseries

UID = "support-daemon"
TITLE = "Support monitor daemon"
RATE = "[$__rate_interval]"
QUANTILES = (0.5, 0.9, 0.99)
TILE_WIDTH = 4
TILE_HEIGHT = 5
UP_MAPPING = {"0": ("down", RED), "1": ("up", GREEN)}


def build() -> dashboard_builders.Dashboard:
    ids = PanelIds()
    board = (
        common.dashboard(
            UID,
            TITLE,
            "The daemon itself: sources, event throughput and lag, rejects, notifications, "
            "event-loop lag, Kafka consumer lag and build.",
        )
        .refresh("30s")
        .time("now-3h", "now")
        .annotation(
            common.alert_annotation(
                "Health alerts firing",
                'ALERTS{alertstate="firing",alertname=~"SupportMonitor.*"}',
            )
        )
        .with_row(common.row(ids(), "Now"))
    )
    for tile in _tiles(ids):
        board = board.with_panel(tile)
    board = board.with_row(common.row(ids(), "Events")).with_panel(
        common.timeseries_panel(
            ids(),
            "Events applied per second by source and type",
            [
                query(
                    f"sum by (source, type) (rate(support_monitor_events_total{RATE}))",
                    "{{source}} {{type}}",
                )
            ],
            unit="ops",
            stacked=True,
            width=8,
        )
    )
    board = board.with_panel(
        common.timeseries_panel(
            ids(),
            "Events rejected per second by reason",
            [
                query(
                    f"sum by (source, reason) (rate(support_monitor_events_rejected_total{RATE}))",
                    "{{source}} {{reason}}",
                ),
                query(
                    f"sum by (source) (rate(support_monitor_events_duplicate_total{RATE}))",
                    "{{source}} duplicate (applied once)",
                    "B",
                ),
            ],
            unit="ops",
            stacked=True,
            width=8,
            description=(
                "Events not applied, by reason (invalid JSON or fields, unknown channel or "
                "item, time out of range, ...), and redelivered duplicates, which are not "
                "rejects: their first copy was applied."
            ),
        )
    )
    board = board.with_panel(
        common.timeseries_panel(
            ids(),
            "Event lag quantiles",
            [
                query(
                    f"histogram_quantile({q}, sum by (le) "
                    f"(rate(support_monitor_event_lag_seconds_bucket{RATE})))",
                    f"p{round(q * 100)}",
                    common.ref_id(index),
                )
                for index, q in enumerate(QUANTILES)
            ],
            unit="s",
            width=8,
            description="Processing time minus event time.",
        )
    )
    board = board.with_row(common.row(ids(), "Outputs and runtime"))
    for panel in _runtime_panels(ids):
        board = board.with_panel(panel)
    return board.with_panel(
        common.state_timeline_panel(
            ids(),
            "Sources up",
            [query("max by (source) (support_monitor_source_up)", "{{source}}")],
            mappings=[common.value_texts(UP_MAPPING)],
            steps=thresholds(RED, (1, GREEN)),
            width=12,
            height=8,
        )
    ).with_panel(
        common.table_panel(
            ids(),
            "Build",
            [query("support_monitor_build_info", "", instant=True, table=True)],
            width=12,
            height=8,
            hide=("Time", "__name__", "Value"),
            description="support_monitor_build_info: the version labels of each running daemon.",
        )
    )


def _tiles(ids: PanelIds) -> list[stat.Panel]:
    return [
        common.stat_panel(
            ids(),
            "Sources",
            [query("max by (source) (support_monitor_source_up)", "{{source}}", instant=True)],
            unit="short",
            steps=thresholds(RED, (1, GREEN)),
            mappings=[common.value_texts(UP_MAPPING)],
            no_value="no data",
            width=TILE_WIDTH,
            height=TILE_HEIGHT,
        ),
        common.stat_panel(
            ids(),
            "Events / s",
            [
                query(
                    f"sum(rate(support_monitor_events_total{RATE})) or on() vector(0)",
                    "events/s",
                    instant=True,
                )
            ],
            unit="ops",
            decimals=1,
            steps=thresholds(GREEN),
            width=TILE_WIDTH,
            height=TILE_HEIGHT,
        ),
        common.stat_panel(
            ids(),
            "Rejected / s",
            [
                query(
                    f"sum(rate(support_monitor_events_rejected_total{RATE})) or on() vector(0)",
                    "rejected/s",
                    instant=True,
                )
            ],
            unit="ops",
            decimals=2,
            steps=thresholds(GREEN, (0.01, ORANGE), (1, RED)),
            width=TILE_WIDTH,
            height=TILE_HEIGHT,
        ),
        common.stat_panel(
            ids(),
            "Event lag p99",
            [
                query(
                    "histogram_quantile(0.99, sum by (le) "
                    f"(rate(support_monitor_event_lag_seconds_bucket{RATE})))",
                    "p99",
                    instant=True,
                )
            ],
            unit="s",
            decimals=2,
            steps=thresholds(GREEN, (1, ORANGE), (10, RED)),
            no_value="no events",
            width=TILE_WIDTH,
            height=TILE_HEIGHT,
        ),
        common.stat_panel(
            ids(),
            "Loop lag",
            [query("max(support_monitor_loop_lag_seconds)", "loop lag", instant=True)],
            unit="s",
            decimals=3,
            steps=thresholds(GREEN, (0.1, ORANGE), (1, RED)),
            no_value="no data",
            width=TILE_WIDTH,
            height=TILE_HEIGHT,
        ),
        common.stat_panel(
            ids(),
            "Kafka lag (max partition)",
            [
                query(
                    "max(support_monitor_kafka_partition_lag) or on() vector(0)",
                    "lag",
                    instant=True,
                )
            ],
            unit="short",
            steps=thresholds(GREEN, (1000, ORANGE), (10000, RED)),
            width=TILE_WIDTH,
            height=TILE_HEIGHT,
        ),
    ]


def _runtime_panels(ids: PanelIds) -> list[timeseries.Panel]:
    return [
        common.timeseries_panel(
            ids(),
            "Notifications per minute by notifier and result",
            [
                query(
                    "60 * sum by (notifier, result) "
                    f"(rate(support_monitor_notifications_total{RATE}))",
                    "{{notifier}} {{result}}",
                )
            ],
            unit="cpm",
            stacked=True,
            width=8,
        ),
        common.timeseries_panel(
            ids(),
            "Event loop lag",
            [query("max by (instance) (support_monitor_loop_lag_seconds)", "{{instance}}")],
            unit="s",
            width=8,
            steps=thresholds(GREEN, (0.1, ORANGE), (1, RED)),
            description="How late the asyncio loop runs scheduled callbacks.",
        ),
        common.timeseries_panel(
            ids(),
            "Kafka consumer lag by partition",
            [
                query(
                    "sum by (topic, partition) (support_monitor_kafka_partition_lag)",
                    "{{topic}}/{{partition}}",
                )
            ],
            unit="short",
            width=8,
        ),
    ]
