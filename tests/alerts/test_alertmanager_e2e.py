"""The daemon's alerts posted to a real Alertmanager (deploy/local/alertmanager.sh on
127.0.0.1:19093), checked through its own API v2: received, grouped by (alertname, channel),
resolved."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pytest

from tests.alerts.helpers import sig
from tests.alerts.runtime_helpers import delivering, make, wait_for

pytestmark = pytest.mark.alertmanager


async def _get(client: httpx.AsyncClient, url: str, path: str, run: str) -> list[dict[str, Any]]:
    response = await client.get(f"{url}{path}", params={"filter": f'e2e_run="{run}"'})
    response.raise_for_status()
    data: list[dict[str, Any]] = response.json()
    return data


async def test_alerts_received_grouped_and_resolved(alertmanager_url):
    run = uuid.uuid4().hex[:12]
    rule = {
        "alert": "SupportMonitorE2E",
        "detector": "longest_wait",
        "severity": "info",
        "labels": {"e2e_run": run},
        "annotations": {"summary": "{channel}: waited {score:.0f}s"},
    }
    alerting, source, stats = make(
        rule=rule, alertmanager={"urls": [alertmanager_url], "resend_interval": "1m"}
    )
    tick = alerting.handlers[0]  # what the daemon's TickRoad calls
    async with httpx.AsyncClient(timeout=5) as client, delivering(alerting):
        source.signals = [sig(channel="voice", score=95), sig(channel="chat", score=80)]
        tick(time.time())
        alerts: list[dict[str, Any]] = []

        async def poll_active() -> None:
            nonlocal alerts
            for _ in range(100):
                alerts = await _get(client, alertmanager_url, "/api/v2/alerts", run)
                if len(alerts) == 2:
                    return
                await asyncio.sleep(0.1)

        await poll_active()
        assert len(alerts) == 2, json.dumps(alerts)
        by_channel = {a["labels"]["channel"]: a for a in alerts}
        assert set(by_channel) == {"voice", "chat"}
        voice = by_channel["voice"]
        assert voice["status"]["state"] == "active"
        assert voice["labels"]["alertname"] == "SupportMonitorE2E"
        assert voice["annotations"]["summary"] == "voice: waited 95s"
        assert stats.notifications[("alertmanager", "ok")] >= 1

        groups = await _get(client, alertmanager_url, "/api/v2/alerts/groups", run)
        labels = sorted((g["labels"].get("alertname"), g["labels"].get("channel")) for g in groups)
        assert labels == [("SupportMonitorE2E", "chat"), ("SupportMonitorE2E", "voice")]
        assert all(len(g["alerts"]) == 1 for g in groups)

        source.signals = []
        tick(time.time())  # resolved: posted with endsAt = resolved_at

        async def gone() -> bool:
            return await _get(client, alertmanager_url, "/api/v2/alerts", run) == []

        for _ in range(100):
            if await gone():
                break
            await asyncio.sleep(0.1)
        assert await gone()
    await wait_for(lambda: stats.notifications[("alertmanager", "ok")] >= 2)
