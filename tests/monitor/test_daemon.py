"""``support-monitor run`` on its built-in simulator, as a fresh install runs it."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

SPEC_FAMILIES = {
    "support_contacts_queued",
    "support_contacts_answered",
    "support_contacts_answered_in_sla",
    "support_contacts_abandoned",
    "support_contacts_abandoned_short",
    "support_contacts_abandoned_in_sla",
    "support_sla_breaches",
    "support_queue_waiting",
    "support_queue_oldest_wait_seconds",
    "support_queue_breached_waiting",
    "support_wait_seconds",
    "support_handle_seconds",
    "support_service_level_ratio",
    "support_abandon_ratio",
    "support_wait_quantile_seconds",
    "support_csat_ratio",
    "support_complaints_window",
    "support_tickets_created",
    "support_tickets_solved",
    "support_tickets_open",
    "support_tickets_at_risk",
    "support_first_response_seconds",
    "support_resolution_seconds",
    "support_csat_ratings",
    "support_complaints",
    "support_alerts",
    "support_monitor_events",
    "support_monitor_events_rejected",
    "support_monitor_event_lag_seconds",
    "support_monitor_notifications",
    "support_monitor_build_info",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_on_simulator_serves_every_family_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    config = tmp_path / "c.yaml"
    # speed 30: a simulated half minute per second, so contacts flow within the test
    config.write_text(yaml.safe_dump({"sources": {"simulator": {"speed": 30}}}), encoding="utf-8")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "run",
            "--config",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        families: dict[str, float] = {}
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.HTTPError:
                continue
            families = {
                f.name: sum(s.value for s in f.samples if s.name.endswith("_total"))
                for f in text_string_to_metric_families(text)
            }
            if families.get("support_monitor_events", 0) >= 20:
                break
        assert set(families) >= SPEC_FAMILIES, SPEC_FAMILIES - set(families)
        assert families["support_monitor_events"] >= 20
        assert families["support_contacts_queued"] >= 1
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
        om = httpx.get(
            f"http://127.0.0.1:{port}/metrics",
            timeout=2,
            headers={"Accept": "application/openmetrics-text; version=1.0.0"},
        )
        assert om.headers["content-type"].startswith("application/openmetrics-text")
        assert om.text.endswith("# EOF\n")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=15)
    assert proc.returncode == 0, stderr
    assert '"event": "daemon_stopped"' in stderr
