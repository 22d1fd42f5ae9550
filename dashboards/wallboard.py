"""Wall board: one row of big tiles per channel, readable across a room, for a kiosk screen.

Tiles are the windowed gauges the detectors and alert rules evaluate, so the board shows what
pages people. Count tiles fall back to 0 with `or on() vector(0)`: `on()` makes the fallback apply
only when the left side is empty (a plain `or vector(0)` would add a second, label-less series
next to every channel's). Ratios are left NaN when a window had no traffic and read "no traffic",
never a red 0%.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import stat
from grafana_foundation_sdk.models import common as common_models

from dashboards import common
from dashboards.common import GREEN, ORANGE, RED, PanelIds, query, thresholds

UID = "support-wallboard"
TITLE = "Support wall board"
REFRESH = "10s"  # never faster than the 5 s scrape interval
TILE_WIDTH = 3
TILE_HEIGHT = 7
SERVICE_LEVEL_TARGET = 0.8  # the configured service_level_target (80/20 and friends)
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
        .with_row(common.row(ids(), "$channel", repeat="channel"))
    )
    for tile in _tiles(ids):
        board = board.with_panel(tile)
    return board


def _tile(
    panel_id: int,
    label: str,
    expr: str,
    *,
    unit: str,
    steps: dashboard_builders.ThresholdsConfig,
    description: str,
    ratio: bool = False,
) -> stat.Panel:
    """A big tile: the label is drawn inside the tile (panel headers are too small for a room)."""
    panel = common.stat_panel(
        panel_id,
        "",
        [query(expr, legend=label, instant=True)],
        unit=unit,
        steps=steps,
        width=TILE_WIDTH,
        height=TILE_HEIGHT,
        description=description,
        mappings=[common.nan_as("no traffic")] if ratio else (),
        text_mode=common_models.BigValueTextMode.VALUE_AND_NAME,
        title_size=22,
        no_value="no traffic" if ratio else "0",
    )
    return panel.display_name(label).data_links(
        [
            dashboard_builders.DashboardLink("Channel drill-down").url(
                "/d/support-channel?var-channel=${channel}&${__url_time_range}"
            )
        ]
    )


def _tiles(ids: PanelIds) -> list[stat.Panel]:
    return [
        _tile(
            ids(),
            "Waiting",
            _count("sum", f"support_queue_waiting{{{CHANNEL}}}"),
            unit="short",
            steps=thresholds(GREEN, (5, ORANGE), (15, RED)),
            description="Contacts waiting now (support_queue_waiting).",
        ),
        _tile(
            ids(),
            "Longest wait",
            _count("max", f"support_queue_oldest_wait_seconds{{{CHANNEL}}}"),
            unit="s",
            steps=thresholds(GREEN, (20, ORANGE), (60, RED)),
            description="Wait so far of the longest-waiting contact now.",
        ),
        _tile(
            ids(),
            "Past SLA",
            _count("sum", f"support_queue_breached_waiting{{{CHANNEL}}}"),
            unit="short",
            steps=thresholds(GREEN, (1, RED)),
            description="Contacts still waiting whose wait already exceeds the answer target T.",
        ),
        _tile(
            ids(),
            "Service level",
            f"support_service_level_ratio{{{WINDOWED}}}",
            unit="percentunit",
            steps=thresholds(RED, (SERVICE_LEVEL_TARGET, GREEN)),
            description=(
                "Answered in SLA / (answered + abandoned - short abandoned) over $window; red "
                "below the 80% target. 'no traffic' when nothing was answered or abandoned."
            ),
            ratio=True,
        ),
        _tile(
            ids(),
            "Abandoned",
            f"support_abandon_ratio{{{WINDOWED}}}",
            unit="percentunit",
            steps=thresholds(GREEN, (0.05, ORANGE), (0.1, RED)),
            description="Long abandons / (answered + long abandons) over $window.",
            ratio=True,
        ),
        _tile(
            ids(),
            "Complaints",
            _count("sum", f"support_complaints_window{{{WINDOWED}}}"),
            unit="short",
            steps=thresholds(GREEN, (3, ORANGE), (10, RED)),
            description="Complaints received in the last $window.",
        ),
        _tile(
            ids(),
            "Tickets at risk",
            _count("sum", f"support_tickets_at_risk{{{CHANNEL}}}"),
            unit="short",
            steps=thresholds(GREEN, (1, ORANGE), (5, RED)),
            description="Open tickets whose first-response or resolution deadline is near.",
        ),
        _tile(
            ids(),
            "Alerts firing",
            _count("count", f'support_alerts{{alertstate="firing",{CHANNEL}}}'),
            unit="short",
            steps=thresholds(GREEN, (1, RED)),
            description="Alerts firing now for this channel (support_alerts).",
        ),
    ]
