"""Detector tuning: each detector's signal against its expected value and threshold, and alerts.

One time series panel is repeated per selected detector (`$detector`): score, expected (the
baseline the detector compares against) and threshold per channel, so a threshold can be tuned by
looking at how often and by how much the score crossed it. Below, the alert states those
crossings turned into.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from grafana_foundation_sdk.models import dashboard as dashboard_models

from support_monitor.dashboards import common
from support_monitor.dashboards.common import GREEN, ORANGE, RED, PanelIds, query, thresholds
from support_monitor.detectors.config import BUILTIN_NAMES, DetectorSettings

if TYPE_CHECKING:
    from grafana_foundation_sdk.builders import dashboard as dashboard_builders

UID = "support-detectors"
TITLE = "Support detector tuning"
DETECTORS = (*BUILTIN_NAMES, *(t.name for t in DetectorSettings().thresholds))
"""The ``detector`` label values of the default config: the built-in detectors, then one per
default threshold (a config's own thresholds add their ``name``)."""
SELECTOR = 'detector=~"$detector",channel=~"$channel"'
ALERTS = 'channel=~"$channel"'
PENDING = 1
FIRING = 2


def _dash(length: int) -> list[dashboard_models.DynamicConfigValue]:
    return [
        dashboard_models.DynamicConfigValue(
            id_val="custom.lineStyle", value={"fill": "dash", "dash": [length, length]}
        )
    ]


def build() -> dashboard_builders.Dashboard:
    ids = PanelIds()
    signals_row = common.row(ids(), "Signals")
    signal = (
        common.timeseries_panel(
            ids(),
            "$detector: score vs expected and threshold",
            [
                query(f"support_detector_score{{{SELECTOR}}}", "{{channel}} score"),
                query(f"support_detector_expected{{{SELECTOR}}}", "{{channel}} expected", "B"),
                query(f"support_detector_threshold{{{SELECTOR}}}", "{{channel}} threshold", "C"),
            ],
            unit="short",
            min_value=None,
            description=(
                "Solid: the detector's score; dotted: what it expected (baseline); dashed: the "
                "threshold it alerts on."
            ),
        )
        .override_by_regexp(".* threshold", _dash(10))
        .override_by_regexp(".* expected", _dash(2))
        .repeat("detector")
        .repeat_direction("h")
        .max_per_row(2)
    )
    return (
        common.dashboard(
            UID,
            TITLE,
            "Detector score vs expected and threshold over time, and the alerts they raised.",
        )
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(
            common.query_variable(
                "detector",
                "Detector",
                "label_values(support_detector_score, detector)",
                multi=True,
                include_all=True,
            ).description(
                "Detector instances: "
                + ", ".join(DETECTORS)
                + ", and each configured threshold's name"
            )
        )
        .with_variable(
            common.query_variable(
                "channel",
                "Channel",
                "label_values(support_detector_score, channel)",
                multi=True,
                include_all=True,
            )
        )
        .annotation(
            common.alert_annotation(
                "Alerts firing", f'support_alerts{{alertstate="firing",{ALERTS}}}'
            )
        )
        .with_row(signals_row)
        .with_panel(signal)
        .with_row(common.row(ids(), "Now and alerts"))
        .with_panel(
            common.table_panel(
                ids(),
                "Detectors now",
                [
                    query(
                        f"support_detector_{name}{{{SELECTOR}}}",
                        name,
                        common.ref_id(index),
                        instant=True,
                        table=True,
                    )
                    for index, name in enumerate(("score", "expected", "threshold"))
                ],
                width=12,
                height=10,
                rename={"Value #A": "score", "Value #B": "expected", "Value #C": "threshold"},
                description="Current score, expected value and threshold per detector and channel.",
            )
        )
        .with_panel(
            common.table_panel(
                ids(),
                "Active alerts",
                [query(f"support_alerts{{{ALERTS}}}", "", instant=True, table=True)],
                width=12,
                height=10,
                hide=("Time", "__name__", "instance", "job"),
                rename={"Value": "alerts"},
                description=(
                    "support_alerts now: one row per alert name, state, channel and severity; "
                    "alerts: how many alerts share it (e.g. two burn-rate pairs of one rule)."
                ),
            )
        )
        .with_panel(
            common.state_timeline_panel(
                ids(),
                "Alert states",
                [
                    query(
                        # clamp_max: a series counts the alerts sharing it, 2 is not "firing"
                        f"max by (alertname, channel) (clamp_max(support_alerts"
                        f'{{alertstate="firing",{ALERTS}}}, 1)) * {FIRING} or max by '
                        f"(alertname, channel) (clamp_max(support_alerts"
                        f'{{alertstate="pending",{ALERTS}}}, 1)) * {PENDING}',
                        "{{alertname}} {{channel}}",
                    )
                ],
                mappings=[
                    common.value_texts(
                        {str(PENDING): ("pending", ORANGE), str(FIRING): ("firing", RED)}
                    )
                ],
                steps=thresholds(GREEN, (PENDING, ORANGE), (FIRING, RED)),
                width=24,
                height=10,
                description="Per alert and channel: pending (orange) and firing (red) over time.",
            )
        )
    )
