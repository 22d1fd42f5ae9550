"""The repository's Alertmanager inhibit rules, in a real Alertmanager.

The shared Alertmanager on 127.0.0.1:19093 runs whatever config it was started with, so this test
starts its own (Debian's prometheus-alertmanager) on a free port with the repository's config,
rendered for local use by deploy/local/alertmanager.sh. It posts critical alerts and their warning
twins through API v2 and reads back which ones Alertmanager marks suppressed, and by whom.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest_services import unavailable
from tests.processes import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.alertmanager

REPO = Path(__file__).resolve().parents[2]
RENDER = REPO / "deploy" / "local" / "alertmanager.sh"


@pytest.fixture
def own_alertmanager(tmp_path: Path, amtool: str) -> Iterator[str]:
    """A private Alertmanager with the repo's config; its base URL."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        unavailable("prometheus-alertmanager not found (deploy/local/install.sh installs it)")
    env = {**os.environ, "SUPPORT_MONITOR_RUN": str(tmp_path / "run")}
    rendered = (
        subprocess.run(
            [str(RENDER), "render"], env=env, capture_output=True, text=True, check=True, timeout=60
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    subprocess.run([amtool, "check-config", rendered], check=True, capture_output=True, timeout=60)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "alertmanager.log").open("w", encoding="utf-8")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={rendered}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--web.external-url={url}/",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "alertmanager.log").read_text()
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "own Alertmanager did not become ready"
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()


def _alert(run: str, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {**labels, "e2e_run": run},
        "annotations": {"summary": "inhibit test"},
        "startsAt": (now - timedelta(minutes=1)).isoformat(),
        "endsAt": (now + timedelta(minutes=30)).isoformat(),
    }


def _key(alert: dict[str, Any]) -> tuple[str, str, str]:
    labels = alert["labels"]
    return (
        labels["alertname"],
        labels.get("channel", labels.get("notifier", "")),
        labels["severity"],
    )


def test_critical_mutes_its_warning_twin(own_alertmanager: str) -> None:
    url = own_alertmanager
    run = uuid.uuid4().hex[:12]
    alerts = [
        # the default daemon rules' twins: voice burns fast and slow, chat only slowly
        _alert(run, alertname="ServiceLevelBurn", severity="critical", channel="voice"),
        _alert(run, alertname="ServiceLevelBurnSlow", severity="warning", channel="voice"),
        _alert(run, alertname="ServiceLevelBurnSlow", severity="warning", channel="chat"),
        # another warning on voice is not a twin of the fast burn
        _alert(run, alertname="BacklogGrowing", severity="warning", channel="voice"),
        # the health rules' twins: slack lost a notification and retries; webhook only retries
        _alert(
            run,
            alertname="SupportMonitorNotificationsFailing",
            severity="critical",
            notifier="slack",
            result="failed",
        ),
        _alert(
            run,
            alertname="SupportMonitorNotificationsRetrying",
            severity="warning",
            notifier="slack",
        ),
        _alert(
            run,
            alertname="SupportMonitorNotificationsRetrying",
            severity="warning",
            notifier="webhook",
        ),
        # a user rule with one name at two severities
        _alert(run, alertname="QueueTooLong", severity="critical", channel="voice"),
        _alert(run, alertname="QueueTooLong", severity="warning", channel="voice"),
        _alert(run, alertname="QueueTooLong", severity="warning", channel="chat"),
    ]
    posted = httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5)
    assert posted.status_code == 200, posted.text
    expected_suppressed = {
        ("ServiceLevelBurnSlow", "voice", "warning"): ("ServiceLevelBurn", "voice", "critical"),
        ("SupportMonitorNotificationsRetrying", "slack", "warning"): (
            "SupportMonitorNotificationsFailing",
            "slack",
            "critical",
        ),
        ("QueueTooLong", "voice", "warning"): ("QueueTooLong", "voice", "critical"),
    }
    deadline = time.monotonic() + 20
    while True:
        reply = httpx.get(f"{url}/api/v2/alerts", params={"filter": f'e2e_run="{run}"'}, timeout=5)
        reply.raise_for_status()
        got = {_key(alert): alert for alert in reply.json()}
        suppressed = {k for k, a in got.items() if a["status"]["state"] == "suppressed"}
        if len(got) == len(alerts) and suppressed == set(expected_suppressed):
            break
        assert time.monotonic() < deadline, {k: a["status"] for k, a in got.items()}
        time.sleep(0.2)
    fingerprints = {key: alert["fingerprint"] for key, alert in got.items()}
    for target, source in expected_suppressed.items():
        status = got[target]["status"]
        assert status["inhibitedBy"] == [fingerprints[source]], (target, status)
        assert status["silencedBy"] == []
    for key, alert in got.items():
        if key not in expected_suppressed:
            assert alert["status"] == {"state": "active", "inhibitedBy": [], "silencedBy": []}, key
