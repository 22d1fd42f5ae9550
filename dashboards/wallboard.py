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

Below the channel rows come three more sections, each a row repeated per channel: agents
(states, occupancy, estimated wait) for the channels that export `support_agents`, customer
voice (NPS, CES, CSAT, FCR, containment, negative sentiment) for every selected channel, and the
help desk (backlog age, paused, open by priority, breaches today) for the channels with a ticket
SLA clock (a `first_response`, `next_reply` or `resolution` series of
`support_sla_breaches_total`). The two narrower channel lists are hidden variables chained
to `$channel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import common as common_models

from support_monitor.dashboards import common
from support_monitor.dashboards.common import BLUE, GREEN, ORANGE, RED, PanelIds, query, thresholds

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

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
SECTION_TILE_WIDTH = 4
AGENT_CHANNEL = 'channel=~"$agent_channel"'
AGENT_WINDOWED = 'channel=~"$agent_channel",window="$window"'
AGENT_CHANNEL_VALUES = 'label_values(support_agents{channel=~"$channel"}, channel)'
DESK_CHANNEL = 'channel=~"$desk_channel"'
DESK_CHANNEL_VALUES = (
    "label_values(support_sla_breaches_total"
    '{channel=~"$channel",sla=~"first_response|next_reply|resolution"}, channel)'
)
"""Channels with a ticket SLA clock: the daemon exports a breach counter per configured clock."""
INFINITY = "Infinity"
"""How a value mapping sees +Inf: Grafana matches a value map by the value as a JavaScript
string, and String(Infinity) is "Infinity"."""
TODAY = "now/d"  # Grafana's "Today so far" in the dashboard's time zone
PRIORITIES = ("urgent", "high", "normal", "low")
BREACH_SLAS = (
    ("first_response", "first response"),
    ("next_reply", "next reply"),
    ("resolution", "resolution"),
)
NPS_STEPS = ((0.0, ORANGE), (30.0, GREEN))  # NPS x 100: red below 0, orange 0-29, green from 30
CES_STEPS = ((4.0, ORANGE), (5.0, GREEN))  # 1-7, higher is easier: red below 4, green from 5
CSAT_STEPS = ((0.7, ORANGE), (0.8, GREEN))
FCR_STEPS = ((0.6, ORANGE), (0.7, GREEN))
CONTAINMENT_STEPS = ((0.4, ORANGE), (0.6, GREEN))
NEGATIVE_STEPS = ((0.1, ORANGE), (0.2, RED))
OCCUPANCY_STEPS = ((0.6, GREEN), (0.85, ORANGE), (0.9, RED))  # blue below 60%: idle agents
BACKLOG_AGE_STEPS = ((12 * 3600.0, ORANGE), (24 * 3600.0, RED))


def _count(aggregation: str, selector: str) -> str:
    return f"{aggregation} by (channel) ({selector}) or on() vector(0)"


def build() -> dashboard_builders.Dashboard:
    ids = PanelIds()
    board = (
        common.dashboard(
            UID,
            TITLE,
            "Kiosk wall board, rows per channel: live queue, service level, complaints, tickets "
            "at risk and firing alerts; agents, occupancy and estimated wait; customer voice "
            "(NPS, CES, CSAT, FCR, containment, negative sentiment); help desk (backlog age, "
            "paused, open by priority, breaches today).",
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
        .with_variable(common.window_variable())
        .annotation(
            common.alert_annotation(
                "Alerts firing", f'support_alerts{{alertstate="firing",{CHANNEL}}}'
            )
        )
        .with_variable(
            common.query_variable(
                "agent_channel",
                "Agent channels",
                AGENT_CHANNEL_VALUES,
                multi=True,
                include_all=True,
                hide=True,
            )
        )
        .with_variable(
            common.query_variable(
                "desk_channel",
                "Help-desk channels",
                DESK_CHANNEL_VALUES,
                multi=True,
                include_all=True,
                hide=True,
            )
        )
        .with_row(common.row(ids(), "$channel", repeat="channel"))
    )
    for tile in _tiles(ids):
        board = board.with_panel(tile)
    sections: list[tuple[str, str, Callable[[PanelIds], list[stat.Panel]]]] = [
        ("Agents: $agent_channel", "agent_channel", _agent_tiles),
        ("Customer voice: $channel", "channel", _voice_tiles),
        ("Help desk: $desk_channel", "desk_channel", _desk_tiles),
    ]
    for title, variable, tiles in sections:
        board = board.with_row(common.row(ids(), title, repeat=variable))
        for tile in tiles(ids):
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
    variable: str = "channel",
    width: int = TILE_WIDTH,
    decimals: int = 0,
    mappings: Sequence[dashboard_models.ValueMapping] = (),
    empty: str = "no traffic",
    text_mode: common_models.BigValueTextMode = common_models.BigValueTextMode.VALUE,
    time_from: str | None = None,
) -> stat.Panel:
    """A big tile titled with its label; the value fills the tile. `variable` is the repeated
    row's channel variable (the drill-down link opens that channel in the board's `$window`); a
    ratio tile shows NaN and no data as `empty`."""
    panel = common.stat_panel(
        panel_id,
        label,
        targets,
        unit=unit,
        steps=steps,
        width=width,
        height=TILE_HEIGHT,
        description=description,
        decimals=decimals,
        mappings=[*mappings, common.nan_as(empty)] if ratio else mappings,
        text_mode=text_mode,
        no_value=empty if ratio else "0",
        min_value=min_value,
        max_value=max_value,
        transformations=transformations,
        time_from=time_from,
    )
    return panel.data_links(
        [
            dashboard_builders.DashboardLink("Channel drill-down").url(
                f"/d/support-channel?var-channel=${{{variable}}}&var-window=${{window}}"
                "&${__url_time_range}"
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
    variable: str = "channel",
    width: int = TILE_WIDTH,
    decimals: int = 0,
    empty: str = "no traffic",
    min_value: float | None = None,
    max_value: float | None = None,
    time_from: str | None = None,
) -> stat.Panel:
    return _tile(
        panel_id,
        label,
        [query(expr, legend=label, instant=True)],
        unit=unit,
        steps=steps,
        description=description,
        ratio=ratio,
        variable=variable,
        width=width,
        decimals=decimals,
        empty=empty,
        min_value=min_value,
        max_value=max_value,
        time_from=time_from,
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
            description=(
                "Open tickets whose first-response, next-reply or resolution deadline is near."
            ),
        ),
        _count_tile(
            ids(),
            "Alerts firing",
            _count("sum", f'support_alerts{{alertstate="firing",{CHANNEL}}}'),
            unit="short",
            steps=thresholds(GREEN, (1, RED)),
            description=(
                "Alerts firing now for this channel: the sum of support_alerts, whose value is "
                "the number of alerts in each series (one series can hold several)."
            ),
        ),
    ]


def _agent_state_tile(panel_id: int, label: str, state: str, description: str) -> stat.Panel:
    steps = thresholds(ORANGE, (1, GREEN)) if state == "available" else thresholds(BLUE)
    return _count_tile(
        panel_id,
        label,
        _count("sum", f'support_agents{{{AGENT_CHANNEL},state="{state}"}}'),
        unit="short",
        steps=steps,
        description=description,
        variable="agent_channel",
        width=SECTION_TILE_WIDTH,
    )


def _estimated_wait_tile(panel_id: int) -> stat.Panel:
    """The worst queue's estimated wait; green below T/2, orange from T/2, red from T, and +Inf
    (arrivals exceed what the agents on the channel can handle) reads "overloaded" in red.

    Query B (hidden) returns 2T for the row's channel where query A has data and becomes the
    tile's max (min 0), as on the longest-wait tile.
    """
    label = "Estimated wait"
    ewt = f"max by (channel) (support_estimated_wait_seconds{{{AGENT_CHANNEL}}})"
    return _tile(
        panel_id,
        label,
        [
            query(ewt, legend=label, instant=True),
            query(
                f"2 * support_channel_answer_seconds{{{AGENT_CHANNEL}}} and on(channel) {ewt}",
                legend="max",
                ref_id="B",
                instant=True,
            ),
        ],
        unit="s",
        steps=common.percent_thresholds(GREEN, (25, ORANGE), (50, RED)),
        description=(
            "Erlang C estimate of the wait of a contact arriving now, the channel's worst queue "
            "(support_estimated_wait_seconds); orange from half the channel's answer target T, "
            "red from T; 'overloaded' when arrivals exceed what the available and busy agents "
            "can handle (+Inf); 'no traffic' before a handle time was measured (NaN)."
        ),
        ratio=True,
        min_value=0,
        max_value=2 * DEFAULT_ANSWER_SECONDS,
        transformations=[common.config_from_query("B", "max", "max")],
        variable="agent_channel",
        width=SECTION_TILE_WIDTH,
        mappings=[common.value_texts({INFINITY: ("overloaded", RED)})],
    )


def _agent_tiles(ids: PanelIds) -> list[stat.Panel]:
    return [
        _agent_state_tile(
            ids(), "Available", "available", "Agents available now; orange when none is free."
        ),
        _agent_state_tile(ids(), "On contact", "busy", "Agents busy on a contact now."),
        _agent_state_tile(
            ids(), "After-call work", "after_call_work", "Agents in after-call work now."
        ),
        _agent_state_tile(ids(), "Break", "break", "Agents on a break now."),
        _count_tile(
            ids(),
            "Occupancy",
            f"support_occupancy_ratio{{{AGENT_WINDOWED}}}",
            unit="percentunit",
            steps=thresholds(BLUE, *OCCUPANCY_STEPS),
            description=(
                "(busy + after-call work time) / (available + busy + after-call work time) over "
                "$window; blue below 60% (agents idle), green from 60%, orange from 85%, red "
                "from 90% (no slack). 'no agents' when no agent was logged in."
            ),
            ratio=True,
            variable="agent_channel",
            width=SECTION_TILE_WIDTH,
            empty="no agents",
        ),
        _estimated_wait_tile(ids()),
    ]


def _voice_tiles(ids: PanelIds) -> list[stat.Panel]:
    def ratio(
        label: str, metric: str, base: str, steps: tuple[tuple[float, str], ...], text: str
    ) -> stat.Panel:
        return _count_tile(
            ids(),
            label,
            f"{metric}{{{WINDOWED}}}",
            unit="percentunit",
            steps=thresholds(base, *steps),
            description=f"{text} over $window. 'no traffic' when there was none.",
            ratio=True,
            width=SECTION_TILE_WIDTH,
        )

    return [
        _count_tile(
            ids(),
            "NPS",
            f"100 * support_nps_score{{{WINDOWED}}}",
            unit="none",
            steps=thresholds(RED, *NPS_STEPS),
            description=(
                "Net promoter score over $window, shown as -100..100: the query multiplies "
                "support_nps_score ((promoters 9-10 - detractors 0-6) / answers, -1..1) by 100. "
                "Red below 0, orange from 0, green from 30."
            ),
            ratio=True,
            width=SECTION_TILE_WIDTH,
            min_value=-100,
            max_value=100,
        ),
        _count_tile(
            ids(),
            "CES",
            f"support_ces_score{{{WINDOWED}}}",
            unit="none",
            steps=thresholds(RED, *CES_STEPS),
            description=(
                "Mean customer effort score (1-7, higher = easier) over $window; red below 4, "
                "orange from 4, green from 5."
            ),
            ratio=True,
            width=SECTION_TILE_WIDTH,
            decimals=1,
            min_value=1,
            max_value=7,
        ),
        ratio("CSAT", "support_csat_ratio", RED, CSAT_STEPS, "Ratings of 4-5 / all ratings"),
        ratio(
            "First-contact resolution",
            "support_fcr_ratio",
            RED,
            FCR_STEPS,
            "Tickets solved with at most one agent response and never reopened / solved",
        ),
        ratio(
            "Containment",
            "support_self_service_ratio",
            RED,
            CONTAINMENT_STEPS,
            "Self-service sessions contained (no agent) / all sessions ended",
        ),
        ratio(
            "Negative sentiment",
            "support_negative_sentiment_ratio",
            GREEN,
            NEGATIVE_STEPS,
            "Negative sentiment scores / all scores",
        ),
    ]


def _by_name_thresholds(
    panel: stat.Panel, name: str, steps: dashboard_builders.ThresholdsConfig
) -> stat.Panel:
    return panel.override_by_name(name, [common.override_value("thresholds", steps.build())])


def _open_by_priority_tile(panel_id: int) -> stat.Panel:
    """One value per priority, in a fixed order: urgent red from 1, high orange from 1."""
    panel = _tile(
        panel_id,
        "Open by priority",
        [
            query(
                _count(
                    "sum", f'support_tickets_open_by_priority{{{DESK_CHANNEL},priority="{name}"}}'
                ),
                legend=name,
                ref_id=common.ref_id(index),
                instant=True,
            )
            for index, name in enumerate(PRIORITIES)
        ],
        unit="short",
        steps=thresholds(BLUE),
        description=(
            "Open tickets by current priority (support_tickets_open_by_priority); urgent red "
            "and high orange from 1."
        ),
        variable="desk_channel",
        width=2 * SECTION_TILE_WIDTH,
        text_mode=common_models.BigValueTextMode.VALUE_AND_NAME,
    )
    panel = _by_name_thresholds(panel, "urgent", thresholds(GREEN, (1, RED)))
    return _by_name_thresholds(panel, "high", thresholds(GREEN, (1, ORANGE)))


def _breaches_today_tile(panel_id: int) -> stat.Panel:
    return _tile(
        panel_id,
        "Breaches today",
        [
            query(
                "round(sum by (channel) (increase(support_sla_breaches_total"
                f'{{{DESK_CHANNEL},sla="{sla}"}}[$__range]))) or on() vector(0)',
                legend=label,
                ref_id=common.ref_id(index),
                instant=True,
            )
            for index, (sla, label) in enumerate(BREACH_SLAS)
        ],
        unit="short",
        steps=thresholds(GREEN, (1, RED)),
        description=(
            "Ticket SLA breaches since midnight in the dashboard's time zone (the panel's own "
            "time range is 'Today so far'): the increase of support_sla_breaches_total by sla "
            "over it, rounded. Red from 1."
        ),
        variable="desk_channel",
        width=2 * SECTION_TILE_WIDTH,
        text_mode=common_models.BigValueTextMode.VALUE_AND_NAME,
        time_from=TODAY,
    )


def _desk_tiles(ids: PanelIds) -> list[stat.Panel]:
    return [
        _count_tile(
            ids(),
            "Backlog age",
            _count("max", f"support_ticket_oldest_open_age_seconds{{{DESK_CHANNEL}}}"),
            unit="s",
            steps=thresholds(GREEN, *BACKLOG_AGE_STEPS),
            description=(
                "Age of the oldest open ticket (support_ticket_oldest_open_age_seconds); "
                "orange from 12 h, red from 24 h."
            ),
            variable="desk_channel",
            width=SECTION_TILE_WIDTH,
            decimals=1,
        ),
        _count_tile(
            ids(),
            "Paused",
            _count("sum", f"support_tickets_paused{{{DESK_CHANNEL}}}"),
            unit="short",
            steps=thresholds(BLUE),
            description=(
                "Open tickets whose every running SLA clock is paused now, e.g. waiting on the "
                "customer (support_tickets_paused)."
            ),
            variable="desk_channel",
            width=SECTION_TILE_WIDTH,
        ),
        _open_by_priority_tile(ids()),
        _breaches_today_tile(ids()),
    ]
