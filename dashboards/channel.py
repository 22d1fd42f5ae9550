"""Channel drill-down: per-queue live state, service level, abandons, agents and staffing,
customer voice and tickets over time.

Besides the windowed gauges it recomputes the service level from the raw counters (sum the
counts, then divide; never average ratios), so a supervisor can check the gauge and compute it per
queue, which the windowed gauges (per channel) cannot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grafana_foundation_sdk.models import dashboard as dashboard_models

from support_monitor.dashboards import common
from support_monitor.dashboards.common import (
    BLUE,
    GREEN,
    ORANGE,
    PURPLE,
    RED,
    PanelIds,
    query,
    thresholds,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from grafana_foundation_sdk.builders import dashboard as dashboard_builders
    from grafana_foundation_sdk.builders import prometheus, statetimeline, timeseries

    Panel = timeseries.Panel | statetimeline.Panel

UID = "support-channel"
TITLE = "Support channel drill-down"
LIVE = 'channel=~"$channel",queue=~"$queue"'
WINDOWED = 'channel=~"$channel",window="$window"'
CUSTOMER = 'channel=~"$channel"'
TICKET_RATE_RANGE = "1h"  # tickets are slow: quantiles over the last hour, not one scrape step
QUANTILES = (0.5, 0.9, 0.99)
RATE = "[$__rate_interval]"
TICKET_SLAS = "first_response|next_reply|resolution"
AGENT_STATE_COLOURS = (
    ("available", GREEN),
    ("busy", BLUE),
    ("after_call_work", PURPLE),
    ("break", ORANGE),
)
"""The states drawn on "Agents by state", in stacking order (offline agents are not drawn)."""
OVERLOADED = 1  # `support_estimated_wait_seconds == bool +Inf`


WINDOW_RANGE = "window_range"
"""Hidden variable: `$window` as a PromQL range, for the panels that recompute a windowed gauge
from the counters (`increase(...[$window_range])`)."""
RANGE_LABEL = "range"
_RANGE_STEPS = (
    # (regex, replacement) applied in turn to the `range` label, which starts as `$window`;
    # label_replace's regex is anchored, so each step rewrites only the names it spells out
    ("([0-9]+)", "${1}s"),  # seconds as written in the config (`300`)
    ("([0-9]+)[.]([0-9])", "${1}s${2}00ms"),  # `90.5`: PromQL durations have no fractions
    ("([0-9]+)[.]([0-9]{2})", "${1}s${2}0ms"),
    ("([0-9]+)[.]([0-9]{3})[0-9]*", "${1}s${2}ms"),  # to the millisecond
    ("today", "$__range"),  # the day so far has no fixed length: the dashboard's time range
)


def window_range_query() -> str:
    """The `window_range` variable's query: a one-series `query_result` whose `range` label is
    `$window` as a PromQL duration. A window in Prometheus' syntax (`5m`, `1h30m`) stays as it
    is, plain seconds get their unit (`300` -> `300s`, `90.5` -> `90s500ms`), and `today` becomes
    `$__range` (Grafana fills it in when the variable refreshes, on every time range change).
    Built from `vector(1)`, so it has a value even before the daemon exported anything."""
    expr = f'label_replace(vector(1), "{RANGE_LABEL}", "$window", "", "")'
    for regex, replacement in _RANGE_STEPS:
        expr = (
            f'label_replace({expr}, "{RANGE_LABEL}", "{replacement}", "{RANGE_LABEL}", "{regex}")'
        )
    return f"query_result({expr})"


WINDOW_RANGE_REGEX = f'/{RANGE_LABEL}="([^"]+)"/'
"""Grafana's variable regex: the `range` label of the query_result line is the value."""


def _increase(metric: str, by: str, window: str = f"${WINDOW_RANGE}") -> str:
    return f"sum by ({by}) (increase({metric}{{{LIVE}}}[{window}]))"


