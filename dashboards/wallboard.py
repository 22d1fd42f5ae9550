"""Wall board: one row of big tiles per channel, readable across a room, for a kiosk screen.

Tiles are the windowed gauges the detectors and alert rules evaluate, so the board shows what
pages people. The service-level and longest-wait tiles are coloured by each channel's own config:
a second, hidden query reads `support_channel_service_level_target` or
`support_channel_answer_seconds`, and Grafana's "Config from query results" sets the tile's min
(or max) from it, so the percentage thresholds fall on that channel's target (see
`_service_level_tile` and `_longest_wait_tile`). Count tiles fall back to 0 with
`or on() vector(0)`: `on()` makes the fallback apply only when the left side is empty (a plain
`or vector(0)` would add a second, label-less series next to every channel's). Ratios are left
NaN when a window had no traffic and read "no traffic", never a red 0%.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import common as common_models

from dashboards import common
from dashboards.common import GREEN, ORANGE, RED, PanelIds, query, thresholds

if TYPE_CHECKING:
    from collections.abc import Sequence

    from grafana_foundation_sdk.builders import prometheus, stat
    from grafana_foundation_sdk.models import dashboard as dashboard_models

UID = "support-wallboard"
TITLE = "Support wall board"
REFRESH = "10s"  # never faster than the 5 s scrape interval
TILE_WIDTH = 3
TILE_HEIGHT = 7
DEFAULT_TARGET = 0.8  # service level colours when the channel exports no target
DEFAULT_ANSWER_SECONDS = 20.0  # longest-wait colours when the channel exports no T
CHANNEL = 'channel=~"$channel"'
CHANNEL_VALUES = 'label_values({__name__=~"support_queue_waiting|support_tickets_open"}, channel)'
WINDOWED = 'channel=~"$channel",window="$window"'


def _count(aggregation: str, selector: str) -> str:
    return f"{aggregation} by (channel) ({selector}) or on() vector(0)"


def build() -> dashboard_builders.Dashboard:
    ids = PanelIds()
    board = (
        common.dashboard(
            UID,
            TITLE,
            "Kiosk wall board: live queue, service level, complaints, tickets at risk and firing "
            "alerts, one row per channel.",
        )
        .readonly()
        .refresh(REFRESH)
        .time("now-1h", "now")
        .timepicker(
            dashboard_builders.TimePicker().refresh_intervals(["10s", "30s", "1m", "5m", "15m"])
        )
        .with_variable(
            common.query_variable(
                "channel",
                "Channel",
                CHANNEL_VALUES,
                multi=True,
                include_all=True,
            )
        )
        .with_variable(
            common.query_variable(
                "window",
                "Window",
                "label_values(support_service_level_ratio, window)",
                multi=False,
                include_all=False,
                default="5m",
            )
        )
        .annotation(
            common.alert_annotation(
                "Alerts firing", f'support_alerts{{alertstate="firing",{CHANNEL}}}'
            )
        )
        .with_row(common.row(ids(), "$channel", repeat="channel"))
    )
    for tile in _tiles(ids):
        board = board.with_panel(tile)
    return board


def _tile(
    panel_id: int,
    label: str,
    targets: list[prometheus.Dataquery],
    *,
    unit: str,
    steps: dashboard_builders.ThresholdsConfig,
    description: str,
    ratio: bool = False,
    min_value: float | None = None,
    max_value: float | None = None,
    transformations: Sequence[dashboard_models.DataTransformerConfig] = (),
) -> stat.Panel:
    """A big tile titled with its label; the value fills the tile."""
    panel = common.stat_panel(
        panel_id,
        label,
        targets,
        unit=unit,
        steps=steps,
        width=TILE_WIDTH,
        height=TILE_HEIGHT,
        description=description,
        mappings=[common.nan_as("no traffic")] if ratio else (),
        text_mode=common_models.BigValueTextMode.VALUE,
        no_value="no traffic" if ratio else "0",
        min_value=min_value,
        max_value=max_value,
        transformations=transformations,
    )
    return panel.data_links(
        [
            dashboard_builders.DashboardLink("Channel drill-down").url(
                "/d/support-channel?var-channel=${channel}&${__url_time_range}"
            )
        ]
    )


def _count_tile(
    panel_id: int,
    label: str,
    expr: str,
    *,
    unit: str,
    steps: dashboard_builders.ThresholdsConfig,
    description: str,
    ratio: bool = False,
) -> stat.Panel:
    return _tile(
        panel_id,
        label,
        [query(expr, legend=label, instant=True)],
        unit=unit,
        steps=steps,
        description=description,
        ratio=ratio,
    )


def service_level_min(target: float) -> float:
    """The tile's min for a target t: 2t - 1, so that t sits at 50% of min..1."""
    return round(2 * target - 1, 9)


