"""The generated Grafana dashboards: in sync, structurally valid, and querying only real metrics.

Everything is checked on the JSON models, without a Grafana server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from support_monitor.dashboards.build import (
    annotation_queries,
    build_all,
    panel_queries,
    render,
    write_all,
)
from support_monitor.dashboards.build import iter_panels as build_iter_panels
from support_monitor.dashboards.common import ALERT_ANNOTATION_FORMAT, INTERVAL_ONLY_KEYS

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "deploy" / "grafana" / "dashboards"
UIDS = {"support-wallboard", "support-channel", "support-detectors", "support-daemon"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
SCRAPE_INTERVAL_SECONDS = 5

# JSON models: nested dicts and lists whose shape the tests check, so read as Any
MODELS: dict[str, dict[str, Any]] = build_all()


def iter_panels(model: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """`dashboards.build.iter_panels`, its panels read as JSON (Any)."""
    return build_iter_panels(model)


def _panels(model):
    return [panel for panel in iter_panels(model) if panel["type"] != "row"]


def _targets(model):
    for panel in _panels(model):
        for target in panel.get("targets", []):
            yield panel, target


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h|d)", duration)
    assert match, f"not a duration: {duration!r}"
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]
    return int(match.group(1)) * factor


REBUILD = "support-monitor dashboards build --out deploy/grafana/dashboards"


def test_generated_files_are_in_sync_with_the_code():
    on_disk = {path.name for path in GENERATED.glob("*.json")}
    assert on_disk == set(MODELS), f"run: {REBUILD}"
    for name, model in MODELS.items():
        assert (GENERATED / name).read_text(encoding="utf-8") == render(model), (
            f"{name} is stale; run: {REBUILD}"
        )


def test_build_is_deterministic():
    assert build_all() == MODELS


def test_write_all_writes_pretty_sorted_json(tmp_path):
    written = write_all(tmp_path / "out")
    assert sorted(path.name for path in written) == sorted(MODELS)
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text.startswith('{\n  "')
        assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"


def test_uids_are_stable_and_match_file_names():
    assert {model["uid"] for model in MODELS.values()} == UIDS
    for name, model in MODELS.items():
        assert name == f"{model['uid']}.json"
        assert model["title"]
        assert "support-monitor" in model["tags"]
        assert model["schemaVersion"] >= 39


@pytest.mark.parametrize("name", sorted(MODELS))
def test_panel_ids_are_unique_positive_integers(name):
    ids = [panel["id"] for panel in iter_panels(MODELS[name])]
    assert all(isinstance(panel_id, int) and panel_id > 0 for panel_id in ids)
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_panels_fit_the_grid_without_overlapping(name):
    boxes = []
    for panel in iter_panels(MODELS[name]):
        pos = panel["gridPos"]
        assert pos["w"] > 0
        assert pos["h"] > 0
        assert pos["x"] >= 0
        assert pos["x"] + pos["w"] <= 24
        boxes.append((pos["x"], pos["y"], pos["x"] + pos["w"], pos["y"] + pos["h"]))
    for index, a in enumerate(boxes):
        for b in boxes[index + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], (a, b)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_target_has_a_ref_id_and_the_prometheus_datasource(name):
    for panel in _panels(MODELS[name]):
        assert panel["datasource"] == DATASOURCE, panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"panel {panel['id']} has no targets"
        ref_ids = [target["refId"] for target in targets]
        assert all(ref_ids), panel["title"]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in targets:
            assert target["datasource"] == DATASOURCE
            assert target["expr"].strip()


def test_thresholds_and_units():
    stats = 0
    for model in MODELS.values():
        for panel in _panels(model):
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit"), f"{panel['id']} {panel['title']!r} has no unit"
            thresholds = defaults.get("thresholds")
            if panel["type"] == "stat":
                stats += 1
                assert thresholds, panel
                assert panel["options"]["reduceOptions"]["calcs"]
            if thresholds is None:
                continue
            assert thresholds["mode"] in {"absolute", "percentage"}
            steps = thresholds["steps"]
            assert steps
            assert steps[0]["value"] is None
            values = [step["value"] for step in steps[1:]]
            assert all(isinstance(value, int | float) for value in values)
            assert values == sorted(values)
            assert len(values) == len(set(values))
            assert all(step["color"] for step in steps)
    assert stats >= 8


@pytest.mark.parametrize("name", sorted(MODELS))
def test_datasource_is_a_variable_used_everywhere(name):
    model = MODELS[name]
    first = model["templating"]["list"][0]
    assert first["name"] == "datasource"
    assert first["type"] == "datasource"
    assert first["query"] == "prometheus"
    assert first["current"]["value"] == "prometheus"  # the provisioned datasource's uid
    assert not first["multi"]
    assert not first["includeAll"]
    refs = [json.dumps(ref, sort_keys=True) for ref in _datasource_refs(model)]
    assert refs
    assert set(refs) == {json.dumps(DATASOURCE, sort_keys=True)}


def _datasource_refs(value):
    """Every `datasource` object anywhere in the model."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "datasource" and isinstance(item, dict):
                yield item
            else:
                yield from _datasource_refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _datasource_refs(item)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_panel_has_a_title(name):
    for panel in iter_panels(MODELS[name]):
        assert panel["title"].strip(), panel["id"]


