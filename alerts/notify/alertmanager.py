"""Alertmanager API v2 (``POST /api/v2/alerts``), the way Prometheus feeds it.

Every evaluation sends the alerts that ``needs_sending``: newly firing, newly resolved, and every
firing or retained-resolved alert once per ``resend_interval`` of wall time. No retries: the next
resend repairs a failed post, exactly like Prometheus. Every configured URL gets every batch.

Alertmanager judges expiry by its own clock, so ``startsAt``/``endsAt`` are wall-clock times even
when the daemon's clock is not (the simulator's ``speed``): an alert's ``startsAt`` is the wall
time that lies as far back as the alert has fired on the daemon's clock, fixed at its first post
(in real time: ``fired_at``); a firing alert's ``endsAt`` is ``wall now + 4 * max(resend_interval,
evaluation interval)``, the evaluation interval in wall seconds (the wall time since the previous
evaluation when that is longer, as with a simulator slower than real time), so Alertmanager
resolves it by itself if we stop talking; a resolved one's ``endsAt`` is fixed the same way at
its first post after resolving. The daemon's own times are in the annotations
``event_fired_at``/``event_resolved_at`` only when they differ from those.

URLs are secrets (they may carry ``user:password@``): logs name the Alertmanager by its position
in ``urls`` only, and never show a response body or an exception's text.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import msgspec
import structlog
from pydantic import SecretStr

from support_monitor.alerts import links
from support_monitor.alerts.notify.http import exchange
from support_monitor.alerts.state import Alert
from support_monitor.alerts.timefmt import rfc3339
from support_monitor.monitor.stats import DaemonStats

NOTIFIER = "alertmanager"
SKEW = 60.0
"""Event times further than this from the wall clock are added as annotations."""
log = structlog.get_logger("support_monitor.alerts.alertmanager")


def mark_sent(alert: Alert, now: float, resend: float, interval: float, wall: float) -> None:
    """Prometheus' ``sendAlerts`` bookkeeping (allow for two missed evaluations or sends), on
    the wall clock ``wall`` for what Alertmanager sees (``interval``: wall seconds between
    evaluations); ``now`` is the daemon's clock."""
    alert.last_sent_at = now
    alert.last_sent_wall = wall
    alert.valid_until = wall + 4 * max(resend, interval)
    if alert.am_starts_at is None:
        since = alert.fired_at if alert.fired_at is not None else alert.active_at
        alert.am_starts_at = min(wall, wall - (now - since))
    if alert.resolved_at is not None and alert.am_ends_at is None:
        alert.am_ends_at = max(alert.am_starts_at, min(wall, wall - (now - alert.resolved_at)))


def am_alert(alert: Alert, generator_url: str) -> dict[str, Any]:
    """One ``postableAlert``; call after ``mark_sent`` for this send. ``generator_url``: the
    configured one; empty: the alert's dashboard link (``alerts.links.generator_url``)."""
    starts = alert.am_starts_at
    ends = alert.am_ends_at if alert.resolved_at is not None else alert.valid_until
    assert starts is not None
    annotations = dict(alert.annotations)
    fired = alert.fired_at if alert.fired_at is not None else alert.active_at
    if abs(fired - starts) > SKEW:
        annotations["event_fired_at"] = rfc3339(fired)
        if alert.resolved_at is not None:
            annotations["event_resolved_at"] = rfc3339(alert.resolved_at)
    body: dict[str, Any] = {
        "labels": dict(alert.labels),
        "annotations": annotations,
        "startsAt": rfc3339(starts),
    }
    if ends is not None:
        body["endsAt"] = rfc3339(ends)
    link = links.generator_url(alert.annotations, generator_url)
    if link:
        body["generatorURL"] = link
    return body


class AlertmanagerClient:
    def __init__(
        self,
        urls: tuple[SecretStr, ...],
        client: httpx.AsyncClient,
        stats: DaemonStats,
        timeout: float,
        token: SecretStr | None = None,
        *,
        unavailable: bool = False,
    ) -> None:
        self._unavailable = unavailable
        """The token could not be read: nothing is posted, every post counts ``failed``."""
        self._urls = [u.get_secret_value().rstrip("/") + "/api/v2/alerts" for u in urls]
        self._client = client
        self._stats = stats
        self._timeout = timeout
        self._token = token
        self._failed: dict[int, int] = {}
        """Per Alertmanager (its index) in an outage: the posts that failed since it began."""

    async def post(self, alerts: list[dict[str, Any]]) -> list[bool]:
        """Post one batch to every Alertmanager; True per URL that accepted it."""
        if not alerts:
            return []
        if self._unavailable:
            self._stats.notifications[(NOTIFIER, "failed")] += len(self._urls)
            return [False] * len(self._urls)
        body = msgspec.json.encode(alerts)
        return list(
            await asyncio.gather(*(self._one(i, url, body) for i, url in enumerate(self._urls)))
        )

    async def _one(self, index: int, url: str, body: bytes) -> bool:
        headers = {"Content-Type": "application/json"}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        try:
            status, _, _ = await exchange(self._client, url, body, headers, self._timeout)
        except (httpx.TransportError, TimeoutError) as exc:
            self._stats.notifications[(NOTIFIER, "failed")] += 1
            self._failing("alertmanager_unreachable", index, error=type(exc).__name__)
            return False
        except Exception as exc:  # noqa: BLE001 - a post's failure must not stop the daemon
            self._stats.notifications[(NOTIFIER, "failed")] += 1
            log.error(  # noqa: TRY400 - no traceback: its frames may hold the URL
                "alertmanager_post_failed", url_index=index, error=type(exc).__name__
            )
            return False
        if 200 <= status < 300:
            self._stats.notifications[(NOTIFIER, "ok")] += 1
            failed = self._failed.pop(index, 0)
            if failed:
                log.warning("alertmanager_recovered", url_index=index, failed_posts=failed)
            return True
        self._stats.notifications[(NOTIFIER, "failed")] += 1
        self._failing("alertmanager_rejected", index, status=status)
        return False

    def _failing(self, event: str, index: int, **detail: object) -> None:
        """A failed post: a warning for the first of an outage of that Alertmanager (until a
        post to it succeeds, ``alertmanager_recovered``), debug lines for the rest."""
        failed = self._failed.get(index, 0)
        self._failed[index] = failed + 1
        (log.debug if failed else log.warning)(event, url_index=index, **detail)
