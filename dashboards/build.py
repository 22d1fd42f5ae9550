"""Build the dashboards' JSON models, write them, and list their PromQL for end-to-end checks.

`support-monitor dashboards build --out DIR` calls `write_all`; `python -m
support_monitor.dashboards.build --out deploy/grafana/dashboards` does the same without the
daemon's CLI.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, cast

from support_monitor.dashboards import channel, common, daemon, detectors, wallboard

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from grafana_foundation_sdk.builders.dashboard import Dashboard

DEFAULT_OUT = Path("deploy/grafana/dashboards")

BUILDERS: dict[str, Callable[[], Dashboard]] = {
    f"{wallboard.UID}.json": wallboard.build,
    f"{channel.UID}.json": channel.build,
    f"{detectors.UID}.json": detectors.build,
    f"{daemon.UID}.json": daemon.build,
}

# Grafana's own interval variables, given the values a 5 s scrape and the default 1 h range get.
BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
}
ALL_VALUE = ".*"
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_]\w*)(?::\w+)?\}|([A-Za-z_]\w*))")
"""A template variable reference; `$1` and `${1}` are regex group references (label_replace's
replacement), which Grafana leaves alone as no variable has that name."""


def build_all() -> dict[str, dict[str, object]]:
    """File name -> dashboard JSON model, exactly as Grafana consumes it."""
    return {name: common.to_model(build()) for name, build in BUILDERS.items()}


def render(model: dict[str, object]) -> str:
    """The file content: sorted keys, 2-space indent, trailing newline (stable diffs)."""
    return json.dumps(model, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_all(out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in build_all().items():
        path = out_dir / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written


def iter_panels(model: dict[str, object]) -> Iterator[dict[str, object]]:
    """Every panel, rows included, and the panels nested inside collapsed rows."""
    for panel in cast("list[dict[str, object]]", model.get("panels", [])):
        yield panel
        yield from cast("list[dict[str, object]]", panel.get("panels", []))


def variable_values(model: dict[str, object]) -> dict[str, str]:
    """A concrete value per template variable: `.*` for multi/All ones, else the default."""
    values = dict(BUILTIN_VARIABLES)
    templating = cast("dict[str, object]", model.get("templating", {}))
    for variable in cast("list[dict[str, object]]", templating.get("list", [])):
        name = cast("str", variable["name"])
        if variable.get("multi") or variable.get("includeAll"):
            values[name] = ALL_VALUE
            continue
        current = cast("dict[str, object]", variable.get("current") or {})
        value = current.get("value")
        if isinstance(value, list):
            value = value[0] if value else None
        if not isinstance(value, str) or not value:
            raise ValueError(f"variable {name!r} has no default value to substitute")
        values[name] = value
    return values


def substitute(expr: str, values: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise KeyError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def panel_queries(model: dict[str, object]) -> list[str]:
    """Every panel target's PromQL with template variables replaced by concrete values."""
    values = variable_values(model)
    queries = []
    for panel in iter_panels(model):
        for target in cast("list[dict[str, object]]", panel.get("targets", [])):
            expr = target.get("expr")
            if isinstance(expr, str) and expr:
                queries.append(substitute(expr, values))
    return queries


def annotation_queries(model: dict[str, object]) -> list[str]:
    """Every Prometheus annotation's PromQL, template variables replaced as in panel_queries."""
    values = variable_values(model)
    annotations = cast("dict[str, object]", model.get("annotations") or {})
    return [
        substitute(cast("str", annotation["expr"]), values)
        for annotation in cast("list[dict[str, object]]", annotations.get("list", []))
        if annotation.get("expr")
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the Grafana dashboards as JSON.")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    args = parser.parse_args(argv)
    for path in write_all(args.out):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
