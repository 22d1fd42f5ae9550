"""The dashboards' PromQL in the real Prometheus: every query parses, and the Wave 2 tiles and
panels give the numbers worked out by hand from hand-written series.

Parsing goes to the running local Prometheus (`/api/v1/query`: a syntax error is a `bad_data`
error, an unknown metric merely an empty result). The numbers come from `promtool test rules`,
which evaluates an expression over the `input_series` of a unit-test file exactly as the server
does; no daemon is needed, so the expressions are checked before the engine exports the metrics.
"""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from support_monitor.dashboards.build import (
    annotation_queries,
    build_all,
    iter_panels,
    panel_queries,
    substitute,
)

if TYPE_CHECKING:
    from pathlib import Path

MODELS: dict[str, dict[str, Any]] = build_all()
EVAL_MINUTES = 60  # every series below has a sample per minute from 0 to 60 min
# the concrete values the hand-computed cases use for the template variables
VALUES = {
    "channel": "voice",
    "agent_channel": "voice",
    "desk_channel": "email",
    "queue": ".*",
    "window": "5m",
    "__range": "1h",  # "Breaches today" at 60 min after midnight
    "__rate_interval": "1m",
    "__interval": "1m",
}


def _flat(value: float) -> str:
    """promtool series notation: `value` at every minute from 0 to EVAL_MINUTES."""
    return f"{value}+0x{EVAL_MINUTES}"


def _alert(name: str, state: str, channel: str, severity: str) -> str:
    return (
        f'support_alerts{{alertname="{name}",alertstate="{state}",channel="{channel}",'
        f'severity="{severity}"}}'
    )


SERIES: dict[str, str] = {
    # workforce: voice has two queues, one of them overloaded; chat must be filtered out
    'support_estimated_wait_seconds{channel="voice",queue="billing"}': _flat(12),
    'support_estimated_wait_seconds{channel="voice",queue="tech"}': "Inf+0x60",
    # no handle time measured yet
    'support_estimated_wait_seconds{channel="voice",queue="new"}': "NaN+0x60",
    'support_estimated_wait_seconds{channel="chat",queue="sales"}': _flat(3),
    'support_channel_answer_seconds{channel="voice"}': _flat(20),
    'support_channel_answer_seconds{channel="chat"}': _flat(60),
    'support_agents{channel="voice",state="available"}': _flat(3),
    'support_agents{channel="voice",state="busy"}': _flat(7),
    'support_agents{channel="voice",state="after_call_work"}': _flat(2),
    'support_agents{channel="voice",state="break"}': _flat(1),
    'support_agents{channel="voice",state="offline"}': _flat(4),
    'support_agents{channel="chat",state="available"}': _flat(9),
    'support_agents_required{channel="voice",queue="billing"}': _flat(14),
    # customer voice: the 5m window is the one selected
    'support_nps_score{channel="voice",window="5m"}': _flat(0.25),
    'support_nps_score{channel="voice",window="1h"}': _flat(-0.5),
    # help desk: no urgent ticket; 4 next-reply breaches this hour (1 at 11 min, 3 at 32 min)
    'support_tickets_open_by_priority{channel="email",priority="high"}': _flat(3),
    'support_tickets_open_by_priority{channel="email",priority="normal"}': _flat(11),
    'support_sla_breaches_total{channel="email",queue="default",sla="next_reply"}': (
        "0+0x10 1+0x20 4+0x28"
    ),
    'support_sla_breaches_total{channel="email",queue="default",sla="first_response"}': _flat(0),
    'support_sla_breaches_total{channel="voice",queue="billing",sla="answer"}': "0+1x60",
    # alerts: a series' value counts the alerts sharing it (two burn pairs of one rule pending)
    _alert("ServiceLevelBurn", "pending", "voice", "critical"): _flat(2),
    _alert("BacklogGrowing", "firing", "voice", "warning"): _flat(2),
    _alert("ComplaintSpike", "firing", "voice", "critical"): _flat(1),
    _alert("ComplaintSpike", "pending", "voice", "warning"): _flat(3),
    _alert("CsatLow", "pending", "chat", "warning"): _flat(1),
}


def _expr(dashboard: str, title: str, ref_id: str, channel: str) -> str:
    for panel in iter_panels(MODELS[dashboard]):
        if panel.get("title") == title:
            targets: list[dict[str, Any]] = panel["targets"]  # type: ignore[assignment]
            target = next(t for t in targets if t["refId"] == ref_id)
            return substitute(str(target["expr"]), {**VALUES, "channel": channel})
    raise AssertionError(f"no panel {title!r} in {dashboard}")