def service_level_from_counters(by: str) -> str:
    """answered in SLA / (answered + abandoned - short abandoned), the gauge's formula."""
    answered_in_sla = _increase("support_contacts_answered_in_sla_total", by)
    answered = _increase("support_contacts_answered_total", by)
    abandoned = _increase("support_contacts_abandoned_total", by)
    short = _increase("support_contacts_abandoned_short_total", by)
    return f"{answered_in_sla} / ({answered} + {abandoned} - {short})"


def _histogram_quantiles(metric: str, selector: str, window: str) -> list[prometheus.Dataquery]:
    return [
        query(
            f"histogram_quantile({q}, sum by (channel, le) "
            f"(rate({metric}_bucket{{{selector}}}[{window}])))",
            legend=f"{{{{channel}}}} p{round(q * 100)}",
            ref_id=common.ref_id(index),
        )
        for index, q in enumerate(QUANTILES)
    ]


def build() -> dashboard_builders.Dashboard:
    ids = PanelIds()
    board = (
        common.dashboard(
            UID,
            TITLE,
            "Per channel and queue: waiting, waits, service level (gauge and counters), "
            "abandons, breaches, agents and staffing, customer voice and self-service, and "
            "tickets (priorities, pauses, backlog age, next-reply breaches).",
        )
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(
            common.query_variable(
                "channel",
                "Channel",
                'label_values({__name__=~"support_queue_waiting|support_tickets_open"}, channel)',
                multi=True,
                include_all=True,
            )
        )
        .with_variable(
            common.query_variable(
                "queue",
                "Queue",
                'label_values({__name__=~"support_queue_waiting|support_tickets_open",'
                'channel=~"$channel"}, queue)',
                multi=True,
                include_all=True,
            )
        )
        .with_variable(common.window_variable())
        .with_variable(
            common.query_variable(
                WINDOW_RANGE,
                "Window range",
                window_range_query(),
                multi=False,
                include_all=False,
                default=common.DEFAULT_WINDOW,
                hide=True,
                regex=WINDOW_RANGE_REGEX,
            )
        )
        .annotation(
            common.alert_annotation(
                "Alerts firing", f'support_alerts{{alertstate="firing",{CUSTOMER}}}'
            )
        )
    )
    sections: list[tuple[str, Callable[[PanelIds], Sequence[Panel]]]] = [
        ("Queues now", _queue_panels),
        ("Service level and waits", _service_panels),
        ("Agents and staffing", _agent_panels),
        ("Customer voice", _voice_panels),
        ("Tickets", _ticket_panels),
    ]
    for title, panels in sections:
        board = board.with_row(common.row(ids(), title))
        for panel in panels(ids):
            board = board.with_panel(panel)
    return board


def _queue_panels(ids: PanelIds) -> list[timeseries.Panel]:
    legend = "{{channel}}/{{queue}}"
    return [
        common.timeseries_panel(
            ids(),
            "Waiting by queue",
            [query(f"sum by (channel, queue) (support_queue_waiting{{{LIVE}}})", legend)],
            unit="short",
            width=8,
            description="Contacts waiting now.",
        ),
        common.timeseries_panel(
            ids(),
            "Longest wait by queue",
            [
                query(
                    f"max by (channel, queue) (support_queue_oldest_wait_seconds{{{LIVE}}})",
                    legend,
                )
            ],
            unit="s",
            width=8,
            description="Wait so far of the longest-waiting contact (0 when none waits).",
        ),
        common.timeseries_panel(
            ids(),
            "Waiting past SLA by queue",
            [query(f"sum by (channel, queue) (support_queue_breached_waiting{{{LIVE}}})", legend)],
            unit="short",
            width=8,
            description="Contacts waiting whose wait already exceeds the answer target T.",
        ),
    ]


