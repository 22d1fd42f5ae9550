"""``support-monitor run`` serves the console on its listener, behind basic auth, and keeps a
silence across a restart (the daemon's own wiring: monitor/daemon.py, monitor/console/setup.py)."""

from __future__ import annotations

import json
import signal
import stat
import subprocess
import time
from pathlib import Path

import bcrypt
import httpx
import yaml

from tests.processes import free_port, start_daemon

TOKEN = "daemon-console-token-0123456789"
USER, PASSWORD = "ops", "wallboard-password"


def _wait(url: str, auth: tuple[str, str]) -> httpx.Response:
    deadline = time.monotonic() + 30
    while True:
        try:
            response = httpx.get(url, auth=auth, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"{url} did not answer 200"
        time.sleep(0.3)


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 0, stderr
    return stderr


def test_daemon_serves_the_console_and_keeps_silences(tmp_path: Path) -> None:
    state = tmp_path / "state"
    token = tmp_path / "token"
    token.write_text(TOKEN)
    web = tmp_path / "web.yml"
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    web.write_text(yaml.safe_dump({"basic_auth_users": {USER: hashed}}))
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                # speed 1: the alerts' clock is the wall clock (a sped-up simulator restarts its
                # simulated time at each start, which would make the kept silence "pending")
                "sources": {"simulator": {"speed": 1}},
                "exporter": {"web_config_file": str(web)},
                "notifiers": {"state_dir": str(state)},
                "console": {"api_token_file": str(token), "refresh_seconds": 2},
            }
        )
    )
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    auth = (USER, PASSWORD)
    proc = start_daemon(config, f"127.0.0.1:{port}")
    try:
        page = _wait(base + "/", auth)
        assert 'data-refresh-ms="2000"' in page.text
        assert httpx.get(base + "/api/v1/status", timeout=5).status_code == 401  # basic auth
        status = httpx.get(base + "/api/v1/status", auth=auth, timeout=5).json()
        assert [c["channel"] for c in status["channels"]] == ["chat", "chatbot", "email", "voice"]
        assert status["writable"] is True
        created = httpx.post(
            base + "/api/v1/silences",
            auth=auth,
            headers={"X-Console-Token": TOKEN},
            json={
                "matchers": [{"name": "channel", "value": "voice"}],
                "endsAt": "2999-01-01T00:00:00Z",
                "createdBy": "Ana",
                "comment": "maintenance",
            },
            timeout=5,
        )
        assert created.status_code == 201, created.text
        silence_id = created.json()["silence"]["id"]
    finally:
        stderr = _stop(proc)
    logged = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    created_lines = [e for e in logged if e.get("event") == "console_silence_created"]
    assert [e["silence"] for e in created_lines] == [silence_id]
    assert TOKEN not in stderr
    assert stat.S_IMODE((state / "console.key").stat().st_mode) == 0o600

    proc = start_daemon(config, f"127.0.0.1:{port}")
    try:
        silences = _wait(base + "/api/v1/silences", auth).json()["silences"]
        assert [(s["id"], s["status"], s["comment"]) for s in silences] == [
            (silence_id, "active", "maintenance")
        ]
    finally:
        _stop(proc)
