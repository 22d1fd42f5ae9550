"""Channel drill-down: per-queue live state, service level, abandons, CSAT and tickets over time.

Besides the windowed gauges it recomputes the service level from the raw counters (sum the
counts, then divide; never average ratios), so a supervisor can check the gauge and compute it per
queue, which the windowed gauges (per channel) cannot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grafana_foundation_sdk.models import dashboard as dashboard_models

from dashboards import common
from dashboards.common import PanelIds, query

if TYPE_CHECKING:
    from collections.abc import Callable

    from grafana_foundation_sdk.builders import dashboard as dashboard_builders
    from grafana_foundation_sdk.builders import prometheus, timeseries

UID = "support-channel"
TITLE = "Support channel drill-down"
LIVE = 'channel=~"$channel",queue=~"$queue"'
WINDOWED = 'channel=~"$channel",window="$window"'
CUSTOMER = 'channel=~"$channel"'
TICKET_RATE_RANGE = "1h"  # tickets are slow: quantiles over the last hour, not one scrape step
QUANTILES = (0.5, 0.9, 0.99)
RATE = "[$__rate_interval]"


def _increase(metric: str, by: str, window: str = "$window") -> str:
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
            "abandons, breaches, CSAT, complaints and tickets.",
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
                "Alerts firing", f'support_alerts{{alertstate="firing",{CUSTOMER}}}'
            )
        )
    )
    sections: list[tuple[str, Callable[[PanelIds], list[timeseries.Panel]]]] = [
        ("Queues now", _queue_panels),
        ("Service level and waits", _service_panels),
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
            "(increase over $window; small differences come from Prometheus extrapolation).",
        ),
        _ratio_panel(
            ids(),
            "Service level by queue (counters)",
            [query(service_level_from_counters("channel, queue"), "{{channel}}/{{queue}}")],
            "Answered in SLA / (answered + abandoned - short abandoned) per queue over $window.",
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
    ]
