"""The generated dashboards against Grafana's own published schema, not the builder that wrote them.

Grafana publishes its dashboard and panel schemas as TypeScript types in the npm package
`@grafana/schema` (pinned with the compiler in deploy/grafana/schema-check/package.json, at the
Grafana release the SDK is pinned to). For each dashboard this test writes a TypeScript module that
assigns the JSON, as object literals, to those types: the dashboard to `Dashboard`, each panel's
`options` to its plugin's `Options` and `fieldConfig.defaults.custom` to its `FieldConfig`.
`tsc --strict --noEmit` then rejects a missing required key, a wrong type or enum value, and (object
literals are checked for excess properties) a key the schema does not have. Annotations are the
exception Grafana's schema makes itself: AnnotationQuery is open to datasource-specific keys
(`expr`, `titleFormat` ...), so only its declared keys are checked.

The packages are installed once with `npm ci` into the run dir (deploy/local's
`${SUPPORT_MONITOR_RUN:-/tmp/support-monitor-run}/grafana-schema-check`).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from support_monitor.dashboards.build import build_all
from tests.conftest_services import unavailable

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "deploy" / "grafana" / "schema-check"
RUN_DIR = Path(os.environ.get("SUPPORT_MONITOR_RUN", "/tmp/support-monitor-run"))
SCHEMA = "@grafana/schema/dist/esm/raw"
# panel type -> (module under raw/composable, has a FieldConfig type for fieldConfig.custom)
PANEL_TYPES = {
    "stat": ("stat/panelcfg/x/StatPanelCfg_types.gen", False),
    "timeseries": ("timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", True),
    "table": ("table/panelcfg/x/TablePanelCfg_types.gen", True),
    "state-timeline": ("statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen", True),
}
MODELS: dict[str, dict[str, Any]] = build_all()


@pytest.fixture(scope="module")
def schema_dir() -> Path:
    """A directory with node_modules/@grafana/schema and typescript at the pinned versions."""
    npm = shutil.which("npm")
    node = shutil.which("node")
    if npm is None or node is None:
        unavailable("node/npm not found (Debian packages nodejs, npm)")
    target = RUN_DIR / "grafana-schema-check"
    lock = (PACKAGE / "package-lock.json").read_text(encoding="utf-8")
    stamp = target / "installed-lock.json"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != lock:
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PACKAGE / name, target / name)
        result = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            unavailable(f"npm ci of {PACKAGE} failed: {result.stderr[-2000:]}")
        stamp.write_text(lock, encoding="utf-8")
    return target


def _literal(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)


def typescript_module(model: dict[str, Any]) -> str:
    """A module that type-checks only if `model` fits Grafana's schema."""
    lines = [
        (
            f'import type {{ AnnotationQuery, Dashboard }} from "{SCHEMA}/dashboard/x/'
            'dashboard_types.gen";'
        ),
    ]
    for alias, (module, _) in PANEL_TYPES.items():
        name = alias.replace("-", "_")
        lines.append(f'import type * as {name} from "{SCHEMA}/composable/{module}";')
    lines.extend(
        [
            "// JSON holds an enum's value: a string enum member is read as its string value.",
            "type Json<T> = T extends string",
            "  ? `${T}`",
            "  : T extends ReadonlyArray<infer U>",
            "    ? Array<Json<U>>",
            "    : T extends object",
            "      ? { [K in keyof T]: Json<T[K]> }",
            "      : T;",
            "// AnnotationQuery is open to datasource-specific keys: check the declared ones.",
            "function annotation<T extends Json<AnnotationQuery>>(a: T): Json<AnnotationQuery> {",
            "  return a;",
            "}",
        ]
    )
    annotations = model.get("annotations", {}).get("list", [])
    body = {key: value for key, value in model.items() if key != "annotations"}
    wrapped = ",\n".join(f"annotation({_literal(a)})" for a in annotations)
    text = _literal(body)
    lines.append(
        "export const dashboard: Json<Dashboard> = "
        + text[:-1].rstrip()
        + f',\n "annotations": {{"list": [{wrapped}]}}\n}};'
    )
    for index, panel in enumerate(model.get("panels", [])):
        kind = panel["type"]
        if kind == "row":
            continue
        module, has_field_config = PANEL_TYPES[kind]
        name = kind.replace("-", "_")
        options = panel.get("options")
        if options is not None:
            lines.append(
                f"export const options{index}: Json<{name}.Options> = {_literal(options)};"
            )
        custom = panel["fieldConfig"]["defaults"].get("custom")
        if has_field_config and custom is not None:
            lines.append(
                f"export const custom{index}: Json<{name}.FieldConfig> = {_literal(custom)};"
            )
    return "\n".join(lines) + "\n"


