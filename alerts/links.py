"""Links in alerts: which annotation values are links, and each alert's ``generatorURL``.

An annotation whose name ends in ``_url`` (``runbook_url``, ``dashboard_url``, or one of your
own) is a link. It is kept only if it renders to an absolute ``http://`` or ``https://`` URL:
with ``alerts.runbook_base_url`` empty, ``{runbook_base_url}#longestwaithigh`` renders to the
relative ``#longestwaithigh``, which no receiver can open, so the annotation is left out, the
same way for Slack, the webhook, Alertmanager and ``replay --alerts-out``.

``generatorURL`` (Alertmanager's "where this alert comes from") is
``notifiers.alertmanager.generator_url`` when set, else the alert's ``dashboard_url`` annotation
(the Grafana channel dashboard, from ``alerts.dashboard_base_url``), else empty.
"""

from __future__ import annotations

from collections.abc import Mapping

LINK_SUFFIX = "_url"
DASHBOARD = "dashboard_url"


def is_absolute(url: str) -> bool:
    """An absolute http(s) URL with a host."""
    for scheme in ("http://", "https://"):
        if url.startswith(scheme):
            rest = url[len(scheme) :]
            return bool(rest) and rest[0] not in "/?#"
    return False


def keep_links(annotations: dict[str, str]) -> dict[str, str]:
    """``annotations`` without the links (``*_url``) that are not absolute http(s) URLs."""
    return {
        key: value
        for key, value in annotations.items()
        if not key.endswith(LINK_SUFFIX) or is_absolute(value)
    }


def generator_url(annotations: Mapping[str, str], configured: str) -> str:
    """The ``generatorURL`` of an alert with these annotations."""
    if configured:
        return configured
    dashboard = annotations.get(DASHBOARD, "")
    return dashboard if is_absolute(dashboard) else ""