def test_rates_use_the_rate_interval():
    # $__rate_interval follows the scrape interval and the zoom; the ticket quantiles keep 1h
    # (tickets are slow) and increase() keeps the windows the gauges use ($window)
    for model in MODELS.values():
        for panel in iter_panels(model):
            for target in panel.get("targets", []):
                for match in re.finditer(r"\brate\(\w+(?:\{[^}]*\})?\[([^\]]+)\]", target["expr"]):
                    assert match.group(1) in {"$__rate_interval", "1h"}, target["expr"]
                    if match.group(1) == "1h":
                        assert "_bucket" in match.group(0), target["expr"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_firing_alerts_are_annotated(name):
    annotations = MODELS[name]["annotations"]["list"]
    assert len(annotations) == 1
    (annotation,) = annotations
    assert annotation["enable"] is True
    assert annotation["datasource"] == DATASOURCE
    assert 'alertstate="firing"' in annotation["expr"]
    assert re.match(r"(support_alerts|ALERTS)\{", annotation["expr"])
    for key, value in ALERT_ANNOTATION_FORMAT.items():
        assert annotation[key] == value
    (expr,) = annotation_queries(MODELS[name])
    assert "$" not in expr


@pytest.mark.parametrize("name", sorted(MODELS))
def test_template_variables_are_valid(name):
    model = MODELS[name]
    variables = model["templating"].get("list", [])
    names = [variable["name"] for variable in variables]
    assert len(names) == len(set(names))
    for variable in variables:
        assert re.fullmatch(r"[a-z_]+", variable["name"])
        assert not set(INTERVAL_ONLY_KEYS) & set(variable)
        if variable["type"] == "datasource":
            continue
        assert variable["type"] == "query"
        assert variable["datasource"] == DATASOURCE
        if variable["name"] == "window_range":
            # the drill-down's hidden $window as a PromQL range (test_window_range_* below)
            assert variable["query"].startswith("query_result(label_replace(")
            assert variable["hide"] == 2
            assert variable["regex"]
        else:
            assert re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]), variable["query"]
        assert variable["current"]["value"]
        if variable.get("includeAll"):
            if variable.get("hide") == 2:
                # a hidden, chained list: All is its own values, so none matches nothing
                assert "allValue" not in variable
            else:
                assert variable["allValue"] == ".*"
            assert variable["current"]["value"] == ["$__all"]
    used = set()
    for panel in iter_panels(model):
        texts = [panel.get("title", "")] + [t["expr"] for t in panel.get("targets", [])]
        for text in texts:
            used.update(re.findall(r"\$\{?([a-z_]+)", text))
        if panel.get("repeat"):
            assert panel["repeat"] in names
    grafana_builtins = {"__rate_interval", "__interval", "__range"}
    assert used <= set(names) | grafana_builtins, used - set(names)
    # panel_queries resolves every variable, Grafana's own included
    assert all("$" not in expr for expr in panel_queries(model))