DETECTOR_BOARD = "support-detectors.json"
EMAIL = {"Ticket SLA breaches per hour by SLA"}  # drill-down panels evaluated for email
WALL = "support-wallboard.json"
CHANNEL = "support-channel.json"
# (dashboard, panel title, refId) -> expected samples: labels -> value, by hand from SERIES
CASES: list[tuple[str, str, str, dict[str, float]]] = [
    # the worst voice queue is overloaded: +Inf, which the tile maps to "overloaded"
    (WALL, "Estimated wait", "A", {'{channel="voice"}': float("inf")}),
    # the hidden config query: 2 x T of voice (20 s), only where the tile has a value
    (WALL, "Estimated wait", "B", {'{channel="voice"}': 40}),
    (WALL, "Available", "A", {'{channel="voice"}': 3}),
    (WALL, "On contact", "A", {'{channel="voice"}': 7}),
    (WALL, "After-call work", "A", {'{channel="voice"}': 2}),
    (WALL, "Break", "A", {'{channel="voice"}': 1}),
    # 0.25 x 100
    (WALL, "NPS", "A", {'{channel="voice",window="5m"}': 25}),
    # urgent: no series, the fallback 0; high: 3
    (WALL, "Open by priority", "A", {"{}": 0}),
    (WALL, "Open by priority", "B", {'{channel="email"}': 3}),
    (WALL, "Open by priority", "C", {'{channel="email"}': 11}),
    # first response 0, next reply 4 (0 -> 1 -> 4 within the hour), resolution: no series
    (WALL, "Breaches today", "A", {'{channel="email"}': 0}),
    (WALL, "Breaches today", "B", {'{channel="email"}': 4}),
    (WALL, "Breaches today", "C", {"{}": 0}),
    (
        CHANNEL,
        "Overloaded queues",
        "A",
        {
            '{channel="voice",queue="billing"}': 0,
            '{channel="voice",queue="new"}': 0,
            '{channel="voice",queue="tech"}': 1,
        },
    ),
    (
        CHANNEL,
        "Agents required vs available + busy",
        "A",
        {'{channel="voice",queue="billing"}': 14},
    ),
    # available 3 + busy 7; after-call work, break and offline are not on the queue
    (CHANNEL, "Agents required vs available + busy", "B", {'{channel="voice"}': 10}),
    (CHANNEL, "Agents by state", "C", {'{channel="voice",state="after_call_work"}': 2}),
    (CHANNEL, "NPS", "A", {'{channel="voice",window="5m"}': 25}),
    (
        CHANNEL,
        "Ticket SLA breaches per hour by SLA",
        "A",
        {
            '{channel="email",queue="default",sla="first_response"}': 0,
            '{channel="email",queue="default",sla="next_reply"}': 4,
        },
    ),
    # 1 pending, 2 firing: a firing alert wins over a pending one of the same name, and a
    # series counting two pending alerts is still pending; chat is not the channel selected
    (
        DETECTOR_BOARD,
        "Alert states",
        "A",
        {
            '{alertname="BacklogGrowing",channel="voice"}': 2,
            '{alertname="ComplaintSpike",channel="voice"}': 2,
            '{alertname="ServiceLevelBurn",channel="voice"}': 1,
        },
    ),
]
# (dashboard, panel title, refId, wrapper, expected samples of the wrapped expression): for
# results with NaN, which promtool cannot compare, so the wrapper counts or filters the series
WRAPPED: list[tuple[str, str, str, str, dict[str, float]]] = [
    # the finite (12) and the unknown (NaN) queue; the overloaded one is on "Overloaded queues"
    (CHANNEL, "Estimated wait by queue", "A", "count by (channel) ({})", {'{channel="voice"}': 2}),
    (
        CHANNEL,
        "Estimated wait by queue",
        "A",
        "{} > 0",
        {'{channel="voice",queue="billing"}': 12},
    ),
]


@pytest.mark.prometheus
def test_wave2_panels_give_the_hand_computed_numbers(promtool: str, tmp_path: Path) -> None:
    tests = [
        {
            "expr": _expr(dashboard, title, ref_id, "email" if title in EMAIL else "voice"),
            "eval_time": f"{EVAL_MINUTES}m",
            "exp_samples": [
                {"labels": labels, "value": value} for labels, value in expected.items()
            ],
        }
        for dashboard, title, ref_id, expected in CASES
    ]
    tests += [
        {
            "expr": wrapper.format(_expr(dashboard, title, ref_id, "voice")),
            "eval_time": f"{EVAL_MINUTES}m",
            "exp_samples": [
                {"labels": labels, "value": value} for labels, value in expected.items()
            ],
        }
        for dashboard, title, ref_id, wrapper, expected in WRAPPED
    ]
    unit = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": series, "values": values} for series, values in SERIES.items()
                ],
                "promql_expr_test": tests,
            }
        ]
    }
    path = tmp_path / "dashboards_test.yml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _variable_selectors(model: dict[str, Any]) -> list[str]:
    """The series selector inside each label_values(selector, label) variable."""
    selectors = []
    for variable in model["templating"]["list"]:
        match = re.fullmatch(r"label_values\((.+), *\w+\)", str(variable.get("query", "")))
        if match:
            selectors.append(match.group(1))
    return selectors


