"""The repository's Alertmanager inhibit rules, in a real Alertmanager.

The shared Alertmanager on 127.0.0.1:19093 runs whatever config it was started with, so this test
starts its own (Debian's prometheus-alertmanager) on a free port with the repository's config,
rendered for local use by deploy/local/alertmanager.sh. It posts critical alerts and their warning
twins through API v2 and reads back which ones Alertmanager marks suppressed, and by whom.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import httpx
import pytest
import yaml

from support_monitor.alerts.config import default_inhibit_rules
from tests.conftest_services import unavailable
from tests.processes import free_port

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.alertmanager

REPO = Path(__file__).resolve().parents[2]
RENDER = REPO / "deploy" / "local" / "alertmanager.sh"
AM_CONFIG = REPO / "deploy" / "alertmanager" / "alertmanager.yml"


@pytest.fixture
def own_alertmanager(tmp_path: Path, amtool: str) -> Iterator[str]:
    """A private Alertmanager with the repo's config; its base URL."""
    with _alertmanager(tmp_path, amtool, {}) as url:
        yield url


@contextlib.contextmanager
def _alertmanager(tmp_path: Path, amtool: str, extra_env: dict[str, str]) -> Iterator[str]:
    """Runs a private Alertmanager with the repo's config, rendered with `extra_env` (e.g.
    SLACK_WEBHOOK_URL_FILE); yields its base URL."""
    binary = shutil.which("prometheus-alertmanager")
    if binary is None:
        unavailable("prometheus-alertmanager not found (deploy/local/install.sh installs it)")
    env = {**os.environ, "SUPPORT_MONITOR_RUN": str(tmp_path / "run"), **extra_env}
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


def _alert(run: str, annotations: dict[str, str] | None = None, **labels: str) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "labels": {**labels, "e2e_run": run},
        "annotations": annotations or {"summary": "inhibit test"},
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


_MATCHER = re.compile(r'\s*(\w+)\s*(=~|!~|!=|=)\s*"(.*)"\s*')


def _matchers(texts: list[str] | tuple[str, ...]) -> set[tuple[str, str, str]]:
    out = set()
    for text in texts:
        match = _MATCHER.fullmatch(text)
        assert match, text
        out.add((match.group(1), match.group(2), match.group(3)))
    return out


def test_config_mirrors_the_daemons_default_inhibit_rules() -> None:
    # the daemon sends inhibited alerts to Alertmanager too: without the same rules there,
    # Slack pages what the built-in notifiers hold back
    shipped = yaml.safe_load(AM_CONFIG.read_text(encoding="utf-8"))["inhibit_rules"]
    for rule in default_inhibit_rules():
        source, target = _matchers(rule.source_matchers), _matchers(rule.target_matchers)
        mirrored = [
            am
            for am in shipped
            # the same alerts, maybe narrowed by severity (which the default rules fix)
            if {m for m in _matchers(am["source_matchers"]) if m[0] != "severity"} == source
            and {m for m in _matchers(am["target_matchers"]) if m[0] != "severity"} == target
            and list(am.get("equal", [])) == list(rule.equal)
        ]
        assert mirrored, rule


def test_longest_wait_mutes_its_forecasts(own_alertmanager: str) -> None:
    url = own_alertmanager
    run = uuid.uuid4().hex[:12]
    alerts = [
        _alert(run, alertname="LongestWaitHigh", severity="critical", channel="voice"),
        _alert(run, alertname="BacklogGrowing", severity="warning", channel="voice"),
        _alert(run, alertname="EstimatedWaitHigh", severity="warning", channel="voice"),
        # another channel's forecasts are not muted
        _alert(run, alertname="BacklogGrowing", severity="warning", channel="chat"),
        _alert(run, alertname="EstimatedWaitHigh", severity="warning", channel="chat"),
        # nor are the alerts the daemon keeps paging next to a long wait
        _alert(run, alertname="Understaffed", severity="warning", channel="voice"),
        _alert(run, alertname="AbandonRateHigh", severity="warning", channel="voice"),
    ]
    posted = httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5)
    assert posted.status_code == 200, posted.text
    source = ("LongestWaitHigh", "voice", "critical")
    expected_suppressed = {
        ("BacklogGrowing", "voice", "warning"),
        ("EstimatedWaitHigh", "voice", "warning"),
    }
    deadline = time.monotonic() + 20
    while True:
        reply = httpx.get(f"{url}/api/v2/alerts", params={"filter": f'e2e_run="{run}"'}, timeout=5)
        reply.raise_for_status()
        got = {_key(alert): alert for alert in reply.json()}
        suppressed = {k for k, a in got.items() if a["status"]["state"] == "suppressed"}
        if len(got) == len(alerts) and suppressed == expected_suppressed:
            break
        assert time.monotonic() < deadline, {k: a["status"] for k, a in got.items()}
        time.sleep(0.2)
    for target in expected_suppressed:
        assert got[target]["status"]["inhibitedBy"] == [got[source]["fingerprint"]], target


class _SlackCapture:
    """A stand-in for Slack's incoming webhook: keeps every JSON body posted to it."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

        bodies: list[dict[str, Any]] = []
        self.bodies = bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                del args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_slack_message_links_the_dashboard_and_the_runbook(tmp_path: Path, amtool: str) -> None:
    # the daemon's default rules send a `dashboard_url` annotation; the shipped Slack template
    # printed only the runbook
    dashboard = (
        "https://grafana.example/d/support-channel?var-channel=voice&var-window=1h"
        "&from=1772440200000&to=now"
    )
    runbook = "https://docs.example/runbooks.md#csatlow"
    with _SlackCapture() as slack:
        url_file = tmp_path / "slack_url"
        url_file.write_text(slack.url + "\n", encoding="utf-8")
        with _alertmanager(tmp_path, amtool, {"SLACK_WEBHOOK_URL_FILE": str(url_file)}) as url:
            run = uuid.uuid4().hex[:12]
            alerts = [
                _alert(
                    run,
                    {
                        "summary": "voice: CSAT low",
                        "dashboard_url": dashboard,
                        "runbook_url": runbook,
                    },
                    alertname="CsatLow",
                    severity="warning",
                    channel="voice",
                ),
            ]
            posted = httpx.post(f"{url}/api/v2/alerts", json=alerts, timeout=5)
            assert posted.status_code == 200, posted.text
            deadline = time.monotonic() + 40  # group_wait 10s
            while not slack.bodies:
                assert time.monotonic() < deadline, "Alertmanager sent nothing to Slack"
                time.sleep(0.2)
    (attachment,) = slack.bodies[0]["attachments"]
    text = attachment["text"]
    assert "*voice: CSAT low*" in text
    # Slack's link syntax, & escaped as Slack requires
    assert f"<{dashboard.replace('&', '&amp;')}|Dashboard>" in text, text
    assert f"<{runbook}|Runbook>" in text, text