def _ratio_panel(
    panel_id: int, title: str, targets: list[prometheus.Dataquery], description: str
) -> timeseries.Panel:
    """A service-level panel with each channel's configured target as a dashed line."""
    target = query(
        f"support_channel_service_level_target{{{CUSTOMER}}}",
        "{{channel}} target",
        common.ref_id(len(targets)),
    )
    return common.timeseries_panel(
        panel_id,
        title,
        [*targets, target],
        unit="percentunit",
        description=description + " Dashed: the channel's service_level_target.",
        max_value=1,
    ).override_by_regexp(
        ".* target",
        [
            dashboard_models.DynamicConfigValue(
                id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
            )
        ],
    )


def _service_panels(ids: PanelIds) -> list[timeseries.Panel]:
    return [
        _ratio_panel(
            ids(),
            "Service level: gauge vs counters",
            [
                query(f"support_service_level_ratio{{{WINDOWED}}}", "{{channel}} gauge"),
                query(service_level_from_counters("channel"), "{{channel}} counters", "B"),
            ],
            "support_service_level_ratio over $window, and the same formula from the counters "
            "(increase over $window; small differences come from Prometheus extrapolation). "
            "With window 'today' the counters cover the dashboard's time range instead (pick "
            "'Today so far' to compare).",
        ),
        _ratio_panel(
            ids(),
            "Service level by queue (counters)",
            [query(service_level_from_counters("channel, queue"), "{{channel}}/{{queue}}")],
            "Answered in SLA / (answered + abandoned - short abandoned) per queue over $window "
            "(with 'today': over the dashboard's time range).",
        ),
        common.timeseries_panel(
            ids(),
            "Abandon rate",
            [query(f"support_abandon_ratio{{{WINDOWED}}}", "{{channel}}")],
            unit="percentunit",
            max_value=1,
            description="Long abandons / (answered + long abandons) over $window.",
        ),
        common.timeseries_panel(
            ids(),
            "Wait quantiles",
            [
                query(
                    f"support_wait_quantile_seconds{{{WINDOWED}}}",
                    "{{channel}} q{{quantile}}",
                )
            ],
            unit="s",
            description="Quantiles of answered waits over $window (relative error <= 2%).",
        ),
        common.timeseries_panel(
            ids(),
            "Contacts per minute",
            [
                query(
                    f"60 * sum by (channel) "
                    f"(rate(support_contacts_{name}_total{{{LIVE}}}[$__rate_interval]))",
                    f"{{{{channel}}}} {name}",
                    common.ref_id(index),
                )
                for index, name in enumerate(("queued", "answered", "abandoned"))
            ],
            unit="cpm",
            description="Contacts that started waiting, were answered, abandoned.",
        ),
        common.timeseries_panel(
            ids(),
            "Abandons per minute: short vs long",
            [
                query(
                    "60 * sum by (channel) (rate(support_contacts_abandoned_short_total"
                    f"{{{LIVE}}}[$__rate_interval]))",
                    "{{channel}} short",
                ),
                query(
                    "60 * (sum by (channel) (rate(support_contacts_abandoned_total"
                    f"{{{LIVE}}}[$__rate_interval])) - sum by (channel) "
                    f"(rate(support_contacts_abandoned_short_total{{{LIVE}}}[$__rate_interval])))",
                    "{{channel}} long",
                    "B",
                ),
            ],
            unit="cpm",
            stacked=True,
            description="Short abandons (wait < short_abandon_seconds) are excluded from SL.",
        ),
        common.timeseries_panel(
            ids(),
            "SLA breaches per minute by SLA",
            [
                query(
                    "60 * sum by (sla) "
                    f"(rate(support_sla_breaches_total{{{LIVE}}}[$__rate_interval]))",
                    "{{sla}}",
                )
            ],
            unit="cpm",
            stacked=True,
            description="Breaches are counted at the deadline, while the item is still open.",
        ),
        common.timeseries_panel(
            ids(),
            "Average speed of answer and handle time",
            [
                query(
                    f"sum by (channel) (rate(support_{name}_seconds_sum{{{LIVE}}}{RATE})) / "
                    f"sum by (channel) (rate(support_{name}_seconds_count{{{LIVE}}}{RATE}))",
                    f"{{{{channel}}}} {label}",
                    common.ref_id(index),
                )
                for index, (name, label) in enumerate((("wait", "ASA"), ("handle", "AHT")))
            ],
            unit="s",
            description="Means from the wait and handle histograms over $__rate_interval.",
        ),
    ]