def _tsc_errors(schema_dir: Path, modules: dict[str, str]) -> dict[str, list[str]]:
    """Write each module, type-check them all in one compiler run, and return each file's
    error lines (empty: it fits the schema)."""
    for file_name, text in modules.items():
        (schema_dir / file_name).write_text(text, encoding="utf-8")
    tsc = schema_dir / "node_modules" / "typescript" / "bin" / "tsc"
    # node10 resolution reads the package's .d.ts files by path (its exports map gives no
    # types for sub-paths under nodenext)
    result = subprocess.run(
        [
            "node",
            str(tsc),
            "--strict",
            "--noEmit",
            "--pretty",
            "false",
            "--target",
            "es2022",
            "--module",
            "commonjs",
            "--moduleResolution",
            "node10",
            *modules,
        ],
        cwd=schema_dir,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    errors: dict[str, list[str]] = {file_name: [] for file_name in modules}
    for line in result.stdout.splitlines():
        file_name = line.split("(", 1)[0]
        if file_name in errors:
            errors[file_name].append(line)
        elif line.strip() and not line.startswith(" "):
            raise AssertionError(f"tsc: {line}\n{result.stderr}")
    assert (result.returncode == 0) == (not any(errors.values())), result.stdout + result.stderr
    return errors


def test_every_panel_type_is_covered() -> None:
    types = {p["type"] for m in MODELS.values() for p in m["panels"] if p["type"] != "row"}
    assert types <= set(PANEL_TYPES), types - set(PANEL_TYPES)


def test_dashboards_fit_grafanas_published_schema(schema_dir: Path) -> None:
    modules = {
        f"check-{name.removesuffix('.json')}.ts": typescript_module(model)
        for name, model in MODELS.items()
    }
    errors = _tsc_errors(schema_dir, modules)
    assert not any(errors.values()), "\n".join(e for lines in errors.values() for e in lines)


def test_the_check_rejects_what_the_schema_rejects(schema_dir: Path) -> None:
    # the same check on broken copies: an unknown field-config key, a bad enum value, a missing
    # required dashboard key, a wrongly typed annotation key, a key the table's FieldConfig lacks
    model = MODELS["support-wallboard.json"]
    stat_index = next(i for i, p in enumerate(model["panels"]) if p["type"] == "stat")
    broken: list[dict[str, Any]] = [json.loads(json.dumps(model)) for _ in range(4)]
    broken[0]["panels"][stat_index]["fieldConfig"]["defaults"]["colour"] = "red"
    broken[1]["panels"][stat_index]["options"]["colorMode"] = "rainbow"
    del broken[2]["schemaVersion"]
    broken[3]["annotations"]["list"][0]["enable"] = "yes"
    daemon = json.loads(json.dumps(MODELS["support-daemon.json"]))
    table = next(p for p in daemon["panels"] if p["type"] == "table")
    table["fieldConfig"]["defaults"]["custom"]["cellWidth"] = 3
    broken.append(daemon)
    modules = {f"broken-{i}.ts": typescript_module(bad) for i, bad in enumerate(broken)}
    errors = _tsc_errors(schema_dir, modules)
    passed = [file_name for file_name, lines in errors.items() if not lines]
    assert not passed, f"broken copies passed the schema check: {passed}"
