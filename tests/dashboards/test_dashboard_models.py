"""The generated Grafana dashboards: in sync, structurally valid, and querying only real metrics.

Everything is checked on the JSON models, without a Grafana server.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.cog.plugins import register_default_plugins
from grafana_foundation_sdk.models.dashboard import Dashboard

from dashboards.build import build_all, iter_panels, panel_queries, render, write_all

ROOT = Path(__file__).resolve().parents[2]
GENERATED = ROOT / "deploy" / "grafana" / "dashboards"
UIDS = {"support-wallboard", "support-channel", "support-detectors", "support-daemon"}
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}
SCRAPE_INTERVAL_SECONDS = 5

MODELS = build_all()


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
def test_template_variables_are_valid(name):
    model = MODELS[name]
    variables = model["templating"].get("list", [])
    names = [variable["name"] for variable in variables]
    assert len(names) == len(set(names))
    for variable in variables:
        assert re.fullmatch(r"[a-z_]+", variable["name"])
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
        assert panel["options"]["colorMode"] == "background"
        assert panel["options"]["graphMode"] == "none"
        assert panel["options"]["text"]["titleSize"] >= 20
        assert panel["gridPos"]["h"] >= 6
        for target in panel["targets"]:
            assert target["instant"] is True
            assert 'channel=~"$channel"' in target["expr"]
    service_level = next(p for p in stats if "service_level" in p["targets"][0]["expr"])
    assert service_level["fieldConfig"]["defaults"]["unit"] == "percentunit"
    steps = service_level["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [(s["value"], s["color"]) for s in steps] == [(None, "red"), (0.8, "green")]


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
    register_default_plugins()
    model = MODELS[name]
    assert json.loads(json.dumps(Dashboard.from_json(model), cls=JSONEncoder)) == model