@pytest.mark.prometheus
def test_every_dashboard_query_parses_in_prometheus(prometheus_url: str) -> None:
    queries = []
    for model in MODELS.values():
        queries += panel_queries(model) + annotation_queries(model)
        values = dict.fromkeys(("channel", "queue", "agent_channel", "desk_channel"), ".*")
        queries += [substitute(selector, values) for selector in _variable_selectors(model)]
    failures = []
    with httpx.Client(timeout=10) as client:
        for expr in queries:
            answer = client.get(f"{prometheus_url}/api/v1/query", params={"query": expr}).json()
            if answer.get("status") != "success":
                failures.append(f"{expr!r}: {answer.get('error')}")
    assert not failures, "\n".join(failures)
    assert len(queries) > 100
    # a broken expression is caught: the check itself is not vacuous
    with httpx.Client(timeout=10) as client:
        bad = client.get(
            f"{prometheus_url}/api/v1/query", params={"query": "sum by (channel) (x < +Inf"}
        ).json()
    assert bad["status"] == "error"


# every spelling of a window the daemon can export as the `window` label: Prometheus' syntax,
# seconds as written in the config (a number or a string of one) and the day so far
WINDOW_SPELLINGS = {
    "5m": "5m",
    "1h30m": "1h30m",
    "1d2h3m4s5ms": "1d2h3m4s5ms",
    "300": "300s",
    "90.5": "90s500ms",
    "90.25": "90s250ms",
    "1.005": "1s005ms",
    # Grafana's $__range in a variable query, seconds: the drill-down's default 6 h range
    "today": "21600s",
}


def _grafana_regex(pattern: str) -> re.Pattern[str]:
    """A Grafana variable regex (`/.../flags`) as a Python pattern."""
    match = re.fullmatch(r"/(.*)/([a-z]*)", pattern)
    assert match, pattern
    return re.compile(match.group(1))


@pytest.mark.prometheus
@pytest.mark.parametrize(("window", "expected"), sorted(WINDOW_SPELLINGS.items()))
def test_window_range_works_for_every_window_spelling(
    prometheus_url: str, window: str, expected: str
) -> None:
    # `increase(...[$window])` failed with `bad duration syntax` for `today` and `missing unit
    # character` for a window in seconds; the hidden $window_range turns each into a range
    model = MODELS[CHANNEL]
    variable = next(v for v in model["templating"]["list"] if v["name"] == "window_range")
    # Grafana runs query_result()'s argument as an instant query at the range's end
    inner = re.fullmatch(r"query_result\((.*)\)", variable["query"])
    assert inner, variable["query"]
    query = substitute(inner.group(1), {"window": window, "__range": "21600s"})
    with httpx.Client(timeout=10) as client:
        answer = client.get(f"{prometheus_url}/api/v1/query", params={"query": query}).json()
        assert answer["status"] == "success", answer
        # Grafana's query_result() line: the series, its value and the time in ms
        lines = [
            "{"
            + ",".join(f'{k}="{v}"' for k, v in sorted(r["metric"].items()))
            + "} "
            + f"{r['value'][1]} {int(float(r['value'][0]) * 1000)}"
            for r in answer["data"]["result"]
        ]
        values = [
            m.group(1) for line in lines if (m := _grafana_regex(variable["regex"]).search(line))
        ]
        assert values == [expected], lines
        # every drill-down query parses with this window and its range
        values_for = {**VALUES, "queue": ".*", "window": window, "window_range": expected}
        failures = []
        for panel in iter_panels(model):
            targets: list[dict[str, Any]] = panel.get("targets", [])  # type: ignore[assignment]
            for target in targets:
                expr = substitute(str(target["expr"]), values_for)
                reply = client.get(f"{prometheus_url}/api/v1/query", params={"query": expr}).json()
                if reply.get("status") != "success":
                    failures.append(f"{panel['title']}/{target['refId']}: {reply.get('error')}")
    assert not failures, "\n".join(failures)


@pytest.mark.prometheus
def test_counters_over_the_window_range_match_the_increase(promtool: str, tmp_path: Path) -> None:
    # the service level from the counters over `300` (seconds) is the increase over 300s:
    # in SLA +1/min, answered +2/min, abandoned +1/min of which short +1/2min ->
    # 5 / (10 + 5 - 2.5) = 0.4
    per_minute = {
        "support_contacts_answered_in_sla_total": "0+1x60",
        "support_contacts_answered_total": "0+2x60",
        "support_contacts_abandoned_total": "0+1x60",
        "support_contacts_abandoned_short_total": "0+0.5x60",
    }
    panel = next(
        p
        for p in iter_panels(MODELS[CHANNEL])
        if p.get("title") == "Service level by queue (counters)"
    )
    targets: list[dict[str, Any]] = panel["targets"]  # type: ignore[assignment]
    target = next(t for t in targets if t["refId"] == "A")  # B: the target line
    expr = substitute(
        str(target["expr"]),
        {**VALUES, "channel": "voice", "window": "300", "window_range": WINDOW_SPELLINGS["300"]},
    )
    unit = {
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'{name}{{channel="voice",queue="billing"}}', "values": values}
                    for name, values in per_minute.items()
                ],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": "30m",
                        "exp_samples": [
                            {"labels": '{channel="voice",queue="billing"}', "value": 0.4}
                        ],
                    }
                ],
            }
        ]
    }
    path = tmp_path / "window_range_test.yml"
    path.write_text(yaml.safe_dump(unit, sort_keys=False), encoding="utf-8")
    result = subprocess.run(
        [promtool, "test", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