def test_wall_board_is_kiosk_friendly():
    board = MODELS["support-wallboard.json"]
    assert _seconds(board["refresh"]) >= SCRAPE_INTERVAL_SECONDS
    assert all(
        _seconds(interval) >= SCRAPE_INTERVAL_SECONDS
        for interval in board["timepicker"]["refresh_intervals"]
    )
    assert board["time"] == {"from": "now-1h", "to": "now"}
    assert board["editable"] is False
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["channel"]["multi"]
    assert variables["channel"]["includeAll"]
    assert variables["window"]["current"]["value"] == "5m"
    rows = [panel for panel in board["panels"] if panel["type"] == "row"]
    # a line of tiles per channel, then agents, customer voice and help desk per channel
    assert [row["repeat"] for row in rows] == [
        "channel",
        "agent_channel",
        "channel",
        "desk_channel",
    ]
    assert all(row["collapsed"] is False for row in rows)
    assert "support_agents{" in variables["agent_channel"]["query"]
    # channels with a ticket SLA clock, not every channel (the ticket gauges exist for all)
    assert 'sla=~"first_response|next_reply|resolution"' in variables["desk_channel"]["query"]
    for hidden in ("agent_channel", "desk_channel"):
        # follows the channel picker, shows no picker of its own
        assert variables[hidden]["hide"] == 2
        assert 'channel=~"$channel"' in variables[hidden]["query"]
        assert variables[hidden]["multi"]
        assert variables[hidden]["includeAll"]
    stats = _panels(board)
    assert len(stats) >= 7
    multi_value = {"Open by priority", "Breaches today"}
    for row, panels in _wall_board_sections(board):
        # each section fills full lines of the grid
        assert sum(panel["gridPos"]["w"] for panel in panels) % 24 == 0, row["title"]
        assert f"${row['repeat']}" in row["title"]
        for panel in panels:
            assert panel["type"] == "stat"
            assert panel["title"]
            assert panel["options"]["colorMode"] == "background"
            assert panel["options"]["graphMode"] == "none"
            expected_mode = "value_and_name" if panel["title"] in multi_value else "value"
            assert panel["options"]["textMode"] == expected_mode, panel["title"]
            assert panel["gridPos"]["h"] >= 6
            # the tile links to the drill-down of its own row's channel
            (link,) = panel["fieldConfig"]["defaults"]["links"]
            assert f"var-channel=${{{row['repeat']}}}&" in link["url"]
            for target in panel["targets"]:
                assert target["instant"] is True
                assert f'channel=~"${row["repeat"]}"' in target["expr"], panel["title"]
    service_level = next(p for p in stats if p["title"] == "Service level")
    assert service_level["fieldConfig"]["defaults"]["unit"] == "percentunit"


def _wall_board_sections(board):
    """(row, the panels after it up to the next row), in board order."""
    sections: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for panel in board["panels"]:
        if panel["type"] == "row":
            sections.append((panel, []))
        else:
            sections[-1][1].append(panel)
    return sections


def _grafana_colour(defaults, min_from_data, max_from_data, value):
    """An independent model of how Grafana colours a stat value: field config from the
    "Config from query results" transformation replaces the panel default it sets; a percentage
    threshold step p applies from min + p% of (max - min) on; the last step reached wins."""
    low = defaults.get("min") if min_from_data is None else min_from_data
    high = defaults.get("max") if max_from_data is None else max_from_data
    thresholds = defaults["thresholds"]
    level = value
    if thresholds["mode"] == "percentage":
        level = (value - low) / (high - low) * 100
    colour = thresholds["steps"][0]["color"]
    for step in thresholds["steps"][1:]:
        if level >= step["value"]:
            colour = step["color"]
    return colour


def _config_query(panel):
    (transformation,) = panel["transformations"]
    assert transformation["id"] == "configFromData"
    options = transformation["options"]
    (mapping,) = options["mappings"]
    target = next(t for t in panel["targets"] if t["refId"] == options["configRefId"])
    # Grafana names the config field by the query's legend
    assert mapping["fieldName"] == target["legendFormat"]
    assert mapping["reducerId"] == "lastNotNull"
    return mapping["handlerKey"], target["expr"]


