"""``support-monitor run`` on its built-in simulator, as a fresh install runs it."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, start_daemon

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


def test_run_on_simulator_serves_every_family_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "c.yaml"
    # speed 30: a simulated half minute per second, so contacts flow within the test
    config.write_text(yaml.safe_dump({"sources": {"simulator": {"speed": 30}}}), encoding="utf-8")
    proc = start_daemon(config, f"127.0.0.1:{port}", stdout=subprocess.PIPE)
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
        # the standard process and Python collectors of a live daemon
        assert {"process_resident_memory_bytes", "process_cpu_seconds", "python_info"} <= set(
            families
        )
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


def _run(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "support_monitor", "run", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_an_address_in_use_is_one_line_naming_the_key(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "c.yaml"
        config.write_text(
            yaml.safe_dump({"exporter": {"listen": f"127.0.0.1:{port}"}}), encoding="utf-8"
        )
        for args, key in (
            (["--config", str(config)], "exporter.listen"),
            (["--listen", f"127.0.0.1:{port}"], "--listen"),
        ):
            proc = _run(*args)
            _, stderr = proc.communicate(timeout=30)
            assert proc.returncode == 1
            errors = [line for line in stderr.splitlines() if not line.startswith("{")]
            assert errors == [
                f"error: {key}: cannot listen on 127.0.0.1:{port}: address already in use"
            ], stderr
            assert "Traceback" not in stderr


def test_a_listen_address_without_a_valid_port_is_refused_before_starting() -> None:
    for listen, problem in (
        ("0.0.0.0:99108", "'0.0.0.0:99108': the port 99108 is out of range (0-65535)"),
        ("localhost", "'localhost' is not HOST:PORT (e.g. 127.0.0.1:9108)"),
    ):
        proc = _run("--listen", listen)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 2
        assert stderr == f"config error: --listen: {problem}\n"


def test_sigterm_while_kafka_is_unreachable_exits_0_with_one_line(tmp_path: Path) -> None:
    # Port 1 on loopback: nothing listens, every connection attempt is refused.
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"sources": {"kafka": {"bootstrap_servers": "127.0.0.1:1", "topics": ["t"]}}}
        ),
        encoding="utf-8",
    )
    # Signalled once the listener answers (start-up done, the source connecting), then 0.2 s
    # and 2 s later (while the source retries its connection). Waiting for the listener rather
    # than a fixed delay keeps this right on a loaded machine, where imports alone take seconds.
    for delay in (0.2, 2.0):
        port = free_port()
        proc = _run("--config", str(config), "--listen", f"127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        time.sleep(delay)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
        assert proc.returncode == 0, stderr
        assert "Traceback" not in stderr
        assert "CancelledError" not in stderr
        stopped = [line for line in stderr.splitlines() if '"event": "daemon_stopped"' in line]
        assert len(stopped) == 1, stderr


def test_a_broker_clients_unread_future_error_is_a_debug_line_not_an_error() -> None:
    """Audit of 2026-12-05: after a failure the daemon had logged once, a broker client's own
    futures nobody awaits (aiokafka's drain waiters; aiomqtt's pending operations at a
    disconnect) printed `Future exception was never retrieved` at error level, with a
    traceback, one line each."""
    from aiokafka.errors import MessageSizeTooLargeError  # noqa: PLC0415
    from aiomqtt import MqttCodeError  # noqa: PLC0415
    from structlog.testing import capture_logs  # noqa: PLC0415

    from support_monitor.monitor.daemon import quiet_library_futures  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    passed_on: list[dict[str, object]] = []
    loop.default_exception_handler = passed_on.append  # type: ignore[method-assign,assignment]
    try:
        future = loop.create_future()
        never = "Future exception was never retrieved"
        with capture_logs() as logs:
            for error in (MessageSizeTooLargeError(), MqttCodeError(7, "Unexpected disconnection")):
                quiet_library_futures(
                    loop, {"message": never, "future": future, "exception": error}
                )
            ours = {"message": never, "future": future, "exception": ValueError("a defect")}
            quiet_library_futures(loop, ours)
            other = {"message": "Task was destroyed but it is pending!"}
            quiet_library_futures(loop, other)
    finally:
        loop.close()
    assert [e["event"] for e in logs] == ["library_future_error"] * 2
    assert all(e["log_level"] == "debug" for e in logs)
    assert passed_on == [ours, other]
