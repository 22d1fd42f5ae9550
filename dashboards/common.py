"""Shared pieces of the dashboards: datasource, queries, panels, variables, serialisation.

Every dashboard has a `datasource` variable (type `prometheus`, default uid `prometheus`, the
provisioned datasource of deploy/grafana), and every panel, target, query variable and annotation
names the datasource as `${datasource}`, so a dashboard works with any Prometheus datasource the
viewer picks.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, TypeVar, cast

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.builders import prometheus, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models import dashboard as dashboard_models
from grafana_foundation_sdk.models import prometheus as prometheus_models

if TYPE_CHECKING:
    from collections.abc import Sequence

    from grafana_foundation_sdk.cog.builder import Builder

DATASOURCE_VARIABLE = "datasource"
DATASOURCE_UID = "${datasource}"
DATASOURCE_TYPE = "prometheus"
DEFAULT_DATASOURCE_UID = "prometheus"  # deploy/grafana/provisioning/datasources/prometheus.yml
DEFAULT_DATASOURCE_NAME = "Prometheus"
ALERT_ANNOTATION_FORMAT = {
    "titleFormat": "{{alertname}}",
    "textFormat": "{{alertname}} ({{severity}}) {{channel}}",
    "tagKeys": "alertname,severity,channel",
}
"""Prometheus annotation options the SDK does not model (Grafana's AnnotationQuery is open to
datasource-specific keys); `to_model` adds them to every annotation that has an `expr`."""
TAGS = ["support-monitor"]
GRID_WIDTH = 24

# The colours Grafana's own palette names; thresholds read "from this value on, this colour".
GREEN = "green"
ORANGE = "orange"
RED = "red"
BLUE = "blue"
PURPLE = "purple"
YELLOW = "yellow"
TEXT = "text"


def datasource() -> dashboard_models.DataSourceRef:
    return dashboard_models.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


INTERVAL_ONLY_KEYS = ("auto", "auto_count", "auto_min")
"""The SDK writes these interval-variable keys on every variable; Grafana's published
VariableModel has none of them, so `to_model` drops them from the other variable types."""


def datasource_variable() -> dashboard_builders.DatasourceVariable:
    """`$datasource`: any Prometheus datasource; the provisioned one by default."""
    return (
        dashboard_builders.DatasourceVariable(DATASOURCE_VARIABLE)
        .label("Data source")
        .type(DATASOURCE_TYPE)
        .current(
            dashboard_models.VariableOption(
                selected=True, text=DEFAULT_DATASOURCE_NAME, value=DEFAULT_DATASOURCE_UID
            )
        )
    )


def alert_annotation(name: str, expr: str) -> dashboard_builders.AnnotationQuery:
    """Marks on every time series panel while `expr` (firing alerts) has a series."""
    return (
        dashboard_builders.AnnotationQuery()
        .name(name)
        .datasource(datasource())
        .enable(enable=True)
        .hide(hide=False)
        .icon_color(RED)
        .expr(expr)
    )


def query(
    expr: str,
    legend: str = "__auto",
    ref_id: str = "A",
    *,
    instant: bool = False,
    table: bool = False,
) -> prometheus.Dataquery:
    """One PromQL target, bound to the Prometheus datasource, in code editor mode."""
    target = (
        prometheus.Dataquery()
        .expr(expr)
        .ref_id(ref_id)
        .datasource(datasource())
        .legend_format(legend)
        .editor_mode(prometheus_models.QueryEditorMode.CODE)
    )
    target = target.instant() if instant else target.range()
    if table:
        target = target.format(prometheus_models.PromQueryFormat.TABLE)
    return target


def ref_id(index: int) -> str:
    """A, B, C ... for the targets of one panel."""
    return chr(ord("A") + index)


class PanelIds:
    """Hands out panel ids in build order, so ids are unique and stable for a given layout."""

    def __init__(self) -> None:
        self._next = 0

    def __call__(self) -> int:
        self._next += 1
        return self._next


def thresholds(
    base: str,
    *steps: tuple[float, str],
    mode: dashboard_models.ThresholdsMode = dashboard_models.ThresholdsMode.ABSOLUTE,
) -> dashboard_builders.ThresholdsConfig:
    """Thresholds: `base` colour below the first step, then each (value, colour). In
    percentage mode a step is a percentage of the field's min..max range."""
    values = [value for value, _ in steps]
    if values != sorted(values):
        raise ValueError(f"threshold steps must ascend: {values}")
    return (
        dashboard_builders.ThresholdsConfig()
        .mode(mode)
        .steps(
            [dashboard_models.Threshold(value=None, color=base)]
            + [dashboard_models.Threshold(value=value, color=color) for value, color in steps]
        )
    )