@pytest.mark.parametrize(
    ("target", "below", "at"),
    [(0.8, 0.79, 0.8), (0.9, 0.895, 0.9), (0.5, 0.4999, 0.5), (0.95, 0.9, 0.97)],
)
def test_wall_board_service_level_follows_each_channels_target(target, below, at):
    board = MODELS["support-wallboard.json"]
    panel = next(p for p in _panels(board) if p["title"] == "Service level")
    handler, expr = _config_query(panel)
    assert handler == "min"
    assert expr.startswith("(2 * support_channel_service_level_target{")
    defaults = panel["fieldConfig"]["defaults"]
    low = 2 * target - 1  # what the config query returns for this channel
    assert _grafana_colour(defaults, low, None, below) == "red"
    assert _grafana_colour(defaults, low, None, at) == "green"
    assert _grafana_colour(defaults, low, None, 1.0) == "green"
    assert _grafana_colour(defaults, low, None, 0.0) == "red"
    # a channel without a target: the panel's own min gives the default 80%
    assert _grafana_colour(defaults, None, None, 0.79) == "red"
    assert _grafana_colour(defaults, None, None, 0.8) == "green"


@pytest.mark.parametrize("answer_seconds", [20, 60, 300])
def test_wall_board_longest_wait_follows_each_channels_answer_target(answer_seconds):
    board = MODELS["support-wallboard.json"]
    panel = next(p for p in _panels(board) if p["title"] == "Longest wait")
    handler, expr = _config_query(panel)
    assert handler == "max"
    assert expr.startswith("2 * support_channel_answer_seconds{")
    defaults = panel["fieldConfig"]["defaults"]
    high = 2 * answer_seconds
    t = answer_seconds
    assert _grafana_colour(defaults, None, high, 0) == "green"
    assert _grafana_colour(defaults, None, high, t / 2 - 0.5) == "green"
    assert _grafana_colour(defaults, None, high, t / 2) == "orange"
    assert _grafana_colour(defaults, None, high, t - 0.5) == "orange"
    assert _grafana_colour(defaults, None, high, t) == "red"
    assert _grafana_colour(defaults, None, high, 10 * t) == "red"
    # no T exported: the panel's own max, 2 x 20 s
    assert _grafana_colour(defaults, None, None, 10) == "orange"
    assert _grafana_colour(defaults, None, None, 20) == "red"


def _js_string(value):
    """JavaScript's String(number), which Grafana matches value-map keys against."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return str(int(value)) if value == int(value) else repr(value)


def _grafana_display(defaults, value, min_from_data=None, max_from_data=None):
    """(mapped text or None, colour): an independent model of Grafana's stat display. Value
    mappings come first (a value map by String(value), a special map of NaN), else the
    threshold colour of `_grafana_colour`."""
    for mapping in defaults.get("mappings", []):
        options = mapping["options"]
        if mapping["type"] == "value":
            result = options.get(_js_string(value))
        elif mapping["type"] == "special" and options["match"] in {"nan", "null+nan"}:
            result = options["result"] if math.isnan(value) else None
        else:
            result = None
        if result:
            return result["text"], result["color"]
    return None, _grafana_colour(defaults, min_from_data, max_from_data, value)


def _field_defaults(panel, name):
    """The panel's field defaults with the overrides of the field named `name` applied."""
    defaults = dict(panel["fieldConfig"]["defaults"])
    for override in panel["fieldConfig"]["overrides"]:
        if override["matcher"] == {"id": "byName", "options": name}:
            for prop in override["properties"]:
                defaults[prop["id"]] = prop["value"]
    return defaults


def _wall_tile(title):
    return next(p for p in _panels(MODELS["support-wallboard.json"]) if p["title"] == title)


