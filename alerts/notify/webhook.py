"""Generic JSON webhook: exactly Alertmanager's webhook payload (``version`` "4"), so whatever
reads Alertmanager's webhooks reads ours.

The body is Alertmanager's ``notify/webhook.Message``: ``template.Data`` (``receiver``,
``status``, ``alerts``, ``groupLabels``, ``commonLabels``, ``commonAnnotations``,
``externalURL``) plus ``version``, ``groupKey`` and ``truncatedAlerts``; each alert is
``template.Alert`` (``status``, ``labels``, ``annotations``, ``startsAt``, ``endsAt``,
``generatorURL``, ``fingerprint``). Nothing else: the notification's idempotency key is the
``Idempotency-Key`` header, so a receiver can de-duplicate the rare resend after a crash between
delivery and bookkeeping.

Where our notification differs from an Alertmanager group, the values are:

- ``receiver``: the receiver's name, escaped like Go's ``regexp.QuoteMeta`` (as Alertmanager
  does);
- ``groupKey``: ``{}/{receiver="<name>"}:{<group labels>}``, Alertmanager's
  ``<route key>:<label set>`` with the receiver standing for the route; stable for a receiver
  and group;
- ``groupLabels``: the route's ``group_by`` labels the alerts have (empty values left out);
- ``status``: ``firing`` while any alert of the notification fires, else ``resolved``; each
  alert has its own ``status`` (a group update carries firing and resolved alerts together);
- ``startsAt``: when the alert fired (``fired_at``); ``endsAt``: ``resolved_at`` once resolved,
  else Go's zero time ``0001-01-01T00:00:00Z`` (what Alertmanager sends for a firing alert);
- ``fingerprint``: Alertmanager's own (``am_fingerprint``), so it matches what Alertmanager
  shows for the same labels (the daemon's state key, a SHA-256 prefix, is not sent);
- ``annotations`` of a firing alert include ``ack_url``, the console's signed acknowledge link
  (a confirmation page), when ``console.external_url`` is set;
- ``generatorURL``: ``alerts.links.generator_url``; ``externalURL``: the given external URL
  (``alerts.dashboard_base_url``, the Grafana root); ``truncatedAlerts``: always 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import msgspec
from pydantic import SecretStr

from support_monitor.alerts.links import generator_url
from support_monitor.alerts.notify.delivery import Outcome
from support_monitor.alerts.notify.http import post
from support_monitor.alerts.notify.message import AlertInfo, Notification
from support_monitor.alerts.timefmt import rfc3339

VERSION = "4"
ZERO_TIME = "0001-01-01T00:00:00Z"
"""Go's zero ``time.Time`` as JSON: Alertmanager's ``endsAt`` of a firing alert."""
_META = frozenset("\\.+*?()|[]{}^$")


def quote_meta(value: str) -> str:
    """Go's ``regexp.QuoteMeta``."""
    return "".join("\\" + c if c in _META else c for c in value)


_FNV_OFFSET = 14695981039346656037
_FNV_PRIME = 1099511628211
_SEPARATOR = 0xFF


def am_fingerprint(labels: dict[str, str]) -> str:
    """Alertmanager's fingerprint of an alert: Prometheus' ``LabelSet.Fingerprint()`` (FNV-1a
    64 over the sorted names and values, each followed by the byte 0xff), 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in (*part.encode(), _SEPARATOR):
                h = ((h ^ byte) * _FNV_PRIME) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def label_set(labels: dict[str, str]) -> str:
    """Prometheus' ``LabelSet.String()``: ``{a="1", b="2"}``, sorted, values quoted."""
    pairs = sorted(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in labels.items())
    return "{" + ", ".join(pairs) + "}"


def _common(maps: list[dict[str, str]]) -> dict[str, str]:
    """The pairs every map has with the same value (Alertmanager's common labels)."""
    common = dict(maps[0]) if maps else {}
    for other in maps[1:]:
        common = {k: v for k, v in common.items() if other.get(k) == v}
    return common


def _alert(a: AlertInfo, status: str, generator: str) -> dict[str, Any]:
    return {
        "status": status,
        "labels": dict(a.labels),
        "annotations": dict(a.annotations),
        "startsAt": rfc3339(a.fired_at if a.fired_at is not None else a.active_at),
        "endsAt": rfc3339(a.resolved_at) if a.resolved_at is not None else ZERO_TIME,
        "generatorURL": generator_url(a.annotations, generator),
        "fingerprint": am_fingerprint(a.labels),
    }


def webhook_payload(
    n: Notification, *, external_url: str = "", generator: str = ""
) -> dict[str, Any]:
    """Alertmanager's webhook ``Message`` for one notification (``generator``: the configured
    ``generatorURL``, empty for each alert's dashboard)."""
    group = {k: v for k, v in n.group.items() if v}
    return {
        "receiver": quote_meta(n.receiver),
        "status": n.state,
        "alerts": [_alert(a, a.status, generator) for a in n.alerts],
        "groupLabels": group,
        "commonLabels": _common([a.labels for a in n.alerts]),
        "commonAnnotations": _common([a.annotations for a in n.alerts]),
        "externalURL": external_url,
        "version": VERSION,
        "groupKey": "{}/" + label_set({"receiver": n.receiver}) + ":" + label_set(group),
        "truncatedAlerts": 0,
    }


class WebhookNotifier:
    def __init__(
        self,
        name: str,
        url: SecretStr,
        client: httpx.AsyncClient,
        timeout: float,
        *,
        token: SecretStr | None = None,
        headers: dict[str, SecretStr] | None = None,
        external_url: Callable[[], str] = str,
        generator: Callable[[], str] = str,
    ) -> None:
        """``external_url``/``generator``: read at each send (a config reload may change
        them); the defaults give ``""``."""
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout
        self._token = token
        self._headers = dict(headers or {})
        self._external_url = external_url
        self._generator = generator

    async def send(self, notification: Notification) -> Outcome:
        headers = {name: value.get_secret_value() for name, value in self._headers.items()}
        headers["Content-Type"] = "application/json"
        headers["Idempotency-Key"] = notification.key
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        payload = webhook_payload(
            notification, external_url=self._external_url(), generator=self._generator()
        )
        body = msgspec.json.encode(payload)
        return await post(self._client, self._url.get_secret_value(), body, headers, self._timeout)