def _agent_panels(ids: PanelIds) -> list[Panel]:
    agents_by_state = common.timeseries_panel(
        ids(),
        "Agents by state",
        [
            query(
                f'sum by (channel, state) (support_agents{{{CUSTOMER},state="{state}"}})',
                "{{channel}} {{state}}",
                common.ref_id(index),
            )
            for index, (state, _) in enumerate(AGENT_STATE_COLOURS)
        ],
        unit="short",
        stacked=True,
        description=(
            "Agents in each state (support_agents), stacked: available, on contact (busy), "
            "after-call work, break; offline agents are not drawn. An agent logged into several "
            "channels counts in each."
        ),
    )
    for state, colour in AGENT_STATE_COLOURS:
        agents_by_state = agents_by_state.override_by_regexp(
            f".* {state}", [common.fixed_colour(colour)]
        )
    return [
        agents_by_state,
        common.timeseries_panel(
            ids(),
            "Occupancy",
            [query(f"support_occupancy_ratio{{{WINDOWED}}}", "{{channel}}")],
            unit="percentunit",
            max_value=1,
            description=(
                "(busy + after-call work time) / (available + busy + after-call work time) over "
                "$window (support_occupancy_ratio)."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Agents required vs available + busy",
            [
                query(
                    f"sum by (channel, queue) (support_agents_required{{{LIVE}}})",
                    "{{channel}}/{{queue}} required",
                ),
                query(
                    f'sum by (channel) (support_agents{{{CUSTOMER},state=~"available|busy"}})',
                    "{{channel}} available + busy",
                    "B",
                ),
            ],
            unit="short",
            description=(
                "Dashed: Erlang C agents required per queue to reach the channel's service level "
                "target (support_agents_required). Solid: agents available or busy on the "
                "channel (support_agents), who may serve several of its queues."
            ),
        ).override_by_regexp(".* required", [common.dashed()]),
        common.timeseries_panel(
            ids(),
            "Estimated wait by queue",
            [
                query(
                    f"max by (channel, queue) (support_estimated_wait_seconds{{{LIVE}}}) != +Inf",
                    "{{channel}}/{{queue}}",
                ),
                query(
                    f"support_channel_answer_seconds{{{CUSTOMER}}}",
                    "{{channel}} T",
                    "B",
                ),
            ],
            unit="s",
            description=(
                "Erlang C wait of a contact arriving now, per queue "
                "(support_estimated_wait_seconds); dashed: the channel's answer target T. An "
                "overloaded queue (+Inf) leaves a gap here and shows on 'Overloaded queues'; a "
                "queue whose handle time is not measured yet (NaN) leaves a gap too."
            ),
        ).override_by_regexp(".* T", [common.dashed()]),
        common.state_timeline_panel(
            ids(),
            "Overloaded queues",
            [
                query(
                    "max by (channel, queue) "
                    f"(support_estimated_wait_seconds{{{LIVE}}} == bool +Inf)",
                    "{{channel}}/{{queue}}",
                )
            ],
            mappings=[
                common.value_texts({"0": ("ok", GREEN), str(OVERLOADED): ("overloaded", RED)})
            ],
            steps=thresholds(GREEN, (OVERLOADED, RED)),
            width=24,
            height=6,
            description=(
                "Red while a queue's arrivals exceed what the available and busy agents can "
                "handle (support_estimated_wait_seconds is +Inf)."
            ),
        ),
    ]


def _per_hour(metric: str, by: str, selector: str) -> str:
    return f"3600 * sum by ({by}) (rate({metric}{{{selector}}}{RATE}))"


def _voice_panels(ids: PanelIds) -> list[timeseries.Panel]:
    return [
        common.timeseries_panel(
            ids(),
            "CSAT",
            [query(f"support_csat_ratio{{{WINDOWED}}}", "{{channel}}")],
            unit="percentunit",
            max_value=1,
            width=8,
            description="Ratings of 4-5 / all ratings over $window.",
        ),
        common.timeseries_panel(
            ids(),
            "CSAT ratings per hour by value",
            [
                query(
                    "3600 * sum by (rating) "
                    f"(rate(support_csat_ratings_total{{{CUSTOMER}}}[$__rate_interval]))",
                    "rating {{rating}}",
                )
            ],
            unit="short",
            bars=True,
            stacked=True,
            width=8,
            description="CSAT answers per hour, stacked by rating (1-5).",
        ),
        common.timeseries_panel(
            ids(),
            "Complaints",
            [
                query(
                    f"sum by (channel) (support_complaints_window{{{WINDOWED}}})",
                    "{{channel}} in $window",
                ),
                query(
                    "3600 * sum by (category) "
                    f"(rate(support_complaints_total{{{CUSTOMER}}}[$__rate_interval]))",
                    "{{category}} per hour",
                    "B",
                ),
            ],
            unit="short",
            width=8,
            description="Complaints in the window (what the spike detector sees) and by category.",
        ),
        common.timeseries_panel(
            ids(),
            "NPS",
            [query(f"100 * support_nps_score{{{WINDOWED}}}", "{{channel}}")],
            unit="none",
            min_value=-100,
            max_value=100,
            width=8,
            description=(
                "Net promoter score over $window, shown as -100..100: the query multiplies "
                "support_nps_score ((promoters 9-10 - detractors 0-6) / answers) by 100."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "CES",
            [query(f"support_ces_score{{{WINDOWED}}}", "{{channel}}")],
            unit="none",
            min_value=1,
            max_value=7,
            width=8,
            description="Mean customer effort score (1-7, higher = easier) over $window.",
        ),
        common.timeseries_panel(
            ids(),
            "First-contact resolution",
            [query(f"support_fcr_ratio{{{WINDOWED}}}", "{{channel}}")],
            unit="percentunit",
            max_value=1,
            width=8,
            description=(
                "Tickets solved with at most one agent response and never reopened / tickets "
                "solved, over $window (support_fcr_ratio)."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Containment (self-service)",
            [query(f"support_self_service_ratio{{{WINDOWED}}}", "{{channel}}")],
            unit="percentunit",
            max_value=1,
            width=8,
            description=(
                "Self-service sessions contained (no agent) / all sessions ended, over $window "
                "(support_self_service_ratio)."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Self-service sessions per hour by outcome",
            [
                query(
                    _per_hour("support_bot_sessions_total", "channel, outcome", CUSTOMER),
                    "{{channel}} {{outcome}}",
                )
            ],
            unit="short",
            bars=True,
            stacked=True,
            width=8,
            description="Sessions ended per hour: contained, escalated to an agent, abandoned.",
        ),
        common.timeseries_panel(
            ids(),
            "Negative sentiment share",
            [query(f"support_negative_sentiment_ratio{{{WINDOWED}}}", "{{channel}}")],
            unit="percentunit",
            max_value=1,
            width=8,
            description=(
                "Negative sentiment scores / all scores over $window "
                "(support_negative_sentiment_ratio)."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Sentiment scores per hour by polarity",
            [
                query(
                    _per_hour("support_sentiment_total", "channel, polarity", CUSTOMER),
                    "{{channel}} {{polarity}}",
                )
            ],
            unit="short",
            bars=True,
            stacked=True,
            description="Scores per hour: negative, neutral, positive (the configured cut-offs).",
        ),
        common.timeseries_panel(
            ids(),
            "Survey answers per hour by survey",
            [
                query(
                    _per_hour("support_survey_responses_total", "channel, survey", CUSTOMER),
                    "{{channel}} {{survey}}",
                )
            ],
            unit="short",
            bars=True,
            stacked=True,
            description="Survey answers per hour: csat, nps, ces.",
        ),
    ]


def _ticket_panels(ids: PanelIds) -> list[timeseries.Panel]:
    return [
        common.timeseries_panel(
            ids(),
            "Tickets open and at risk",
            [
                query(f"sum by (channel) (support_tickets_open{{{LIVE}}})", "{{channel}} open"),
                query(
                    f"sum by (channel, sla) (support_tickets_at_risk{{{LIVE}}})",
                    "{{channel}} at risk ({{sla}})",
                    "B",
                ),
            ],
            unit="short",
            description="Open tickets, and those whose deadline falls within the warning lead.",
        ),
        common.timeseries_panel(
            ids(),
            "Tickets created and solved per hour",
            [
                query(
                    f"sum by (channel) (increase(support_tickets_{name}_total"
                    f"{{{LIVE}}}[{TICKET_RATE_RANGE}]))",
                    f"{{{{channel}}}} {name}",
                    common.ref_id(index),
                )
                for index, name in enumerate(("created", "solved"))
            ],
            unit="short",
            description="Tickets created and solved over the last hour.",
        ),
        common.timeseries_panel(
            ids(),
            "First response time quantiles",
            _histogram_quantiles("support_first_response_seconds", LIVE, TICKET_RATE_RANGE),
            unit="s",
            description="Created to first response, from the histogram over the last hour.",
        ),
        common.timeseries_panel(
            ids(),
            "Resolution time quantiles",
            _histogram_quantiles("support_resolution_seconds", LIVE, TICKET_RATE_RANGE),
            unit="s",
            description="Created to solved, from the histogram over the last hour.",
        ),
        common.timeseries_panel(
            ids(),
            "Open tickets by priority",
            [
                query(
                    f"sum by (channel, priority) (support_tickets_open_by_priority{{{CUSTOMER}}})",
                    "{{channel}} {{priority}}",
                )
            ],
            unit="short",
            stacked=True,
            width=8,
            description="Open tickets by current priority (support_tickets_open_by_priority).",
        ),
        common.timeseries_panel(
            ids(),
            "Paused tickets by queue",
            [
                query(
                    f"sum by (channel, queue) (support_tickets_paused{{{LIVE}}})",
                    "{{channel}}/{{queue}}",
                )
            ],
            unit="short",
            width=8,
            description=(
                "Open tickets whose every running SLA clock is paused, e.g. waiting on the "
                "customer (support_tickets_paused)."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Backlog age by queue",
            [
                query(
                    f"max by (channel, queue) (support_ticket_oldest_open_age_seconds{{{LIVE}}})",
                    "{{channel}}/{{queue}}",
                )
            ],
            unit="s",
            width=8,
            description=(
                "Age of the oldest open ticket, wall time (support_ticket_oldest_open_age_seconds)."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Ticket SLA breaches per hour by SLA",
            [
                query(
                    "sum by (channel, queue, sla) (increase(support_sla_breaches_total"
                    f'{{{LIVE},sla=~"{TICKET_SLAS}"}}[{TICKET_RATE_RANGE}]))',
                    "{{channel}}/{{queue}} {{sla}}",
                )
            ],
            unit="short",
            description=(
                "Ticket breaches over the last hour per queue and clock: first response, next "
                "reply (after a customer reply, until the next agent response) and resolution "
                "(support_sla_breaches_total), counted at the deadline."
            ),
        ),
        common.timeseries_panel(
            ids(),
            "Reopened and solved on first contact per hour",
            [
                query(
                    f"sum by (channel) (increase(support_tickets_{name}_total"
                    f"{{{LIVE}}}[{TICKET_RATE_RANGE}]))",
                    f"{{{{channel}}}} {label}",
                    common.ref_id(index),
                )
                for index, (name, label) in enumerate(
                    (("reopened", "reopened"), ("solved_first_contact", "solved on first contact"))
                )
            ],
            unit="short",
            description="Tickets reopened and tickets solved on first contact over the last hour.",
        ),
    ]
