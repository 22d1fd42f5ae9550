"""Alertmanager API v2 (``POST /api/v2/alerts``), the way Prometheus feeds it.

Every evaluation sends the alerts that ``needs_sending``: newly firing, newly resolved, and every
firing or retained-resolved alert once per ``resend_interval``. A firing alert's ``endsAt`` is
``now + 4 * max(resend_interval, evaluation interval)`` so Alertmanager resolves it by itself
if we stop talking; a resolved one carries ``endsAt = resolved_at``. No retries: the next resend
repairs a failed post, exactly like Prometheus. Every configured URL gets every batch.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import structlog
from pydantic import SecretStr

from alerts.state import Alert
from alerts.timefmt import rfc3339
from monitor.stats import DaemonStats

NOTIFIER = "alertmanager"
log = structlog.get_logger("support_monitor.alerts.alertmanager")


def am_alert(alert: Alert, generator_url: str) -> dict[str, Any]:
    """One ``postableAlert``; call after ``valid_until`` was set for this send."""
    ends = alert.resolved_at if alert.resolved_at is not None else alert.valid_until
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": rfc3339(alert.fired_at if alert.fired_at is not None else alert.active_at),
    }
    if ends is not None:
        body["endsAt"] = rfc3339(ends)
    if generator_url:
        body["generatorURL"] = generator_url
    return body


def mark_sent(alert: Alert, now: float, resend: float, interval: float) -> None:
    """Prometheus' ``sendAlerts`` bookkeeping: allow for two missed evaluations or sends."""
    alert.last_sent_at = now
    alert.valid_until = now + 4 * max(resend, interval)


class AlertmanagerClient:
    def __init__(
        self,
        urls: tuple[str, ...],
        client: httpx.AsyncClient,
        stats: DaemonStats,
        timeout: float,
        token: SecretStr | None = None,
    ) -> None:
        self._urls = [u.rstrip("/") + "/api/v2/alerts" for u in urls]
        self._client = client
        self._stats = stats
        self._timeout = timeout
        self._token = token

    async def post(self, alerts: list[dict[str, Any]]) -> list[bool]:
        """Post one batch to every Alertmanager; True per URL that accepted it."""
        if not alerts:
            return []
        body = msgspec.json.encode(alerts)
        return list(await asyncio.gather(*(self._one(url, body) for url in self._urls)))

    async def _one(self, url: str, body: bytes) -> bool:
        headers = {"Content-Type": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        try:
            response = await self._client.post(
                url, content=body, headers=headers, timeout=self._timeout
            )
        except httpx.TransportError as exc:
            self._stats.notifications[(NOTIFIER, "failed")] += 1
            log.warning("alertmanager_unreachable", error=type(exc).__name__)
            return False
        if 200 <= response.status_code < 300:
            self._stats.notifications[(NOTIFIER, "ok")] += 1
            return True
        self._stats.notifications[(NOTIFIER, "failed")] += 1
        log.warning("alertmanager_rejected", status=response.status_code,
                    error=response.text.strip()[:200])
        return False