def percent_thresholds(base: str, *steps: tuple[float, str]) -> dashboard_builders.ThresholdsConfig:
    """Percentage thresholds: a step at p colours values from min + p% of (max - min) on."""
    return thresholds(base, *steps, mode=dashboard_models.ThresholdsMode.PERCENTAGE)


def config_from_query(
    ref_id: str, field: str, handler: str
) -> dashboard_models.DataTransformerConfig:
    """Grafana's "Config from query results": the last value of query `ref_id` (its field named
    `field`, i.e. its legend) becomes the `handler` option (e.g. `min`, `max`) of the other
    queries' numeric fields; that query is not displayed. Without data from it, the panel's
    own option stays in force."""
    return dashboard_models.DataTransformerConfig(
        id_val="configFromData",
        options={
            "configRefId": ref_id,
            "mappings": [{"fieldName": field, "handlerKey": handler, "reducerId": "lastNotNull"}],
        },
    )


def fixed_colour(colour: str) -> dashboard_models.DynamicConfigValue:
    """A field override property: draw the matched series in one named colour."""
    return dashboard_models.DynamicConfigValue(
        id_val="color", value={"mode": "fixed", "fixedColor": colour}
    )


def dashed() -> dashboard_models.DynamicConfigValue:
    """A field override property: draw the matched series as a dashed line (targets, limits)."""
    return dashboard_models.DynamicConfigValue(
        id_val="custom.lineStyle", value={"fill": "dash", "dash": [10, 10]}
    )


def nan_as(text: str) -> dashboard_models.SpecialValueMap:
    """Show a ratio's NaN (no traffic in the window) as text instead of a colour-coded 0."""
    return dashboard_models.SpecialValueMap(
        options=dashboard_models.DashboardSpecialValueMapOptions(
            match=dashboard_models.SpecialValueMatch.NULL_AND_NAN,
            result=dashboard_models.ValueMappingResult(text=text, color=TEXT),
        )
    )


def value_texts(texts: dict[str, tuple[str, str]]) -> dashboard_models.ValueMap:
    """Map raw values to (text, colour), e.g. 0/1 of an up gauge."""
    return dashboard_models.ValueMap(
        options={
            value: dashboard_models.ValueMappingResult(text=text, color=color, index=index)
            for index, (value, (text, color)) in enumerate(texts.items())
        }
    )


def stat_panel(
    panel_id: int,
    title: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str,
    steps: dashboard_builders.ThresholdsConfig,
    width: int,
    height: int,
    description: str = "",
    decimals: int | None = 0,
    mappings: Sequence[dashboard_models.ValueMapping] = (),
    text_mode: common.BigValueTextMode = common.BigValueTextMode.AUTO,
    title_size: float | None = None,
    no_value: str = "0",
    min_value: float | None = None,
    max_value: float | None = None,
    transformations: Sequence[dashboard_models.DataTransformerConfig] = (),
    time_from: str | None = None,
) -> stat.Panel:
    """A stat tile: last value, background coloured by the thresholds, no sparkline clutter.

    `time_from` gives the panel its own relative time range (e.g. `now/d`, today so far), which
    sets `$__range` for its queries."""
    text = common_builders.VizTextDisplayOptions()
    if title_size is not None:
        text = text.title_size(title_size)
    panel = (
        stat.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .unit(unit)
        .thresholds(steps)
        .color_scheme(
            dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.THRESHOLDS)
        )
        .color_mode(common.BigValueColorMode.BACKGROUND)
        .graph_mode(common.BigValueGraphMode.NONE)
        .text_mode(text_mode)
        .justify_mode(common.BigValueJustifyMode.CENTER)
        .orientation(common.VizOrientation.AUTO)
        .reduce_options(
            common_builders.ReduceDataOptions().calcs(["lastNotNull"]).values(values=False)
        )
        .text(text)
        .no_value(no_value)
        .span(width)
        .height(height)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        panel = panel.mappings(list(mappings))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    for transformation in transformations:
        panel = panel.with_transformation(transformation)
    if time_from is not None:
        panel = panel.time_from(time_from)
    return panel