@pytest.mark.parametrize("answer_seconds", [20, 60])
def test_wall_board_estimated_wait_follows_t_and_reads_overloaded(answer_seconds):
    panel = _wall_tile("Estimated wait")
    handler, expr = _config_query(panel)
    assert handler == "max"
    assert expr.startswith("2 * support_channel_answer_seconds{")
    # B has data only where A has, so an empty A never shows B's 2T as the value
    assert "and on(channel) max by (channel) (support_estimated_wait_seconds{" in expr
    defaults = panel["fieldConfig"]["defaults"]
    assert defaults["unit"] == "s"
    t = answer_seconds
    high = 2 * t
    assert _grafana_display(defaults, t / 2 - 0.5, None, high) == (None, "green")
    assert _grafana_display(defaults, t / 2, None, high) == (None, "orange")
    assert _grafana_display(defaults, t, None, high) == (None, "red")
    assert _grafana_display(defaults, math.inf, None, high) == ("overloaded", "red")
    assert _grafana_display(defaults, math.nan, None, high)[0] == "no traffic"
    assert _grafana_display(defaults, 0, None, high) == (None, "green")


def test_wall_board_agent_tiles():
    states = {
        "Available": "available",
        "On contact": "busy",
        "After-call work": "after_call_work",
        "Break": "break",
    }
    for title, state in states.items():
        (target,) = _wall_tile(title)["targets"]
        assert f'support_agents{{channel=~"$agent_channel",state="{state}"}}' in target["expr"]
        assert target["expr"].endswith("or on() vector(0)")
    available = _wall_tile("Available")["fieldConfig"]["defaults"]
    assert _grafana_display(available, 0) == (None, "orange")
    assert _grafana_display(available, 1) == (None, "green")
    assert _grafana_display(_wall_tile("Break")["fieldConfig"]["defaults"], 7) == (None, "blue")
    occupancy = _wall_tile("Occupancy")
    assert occupancy["targets"][0]["expr"] == (
        'support_occupancy_ratio{channel=~"$agent_channel",window="$window"}'
    )
    defaults = occupancy["fieldConfig"]["defaults"]
    assert defaults["unit"] == "percentunit"
    expected = {0.3: "blue", 0.6: "green", 0.84: "green", 0.85: "orange", 0.9: "red", 1.0: "red"}
    for value, colour in expected.items():
        assert _grafana_display(defaults, value) == (None, colour), value
    assert _grafana_display(defaults, math.nan)[0] == "no agents"


@pytest.mark.parametrize(
    ("title", "metric", "raw_colours"),
    [
        # NPS is -1..1 in Prometheus and -100..100 on the tile
        ("NPS", "support_nps_score", {-0.01: "red", 0.0: "orange", 0.29: "orange", 0.3: "green"}),
        ("CES", "support_ces_score", {3.9: "red", 4.0: "orange", 4.9: "orange", 5.0: "green"}),
        ("CSAT", "support_csat_ratio", {0.69: "red", 0.7: "orange", 0.8: "green"}),
        (
            "First-contact resolution",
            "support_fcr_ratio",
            {0.59: "red", 0.6: "orange", 0.7: "green"},
        ),
        ("Containment", "support_self_service_ratio", {0.39: "red", 0.4: "orange", 0.6: "green"}),
        (
            "Negative sentiment",
            "support_negative_sentiment_ratio",
            {0.09: "green", 0.1: "orange", 0.19: "orange", 0.2: "red"},
        ),
    ],
)
def test_wall_board_customer_voice_tiles(title, metric, raw_colours):
    panel = _wall_tile(title)
    (target,) = panel["targets"]
    defaults = panel["fieldConfig"]["defaults"]
    scale = 100 if title == "NPS" else 1
    selector = f'{metric}{{channel=~"$channel",window="$window"}}'
    assert target["expr"] == (f"100 * {selector}" if scale == 100 else selector)
    if scale == 100:
        assert "100" in panel["description"]
        assert (defaults["min"], defaults["max"], defaults["unit"]) == (-100, 100, "none")
    for raw, colour in raw_colours.items():
        assert _grafana_display(defaults, raw * scale) == (None, colour), raw
    assert _grafana_display(defaults, math.nan)[0] == "no traffic"
    assert panel["options"]["reduceOptions"]["calcs"] == ["lastNotNull"]