def _service_level_tile(panel_id: int) -> stat.Panel:
    """Red below the channel's `service_level_target`, green from it.

    Query B (hidden) returns 2t - 1 for the row's channel and becomes the tile's min; max is 1.
    It has data only where query A has (otherwise Grafana would show B as the value).
    A value v is at (v - (2t - 1)) / (2 - 2t) of min..max, which is >= 50% exactly when v >= t.
    Without a target for the channel the panel's own min, 2 * 0.8 - 1, applies (80%).
    """
    label = "Service level"
    return _tile(
        panel_id,
        label,
        [
            query(f"support_service_level_ratio{{{WINDOWED}}}", legend=label, instant=True),
            query(
                f"(2 * support_channel_service_level_target{{{CHANNEL}}} - 1)"
                f" and on(channel) support_service_level_ratio{{{WINDOWED}}}",
                legend="min",
                ref_id="B",
                instant=True,
            ),
        ],
        unit="percentunit",
        steps=common.percent_thresholds(RED, (50, GREEN)),
        description=(
            "Answered in SLA / (answered + abandoned - short abandoned) over $window; red below "
            "the channel's service_level_target (support_channel_service_level_target), green "
            "from it. 'no traffic' when nothing was answered or abandoned."
        ),
        ratio=True,
        min_value=service_level_min(DEFAULT_TARGET),
        max_value=1,
        transformations=[common.config_from_query("B", "min", "min")],
    )


def _longest_wait_tile(panel_id: int) -> stat.Panel:
    """Green below T/2, orange from T/2, red from T (the channel's `answer_seconds`).

    Query B (hidden) returns 2T for the row's channel and becomes the tile's max; min is 0, so
    25% of min..max is T/2 and 50% is T. Without T for the channel the panel's own max, 2 x 20 s,
    applies.
    """
    label = "Longest wait"
    return _tile(
        panel_id,
        label,
        [
            query(
                _count("max", f"support_queue_oldest_wait_seconds{{{CHANNEL}}}"),
                legend=label,
                instant=True,
            ),
            query(
                f"2 * support_channel_answer_seconds{{{CHANNEL}}}",
                legend="max",
                ref_id="B",
                instant=True,
            ),
        ],
        unit="s",
        steps=common.percent_thresholds(GREEN, (25, ORANGE), (50, RED)),
        description=(
            "Wait so far of the longest-waiting contact now; orange from half the channel's "
            "answer target T, red from T (support_channel_answer_seconds)."
        ),
        min_value=0,
        max_value=2 * DEFAULT_ANSWER_SECONDS,
        transformations=[common.config_from_query("B", "max", "max")],
    )


def _tiles(ids: PanelIds) -> list[stat.Panel]:
    return [
        _count_tile(
            ids(),
            "Waiting",
            _count("sum", f"support_queue_waiting{{{CHANNEL}}}"),
            unit="short",
            steps=thresholds(GREEN, (5, ORANGE), (15, RED)),
            description="Contacts waiting now (support_queue_waiting).",
        ),
        _longest_wait_tile(ids()),
        _count_tile(
            ids(),
            "Past SLA",
            _count("sum", f"support_queue_breached_waiting{{{CHANNEL}}}"),
            unit="short",
            steps=thresholds(GREEN, (1, RED)),
            description="Contacts still waiting whose wait already exceeds the answer target T.",
        ),
        _service_level_tile(ids()),
        _count_tile(
            ids(),
            "Abandoned",
            f"support_abandon_ratio{{{WINDOWED}}}",
            unit="percentunit",
            steps=thresholds(GREEN, (0.05, ORANGE), (0.1, RED)),
            description="Long abandons / (answered + long abandons) over $window.",
            ratio=True,
        ),
        _count_tile(
            ids(),
            "Complaints",
            _count("sum", f"support_complaints_window{{{WINDOWED}}}"),
            unit="short",
            steps=thresholds(GREEN, (3, ORANGE), (10, RED)),
            description="Complaints received in the last $window.",
        ),
        _count_tile(
            ids(),
            "Tickets at risk",
            _count("sum", f"support_tickets_at_risk{{{CHANNEL}}}"),
            unit="short",
            steps=thresholds(GREEN, (1, ORANGE), (5, RED)),
            description="Open tickets whose first-response or resolution deadline is near.",
        ),
        _count_tile(
            ids(),
            "Alerts firing",
            _count("count", f'support_alerts{{alertstate="firing",{CHANNEL}}}'),
            unit="short",
            steps=thresholds(GREEN, (1, RED)),
            description="Alerts firing now for this channel (support_alerts).",
        ),
    ]