def timeseries_panel(
    panel_id: int,
    title: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    unit: str,
    width: int = 12,
    height: int = 8,
    description: str = "",
    steps: dashboard_builders.ThresholdsConfig | None = None,
    stacked: bool = False,
    bars: bool = False,
    min_value: float | None = 0,
    max_value: float | None = None,
) -> timeseries.Panel:
    """A time series panel with a table legend showing last and max, for drill-downs."""
    panel = (
        timeseries.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .unit(unit)
        .thresholds(steps if steps is not None else thresholds(GREEN))
        .color_scheme(
            dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.PALETTE_CLASSIC)
        )
        .line_width(2)
        .fill_opacity(30 if stacked or bars else 10)
        .show_points(common.VisibilityMode.NEVER)
        .span_nulls(span_nulls=False)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common.LegendDisplayMode.TABLE)
            .placement(common.LegendPlacement.BOTTOM)
            .show_legend(show_legend=True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builders.VizTooltipOptions()
            .mode(common.TooltipDisplayMode.MULTI)
            .sort(common.SortOrder.DESCENDING)
        )
        .span(width)
        .height(height)
    )
    if bars:
        panel = panel.draw_style(common.GraphDrawStyle.BARS)
    if stacked:
        panel = panel.stacking(common_builders.StackingConfig().mode(common.StackingMode.NORMAL))
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return panel


def table_panel(
    panel_id: int,
    title: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    width: int,
    height: int,
    description: str = "",
    hide: Sequence[str] = ("Time", "__name__", "instance", "job"),
    rename: dict[str, str] | None = None,
) -> table.Panel:
    """A table of instant queries, merged into one frame, bookkeeping columns hidden."""
    return (
        table.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .unit("short")
        .thresholds(thresholds(GREEN))
        .align(common.FieldTextAlignment.AUTO)
        .cell_options(common.TableAutoCellOptions())
        .inspect(inspect=False)
        .with_transformation(dashboard_models.DataTransformerConfig(id_val="merge", options={}))
        .with_transformation(
            dashboard_models.DataTransformerConfig(
                id_val="organize",
                options={
                    "excludeByName": dict.fromkeys(hide, True),
                    "renameByName": rename or {},
                },
            )
        )
        .span(width)
        .height(height)
    )


def state_timeline_panel(
    panel_id: int,
    title: str,
    targets: Sequence[prometheus.Dataquery],
    *,
    mappings: Sequence[dashboard_models.ValueMapping],
    steps: dashboard_builders.ThresholdsConfig,
    width: int,
    height: int,
    description: str = "",
) -> statetimeline.Panel:
    """States over time (alert pending/firing, source up/down) as coloured bands."""
    return (
        statetimeline.Panel()
        .id(panel_id)
        .title(title)
        .description(description)
        .datasource(datasource())
        .targets(list(targets))
        .unit("short")
        .mappings(list(mappings))
        .thresholds(steps)
        .color_scheme(
            dashboard_builders.FieldColor().mode(dashboard_models.FieldColorModeId.THRESHOLDS)
        )
        .show_value(common.VisibilityMode.NEVER)
        .merge_values(merge_values=True)
        .row_height(0.8)
        .fill_opacity(80)
        .legend(common_builders.VizLegendOptions().show_legend(show_legend=False))
        .span(width)
        .height(height)
    )