def test_wall_board_help_desk_tiles():
    backlog = _wall_tile("Backlog age")
    assert "support_ticket_oldest_open_age_seconds{" in backlog["targets"][0]["expr"]
    defaults = backlog["fieldConfig"]["defaults"]
    assert defaults["unit"] == "s"
    hour = 3600
    for value, colour in {11.9 * hour: "green", 12 * hour: "orange", 24 * hour: "red"}.items():
        assert _grafana_display(defaults, value) == (None, colour)

    priority = _wall_tile("Open by priority")
    legends = [target["legendFormat"] for target in priority["targets"]]
    assert legends == ["urgent", "high", "normal", "low"]
    for target in priority["targets"]:
        assert f'priority="{target["legendFormat"]}"' in target["expr"]
    colours = {
        ("urgent", 0): "green",
        ("urgent", 1): "red",
        ("high", 0): "green",
        ("high", 1): "orange",
        ("normal", 9): "blue",
        ("low", 9): "blue",
    }
    for (name, value), colour in colours.items():
        assert _grafana_display(_field_defaults(priority, name), value) == (None, colour)

    today = _wall_tile("Breaches today")
    assert today["timeFrom"] == "now/d"  # Grafana's "Today so far": $__range starts at midnight
    slas = []
    for target in today["targets"]:
        expr = target["expr"]
        assert expr.startswith("round(sum by (channel) (increase(support_sla_breaches_total{")
        assert "[$__range]" in expr
        slas += re.findall(r'sla="(\w+)"', expr)
    assert slas == ["first_response", "next_reply", "resolution"]
    defaults = today["fieldConfig"]["defaults"]
    assert _grafana_display(defaults, 0) == (None, "green")
    assert _grafana_display(defaults, 1) == (None, "red")


def _channel_panel(title):
    return next(p for p in _panels(MODELS["support-channel.json"]) if p["title"] == title)


def test_drill_down_sections():
    rows = [p["title"] for p in MODELS["support-channel.json"]["panels"] if p["type"] == "row"]
    assert rows == [
        "Queues now",
        "Service level and waits",
        "Agents and staffing",
        "Customer voice",
        "Tickets",
    ]
    titles = {p["title"] for p in _panels(MODELS["support-channel.json"])}
    assert {
        "Agents by state",
        "Occupancy",
        "Agents required vs available + busy",
        "Estimated wait by queue",
        "Overloaded queues",
        "NPS",
        "CES",
        "First-contact resolution",
        "Containment (self-service)",
        "Negative sentiment share",
        "Open tickets by priority",
        "Paused tickets by queue",
        "Backlog age by queue",
        "Ticket SLA breaches per hour by SLA",
    } <= titles


def test_drill_down_agents_by_state_colours_each_state():
    panel = _channel_panel("Agents by state")
    states = [re.findall(r'state="(\w+)"', t["expr"])[0] for t in panel["targets"]]
    assert states == ["available", "busy", "after_call_work", "break"]  # offline not drawn
    overrides = panel["fieldConfig"]["overrides"]
    # Grafana's byRegexp matcher tests the series' display name, here "{{channel}} {{state}}"
    for state in states:
        name = f"voice {state}"
        matching = [o for o in overrides if re.search(o["matcher"]["options"], name)]
        assert len(matching) == 1, name
    colours = [o["properties"][0]["value"]["fixedColor"] for o in overrides]
    assert colours == ["green", "blue", "purple", "orange"]


def test_drill_down_estimated_wait_splits_finite_and_overloaded():
    finite = _channel_panel("Estimated wait by queue")["targets"][0]["expr"]
    assert finite.endswith(" != +Inf")  # drops +Inf; NaN stays (a gap)
    overloaded = _channel_panel("Overloaded queues")
    (target,) = overloaded["targets"]
    assert target["expr"].endswith("== bool +Inf)")
    defaults = overloaded["fieldConfig"]["defaults"]
    assert _grafana_display(defaults, 1) == ("overloaded", "red")
    assert _grafana_display(defaults, 0) == ("ok", "green")
    nps = _channel_panel("NPS")
    assert nps["targets"][0]["expr"].startswith("100 * support_nps_score{")
    assert "100" in nps["description"]


