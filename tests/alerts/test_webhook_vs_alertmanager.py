"""The generic webhook's body against what a real Alertmanager sends to a webhook receiver.

Starts its OWN Alertmanager (Debian's prometheus-alertmanager, a free port, a temporary
directory, clustering off) whose only receiver is a webhook pointing at a local server, posts one
alert, and compares the body Alertmanager sends with ours for the same alert: the same fields
(the strict model accepts both), the same values where the two must agree.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from pathlib import Path

import httpx
import msgspec
import pytest

from support_monitor.alerts.notify.webhook import webhook_payload
from tests.alerts.am_webhook import AmAlert, AmMessage, strict_message
from tests.alerts.fakes import SlackLike, info, notification
from tests.conftest_services import unavailable
from tests.processes import free_port

pytestmark = pytest.mark.alertmanager

LABELS = {"alertname": "LongWait", "channel": "voice", "severity": "critical"}
ANNOTATIONS = {
    "summary": "voice: long wait",
    "dashboard_url": "https://grafana.example/d/support-channel?var-channel=voice",
}
CONFIG = """
route:
  receiver: hook
  group_by: [alertname, channel]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@contextlib.asynccontextmanager
async def _own_alertmanager(tmp_path: Path, hook_url: str):
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if binary is None:
        unavailable("prometheus-alertmanager not found on PATH (Debian prometheus-alertmanager)")
    (tmp_path / "am.yml").write_text(CONFIG.format(url=hook_url))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = await asyncio.create_subprocess_exec(
        binary,
        f"--config.file={tmp_path / 'am.yml'}",
        f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        f"--web.external-url={url}",
        "--cluster.listen-address=",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=(tmp_path / "am.log").open("wb"),
    )
    try:
        async with httpx.AsyncClient(timeout=2) as client:
            for _ in range(150):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/-/ready")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                pytest.fail((tmp_path / "am.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        await proc.wait()


async def test_our_webhook_body_has_alertmanagers_exact_shape(tmp_path):
    async with SlackLike() as hook, _own_alertmanager(tmp_path, hook.url) as am:
        starts = "2026-01-02T03:04:05.678Z"
        alert = {
            "labels": LABELS,
            "annotations": ANNOTATIONS,
            "startsAt": starts,
            "generatorURL": ANNOTATIONS["dashboard_url"],
        }
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.post(f"{am}/api/v2/alerts", json=[alert])
            assert response.status_code == 200, response.text
        deadline = time.monotonic() + 20
        while not hook.received and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    assert hook.received, "Alertmanager sent nothing to the webhook"
    real = hook.received[0]
    real_message = strict_message(
        msgspec.json.encode(real)
    )  # our strict model accepts Alertmanager's

    fired = 1_767_323_045.678  # 2026-01-02T03:04:05.678Z
    n = notification(
        receiver="hook", alerts=(info(labels=LABELS, annotations=ANNOTATIONS, fired_at=fired),)
    )
    group = {"alertname": "LongWait", "channel": "voice"}  # the route's group_by, as in CONFIG
    ours = webhook_payload(msgspec.structs.replace(n, group=group), external_url=am)
    ours_message = strict_message(msgspec.json.encode(ours))

    assert set(ours) == set(real) == set(AmMessage.__struct_fields__)
    assert set(ours["alerts"][0]) == set(real["alerts"][0]) == set(AmAlert.__struct_fields__)
    for key in (
        "version",
        "status",
        "receiver",
        "groupLabels",
        "commonLabels",
        "commonAnnotations",
    ):
        assert ours[key] == real[key], key
    assert ours["externalURL"] == real["externalURL"] == am
    assert ours["truncatedAlerts"] == real["truncatedAlerts"] == 0
    mine, theirs = ours["alerts"][0], real["alerts"][0]
    for key in ("status", "labels", "annotations", "generatorURL", "fingerprint", "endsAt"):
        assert mine[key] == theirs[key], key
    assert theirs["endsAt"] == "0001-01-01T00:00:00Z"
    assert ours_message.alerts[0].startsAt == real_message.alerts[0].startsAt
    # Alertmanager's groupKey is "<route key>:<group labels>"; ours has the same form
    assert real["groupKey"] == '{}:{alertname="LongWait", channel="voice"}'
    assert ours["groupKey"].endswith(':{alertname="LongWait", channel="voice"}')