def row(panel_id: int, title: str, *, repeat: str | None = None) -> dashboard_builders.Row:
    """An expanded row; its panels follow it at the top level (Grafana strips nested ones)."""
    built = dashboard_builders.Row(title).id(panel_id).collapsed(collapsed=False)
    if repeat is not None:
        built = built.repeat(repeat)
    return built


def query_variable(
    name: str,
    label: str,
    definition: str,
    *,
    multi: bool,
    include_all: bool,
    default: str | None = None,
    hide: bool = False,
    regex: str | None = None,
) -> dashboard_builders.QueryVariable:
    """A Prometheus label_values() variable; multi-value ones default to All, matched as `.*`.

    A hidden one (`hide`) has no picker: it follows the variables its query names, and its All
    is the list of its own values (no `.*`), so with no values it matches nothing rather than
    every channel. `regex` is Grafana's variable regex: its first capture group of each result
    line is the value (e.g. for a `query_result(...)` variable)."""
    variable = (
        dashboard_builders.QueryVariable(name)
        .label(label)
        .datasource(datasource())
        .query(definition)
        .refresh(dashboard_models.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_models.VariableSort.NATURAL_ASC)
        .multi(multi=multi)
        .include_all(include_all=include_all)
    )
    if hide:
        variable = variable.hide(dashboard_models.VariableHide.HIDE_VARIABLE)
    if regex is not None:
        variable = variable.regex(regex)
    if include_all:
        if not hide:
            variable = variable.all_value(".*")
        variable = variable.current(
            dashboard_models.VariableOption(selected=True, text=["All"], value=["$__all"])
        )
    elif default is not None:
        variable = variable.current(
            dashboard_models.VariableOption(selected=True, text=default, value=default)
        )
    return variable


WINDOW_FAMILIES = "support_service_level_ratio|support_csat_ratio|support_complaints_window"
"""Windowed families the `window` variable lists the windows of: every deployment exports
`support_csat_ratio` and `support_complaints_window` for every channel (a tickets-only one has
no `support_service_level_ratio`, which exists only for live channels)."""
WINDOW_VALUES = f'label_values({{__name__=~"{WINDOW_FAMILIES}"}}, window)'
DEFAULT_WINDOW = "5m"


def window_variable() -> dashboard_builders.QueryVariable:
    """`$window`: one of the daemon's configured windows (`5m` by default)."""
    return query_variable(
        "window", "Window", WINDOW_VALUES, multi=False, include_all=False, default=DEFAULT_WINDOW
    )


def dashboard(uid: str, title: str, description: str) -> dashboard_builders.Dashboard:
    """Common dashboard settings: tags, UTC-free browser time, links to the sibling dashboards."""
    return (
        dashboard_builders.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone("browser")
        .tooltip(dashboard_models.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
        .link(
            dashboard_builders.DashboardLink("Support monitor")
            .type(dashboard_models.DashboardLinkType.DASHBOARDS)
            .tags(TAGS)
            .as_dropdown(as_dropdown=True)
            .include_vars(include_vars=True)
            .keep_time(keep_time=True)
        )
    )


T = TypeVar("T")


def to_model(builder: Builder[T]) -> dict[str, object]:
    """The dashboard JSON model exactly as Grafana consumes it (SDK encoder, then plain JSON),
    with the Prometheus annotation formats the SDK does not model."""
    model = cast("dict[str, object]", json.loads(json.dumps(builder.build(), cls=JSONEncoder)))
    annotations = cast("dict[str, list[dict[str, object]]]", model.get("annotations") or {})
    for annotation in annotations.get("list", []):
        if "expr" in annotation:
            annotation.update(ALERT_ANNOTATION_FORMAT)
    templating = cast("dict[str, list[dict[str, object]]]", model.get("templating") or {})
    for variable in templating.get("list", []):
        if variable.get("type") != "interval":
            for key in INTERVAL_ONLY_KEYS:
                variable.pop(key, None)
    return model


def override_value(option: str, value: object) -> dashboard_models.DynamicConfigValue:
    """A field override property: field option `option` (e.g. `thresholds`) set to `value`."""
    return dashboard_models.DynamicConfigValue(id_val=option, value=value)