def test_every_dashboard_refreshes_no_faster_than_the_scrape():
    for model in MODELS.values():
        assert _seconds(model["refresh"]) >= SCRAPE_INTERVAL_SECONDS


def test_zero_fallbacks_do_not_duplicate_series():
    # `x or vector(0)` adds a label-less 0 next to every labelled series of x; `or on()` does not.
    for model in MODELS.values():
        for expr in panel_queries(model):
            assert not re.search(r"\bor\s+vector\(", expr), expr


def test_detector_signal_panel_repeats_per_detector():
    board = MODELS["support-detectors.json"]
    repeated = [panel for panel in _panels(board) if panel.get("repeat") == "detector"]
    assert len(repeated) == 1
    exprs = " ".join(target["expr"] for target in repeated[0]["targets"])
    for metric in (
        "support_detector_score",
        "support_detector_expected",
        "support_detector_threshold",
    ):
        assert metric in exprs
    assert any(panel["type"] == "state-timeline" for panel in _panels(board))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_round_trip_through_the_sdk_schema(name):
    # The SDK's typed models (generated from Grafana 11.6's schema) read the JSON back unchanged:
    # no unknown or misplaced keys, no panel options the schema would default differently.
    # Two documented exceptions: the SDK does not model the Prometheus annotation formats
    # (Grafana's AnnotationQuery is open to them) and writes interval-only keys on every
    # variable (Grafana's VariableModel has none); dashboards.common.to_model handles both.
    register_default_plugins()
    model = MODELS[name]
    again = json.loads(json.dumps(Dashboard.from_json(model), cls=JSONEncoder))
    for annotation in again["annotations"]["list"]:
        annotation.update(ALERT_ANNOTATION_FORMAT)
    for variable in again["templating"]["list"]:
        for key in INTERVAL_ONLY_KEYS:
            variable.pop(key, None)
    assert again == model


def _variable(model: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in model["templating"]["list"] if v["name"] == name)


@pytest.mark.parametrize("name", ["support-wallboard.json", "support-channel.json"])
def test_window_lists_windows_every_deployment_exports(name):
    # support_service_level_ratio exists only for live channels: a tickets-only deployment
    # (only email) had no window to pick. CSAT and complaints are windowed for every channel.
    query = _variable(MODELS[name], "window")["query"]
    match = re.fullmatch(r'label_values\(\{__name__=~"([^"]+)"\}, *window\)', query)
    assert match, query
    families = set(match.group(1).split("|"))
    assert {"support_csat_ratio", "support_complaints_window"} <= families
    assert _variable(MODELS[name], "window")["current"]["value"] == "5m"


def test_alerts_firing_tile_sums_the_alerts_of_each_series():
    # one support_alerts series can hold several alerts (its value is their number)
    tile = next(
        p for p in _panels(MODELS["support-wallboard.json"]) if p["title"] == "Alerts firing"
    )
    (target,) = tile["targets"]
    assert target["expr"].startswith("sum by (channel) (support_alerts{"), target["expr"]
    assert "count" not in target["expr"]


def test_wall_board_tiles_open_the_drill_down_in_the_boards_window():
    for _, panels in _wall_board_sections(MODELS["support-wallboard.json"]):
        for panel in panels:
            (link,) = panel["fieldConfig"]["defaults"]["links"]
            assert "&var-window=${window}&" in link["url"], panel["title"]


def test_counter_panels_use_the_window_as_a_range():
    # `increase(...[$window])` broke on `today` and on windows written in seconds (`300`)
    model = MODELS["support-channel.json"]
    variable = _variable(model, "window_range")
    assert "$window" in variable["query"]
    assert "$__range" in variable["query"]  # today: the dashboard's range
    assert variable["current"]["value"] == "5m"
    assert variable["refresh"] == 2  # on time range change: $__range follows the picker
    for title in ("Service level: gauge vs counters", "Service level by queue (counters)"):
        exprs = [t["expr"] for t in _channel_panel(title)["targets"]]
        counters = [e for e in exprs if "increase(" in e]
        assert counters, title
        for expr in counters:
            assert "[$window]" not in expr
            assert "[$window_range]" in expr
