"""The generated Grafana dashboards: in sync, structurally valid, and querying only real metrics.

Everything is checked on the JSON models, without a Grafana server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.build import (
    annotation_queries,
    build_all,
    panel_queries,
    render,
    write_all,
)
from dashboards.build import iter_panels as build_iter_panels
from dashboards.common import ALERT_ANNOTATION_FORMAT, INTERVAL_ONLY_KEYS

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


def test_generated_files_are_in_sync_with_the_code():
    on_disk = {path.name for path in GENERATED.glob("*.json")}
    assert on_disk == set(MODELS), "run: python -m dashboards.build --out deploy/grafana/dashboards"
    for name, model in MODELS.items():
        assert (GENERATED / name).read_text(encoding="utf-8") == render(model), (
            f"{name} is stale; run: python -m dashboards.build --out deploy/grafana/dashboards"
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
        assert re.fullmatch(r"label_values\((.+), *\w+\)", variable["query"]), variable["query"]
        assert variable["current"]["value"]
        if variable.get("includeAll"):
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
    assert len(rows) == 1
    assert rows[0]["repeat"] == "channel"
    assert rows[0]["collapsed"] is False
    stats = _panels(board)
    assert len(stats) >= 7
    for panel in stats:
        assert panel["type"] == "stat"
        assert panel["title"]
        assert panel["options"]["colorMode"] == "background"
        assert panel["options"]["graphMode"] == "none"
        assert panel["options"]["textMode"] == "value"
        assert panel["gridPos"]["h"] >= 6
        for target in panel["targets"]:
            assert target["instant"] is True
            assert 'channel=~"$channel"' in target["expr"]
    service_level = next(p for p in stats if p["title"] == "Service level")
    assert service_level["fieldConfig"]["defaults"]["unit"] == "percentunit"


def _grafana_colour(defaults, min_from_data, max_from_data, value):
    """An independent model of how Grafana colours a stat value: field config from the
    "Config from query results" transformation replaces the panel default it sets; a percentage
    threshold step p applies from min + p% of (max - min) on; the last step reached wins."""
    low = defaults["min"] if min_from_data is None else min_from_data
    high = defaults["max"] if max_from_data is None else max_from_data
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
