"""Every metric and label the dashboards query exists in the metric contract (metrics.md).

The contract is the metric catalogue (``monitor/catalogue.py``), which a test checks against
docs/metrics.md and the exposition. Selectors may only use a family's own labels (and Prometheus'
`instance`/`job`), so a dashboard cannot silently filter on a label the exporter never sets.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from support_monitor.dashboards.build import annotation_queries, build_all, panel_queries
from support_monitor.monitor.catalogue import FAMILIES

DAEMON_EXTRA_ANY = "*"  # build_info carries free-form version labels

# family name -> (kind, labels); kind decides the suffixes a query may use. The one catalogue
# (monitor/catalogue.py; tests/monitor/test_catalogue.py checks it against docs/metrics.md and
# the exposition). A summary is queried as its quantile gauge samples.
CONTRACT: dict[str, tuple[str, set[str] | str]] = {
    f.base: (
        "gauge" if f.type == "summary" else f.type,
        DAEMON_EXTRA_ANY if f.name == "support_monitor_build_info" else set(f.labels),
    )
    for f in FAMILIES
}
# label values the contract fixes; a selector matching one of these labels exactly must use one
LABEL_VALUES = {
    "sla": {"answer", "first_response", "resolution", "next_reply"},
    "state": {"available", "busy", "after_call_work", "break", "offline"},
    "priority": {"urgent", "high", "normal", "low"},
    "survey": {"csat", "nps", "ces"},
    "outcome": {"contained", "escalated", "abandoned"},
    "polarity": {"negative", "neutral", "positive"},
    "alertstate": {"pending", "firing"},
}
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
TARGET_LABELS = {"instance", "job"}


def _series_names() -> dict[str, str]:
    """Exposed series name -> family."""
    names = {}
    for family, (kind, _) in CONTRACT.items():
        for suffix in SUFFIXES[kind]:
            names[family + suffix] = family
    return names


SERIES = _series_names()
MODELS: dict[str, dict[str, Any]] = build_all()
QUERIES = [(name, expr) for name, model in MODELS.items() for expr in panel_queries(model)]
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"')
_METRIC = re.compile(r"\b(support_[a-z0-9_]+)\b")
_SELECTOR = re.compile(r"\b(support_[a-z0-9_]+)\{([^}]*)\}")
_MATCHER = re.compile(r'\s*([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"(?:[^"\\]|\\.)*"\s*')
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")


def _metrics(expr: str) -> set[str]:
    return set(_METRIC.findall(_STRINGS.sub('""', expr)))


def test_contract_suffixes_are_unambiguous():
    # e.g. a counter family must not collide with a gauge family plus suffix
    assert len(SERIES) == sum(len(SUFFIXES[kind]) for kind, _ in CONTRACT.values())


def test_there_are_queries_to_check():
    assert len(QUERIES) > 40
    used = {metric for _, expr in QUERIES for metric in _metrics(expr)}
    # the dashboards cover most of the product's families (the daemon's own health aside)
    product = {f.base for f in FAMILIES if f.group not in {"daemon", "http", "cluster"}}
    assert len(product & {SERIES[m] for m in used if m in SERIES}) >= len(product) - 2


@pytest.mark.parametrize(("name", "expr"), QUERIES)
def test_query_uses_only_known_metric_names(name, expr):
    metrics = _metrics(expr)
    assert metrics, f"{name}: no support_ metric in {expr!r}"
    unknown = metrics - set(SERIES)
    assert not unknown, f"{name}: unknown metric(s) {unknown} in {expr!r}"


@pytest.mark.parametrize(("name", "expr"), QUERIES)
def test_selectors_and_groupings_use_known_labels(name, expr):
    families = {SERIES[m] for m in _metrics(expr)}
    allowed: set[str] = set(TARGET_LABELS)
    for family in families:
        labels = CONTRACT[family][1]
        if labels == DAEMON_EXTRA_ANY:
            return
        assert isinstance(labels, set)
        allowed |= labels
        if CONTRACT[family][0] == "histogram":
            allowed.add("le")
    for metric, body in _SELECTOR.findall(expr):
        labels = CONTRACT[SERIES[metric]][1]
        assert isinstance(labels, set)
        for matcher in _MATCHER.findall(body):
            assert matcher[0] in labels | TARGET_LABELS, f"{name}: {metric} has no {matcher[0]}"
    for group in _GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in group.split(","))):
            assert label in allowed, f"{name}: grouping label {label!r} unknown in {expr!r}"


_VALUE_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|=)\s*"((?:[^"\\]|\\.)*)"')


def test_label_values_in_selectors_are_the_contracts():
    # e.g. state="acw" or sla="next-reply" would parse and silently match nothing
    checked = set()
    for name, expr in QUERIES:
        for _, body in _SELECTOR.findall(expr):
            for label, op, value in _VALUE_MATCHER.findall(body):
                if label not in LABEL_VALUES or value == ".*":
                    continue
                values = set(value.split("|")) if op == "=~" else {value}
                assert values <= LABEL_VALUES[label], f"{name}: {label}={value!r} in {expr!r}"
                checked |= {(label, v) for v in values}
    # the Wave 2 tiles select these exact values
    assert {
        ("sla", "next_reply"),
        ("state", "available"),
        ("state", "busy"),
        ("state", "after_call_work"),
        ("state", "break"),
        ("priority", "urgent"),
        ("priority", "low"),
    } <= checked


@pytest.mark.parametrize(("name", "expr"), QUERIES)
def test_query_is_balanced(name, expr):
    stripped = _STRINGS.sub('""', expr)
    pairs = {")": "(", "]": "[", "}": "{"}
    stack = []
    for char in stripped:
        if char in "([{":
            stack.append(char)
        elif char in pairs:
            assert stack, f"{name}: unbalanced {expr!r}"
            assert stack.pop() == pairs[char], f"{name}: unbalanced {expr!r}"
    assert not stack, f"{name}: unbalanced {expr!r}"
    assert "$" not in expr


def test_histograms_are_read_through_rate_of_buckets():
    for name, expr in QUERIES:
        if "histogram_quantile" in expr:
            assert re.search(r"rate\(support_\w+_bucket\{?[^\[]*\[", expr), (name, expr)
            assert re.search(r"by \([^)]*\ble\b", expr), (name, expr)


def test_counters_are_never_shown_raw():
    for name, expr in QUERIES:
        for metric in _metrics(expr):
            if metric.endswith(("_total", "_bucket", "_sum", "_count")):
                assert re.search(rf"(rate|increase)\({metric}\b", expr), (name, expr)


def test_template_variable_queries_use_known_metrics():
    for name, model in MODELS.items():
        for variable in model["templating"].get("list", []):
            if variable["type"] == "datasource":
                assert variable["query"] == "prometheus"
                continue
            definition = variable["query"]
            if variable["name"] == "window_range":
                # $window spelt as a PromQL range, computed from vector(1): no metric at all
                assert not _metrics(definition), definition
                continue
            names = set(_metrics(_STRINGS.sub('""', definition)))
            for alternatives in re.findall(r'__name__=~"([^"]+)"', definition):
                names.update(alternatives.split("|"))
            assert names, (name, definition)
            assert names <= set(SERIES), (name, definition)
            label = re.search(r",\s*(\w+)\)$", definition)
            assert label, definition
            for metric in names:
                labels = CONTRACT[SERIES[metric]][1]
                assert isinstance(labels, set)
                assert label.group(1) in labels, (name, definition)


@pytest.mark.parametrize(
    ("name", "expr"),
    [(name, expr) for name, model in MODELS.items() for expr in annotation_queries(model)],
)
def test_annotation_queries_use_known_metrics_and_labels(name, expr):
    for metric, body in _SELECTOR.findall(expr) + re.findall(r"\b(ALERTS)\{([^}]*)\}", expr):
        if metric == "ALERTS":  # Prometheus' own series of its alerting rules
            labels = {"alertname", "alertstate", "severity"}
        else:
            family_labels = CONTRACT[SERIES[metric]][1]
            assert isinstance(family_labels, set)
            labels = family_labels
        for matcher in _MATCHER.findall(body):
            assert matcher[0] in labels, (name, expr)
    assert _metrics(expr) <= set(SERIES), (name, expr)


def test_the_detector_variable_names_what_the_default_config_exports():
    # the detector dashboard repeats over whatever the daemon exports; its variable's description
    # names the instances: those the suite of the deploy config builds, every detector enabled
    from support_monitor.dashboards import detectors  # noqa: PLC0415
    from support_monitor.detectors.suite import DetectorSuite  # noqa: PLC0415
    from support_monitor.monitor.config import load_settings  # noqa: PLC0415

    settings = load_settings(Path(__file__).parents[2] / "deploy/support-monitor/config.yaml")
    suite = DetectorSuite(settings.detectors, settings.channels, settings.window_seconds)
    names = [d.name for d in suite.detectors]
    assert len(names) == 12  # nine built-in detectors and three thresholds, none disabled
    assert set(detectors.DETECTORS) == set(names)
    assert "threshold" not in detectors.DETECTORS  # the instance name, never the kind
