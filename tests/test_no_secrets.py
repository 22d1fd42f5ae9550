"""No secret is ever shown: distinct secrets are planted in every secret field and place a
secret can sit, every error path we can reach is triggered, and every byte the processes write
(stdout, stderr, logs, ``/metrics``) is searched for each of them.

Runs the console script as a user does (``check-config``, ``run``, ``replay``). The receivers
are one local HTTP server behaving like Slack's webhook and like a hostile receiver: 400 and 500
with a body that echoes the whole request (URL, query, headers with the tokens, body), 429 with
Retry-After, a hang past the timeout and a connection reset. Kafka, MQTT and one Alertmanager
are unreachable ports. A canary planted in non-secret fields must be found by the same search,
so the search is shown to work.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import yaml

from tests.processes import free_port

EXE = [sys.executable, "-m", "support_monitor"]
NAMES = (
    "slack_inline",
    "slack_file",
    "slack_env",
    "slack_badurl",
    "hook_url",
    "hook_header",
    "hook_bearer",
    "am_password",
    "am_path",
    "am_token",
    "kafka_sasl",
    "kafka_keyfile",
    "mqtt_password",
)
SECRETS = {name: f"SeKrEt{name.replace('_', '')}{secrets.token_hex(6)}" for name in NAMES}
CANARY = f"CaNaRy{secrets.token_hex(6)}"
AM_USER = "amuser"


def _needles() -> dict[str, str]:
    """Every secret, plus the forms it travels in (basic auth is base64 of user:password)."""
    out = dict(SECRETS)
    basic = f"{AM_USER}:{SECRETS['am_password']}".encode()
    out["am_basic_auth"] = base64.b64encode(basic).decode()
    return out


def _closed_port() -> int:
    return free_port()  # bound and released: nothing listens there


class Hostile(BaseHTTPRequestHandler):
    """Answers by path: /slack-a 400 echo, /slack-b cycles 429 / 500 echo / reset / hang,
    /hook 500 echo, /am 400 echo. Every hit is counted per first path segment."""

    hits: ClassVar[Counter[str]]  # set per test on a subclass: shared by its request handlers
    lock: ClassVar[threading.Lock]
    cycle = ("429", "500", "reset", "hang")

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        del format, args

    def _echo(self, status: int) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        echo = json.dumps({"path": self.path, "headers": dict(self.headers), "body": body})
        data = echo.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:  # the client gave up (the hang case): nothing to answer
            self.close_connection = True

    def do_POST(self) -> None:
        segment = self.path.split("/")[1].split("?")[0]
        with self.lock:
            n = self.hits[segment]
            self.hits[segment] += 1
        if segment == "slack-b":
            action = self.cycle[n % len(self.cycle)]
            if action == "429":
                self.send_response(429)
                self.send_header("Retry-After", "1")
                self.send_header("Content-Length", "12")
                self.end_headers()
                self.wfile.write(b"rate_limited")
            elif action == "500":
                self._echo(500)
            elif action == "reset":
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
                )
                self.close_connection = True
                self.connection.close()
            else:
                time.sleep(3)  # past the receiver's 1 s timeout
                self._echo(500)
            return
        self._echo(500 if segment == "hook" else 400)


@pytest.fixture
def hostile() -> Iterator[tuple[str, Counter[str]]]:
    class Handler(Hostile):  # a fresh counter and lock per test
        hits: ClassVar[Counter[str]] = Counter()
        lock: ClassVar[threading.Lock] = threading.Lock()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", Handler.hits
    finally:
        server.shutdown()
        server.server_close()


def _config(base: str, tmp: Path) -> dict[str, Any]:
    s = SECRETS
    (tmp / "slack_url").write_text(f"{base}/slack-b/{s['slack_file']}\n", encoding="utf-8")
    (tmp / "bad_url").write_text(f"http://hooks.example:{s['slack_badurl']}/x\n", encoding="utf-8")
    (tmp / "am_token").write_text(s["am_token"] + "\n", encoding="utf-8")
    dead = _closed_port()
    return {
        "sources": {
            "simulator": {"enabled": True, "speed": 60},
            "kafka": {
                "bootstrap_servers": f"127.0.0.1:{_closed_port()}",
                "security_protocol": "SASL_PLAINTEXT",
                "sasl_mechanism": "PLAIN",
                "sasl_username": "monitor",
                "sasl_password": s["kafka_sasl"],
                "ssl_keyfile_password": s["kafka_keyfile"],
                "reconnect_max_seconds": 1,
            },
            "mqtt": {
                "port": _closed_port(),
                "username": "monitor",
                "password": s["mqtt_password"],
                "reconnect_max_seconds": 1,
                "connect_timeout": 1,
            },
        },
        "detectors": {
            "thresholds": [
                {"name": "any_waiting", "metric": "support_queue_waiting", "op": ">=", "value": 0}
            ]
        },
        "alerts": {
            "rules": [
                {
                    "alert": "AnyWaiting",
                    "detector": "any_waiting",
                    "for": "0s",
                    "labels": {"team": CANARY},  # not a secret: must be found in the logs
                    "annotations": {"summary": "{channel} waiting"},
                }
            ]
        },
        "notifiers": {
            "receivers": {
                "slack-a": {
                    "type": "slack",
                    "webhook_url": f"{base}/slack-a/{s['slack_inline']}",
                    "timeout": "1s",
                    "rate_per_second": 50,
                    "burst": 10,
                },
                "slack-b": {
                    "type": "slack",
                    "webhook_url_file": str(tmp / "slack_url"),
                    "timeout": "1s",
                    "rate_per_second": 50,
                    "burst": 10,
                },
                "slack-dead": {
                    "type": "slack",
                    "webhook_url_env": "TEST_NO_SECRETS_SLACK_URL",
                    "timeout": "1s",
                },
                "slack-bad": {"type": "slack", "webhook_url_file": str(tmp / "bad_url")},
                "hook": {
                    "type": "webhook",
                    "url": f"{base}/hook?token={s['hook_url']}",
                    "headers": {"X-Api-Key": s["hook_header"]},
                    "bearer_token_env": "TEST_NO_SECRETS_BEARER",
                    "timeout": "1s",
                    "rate_per_second": 50,
                    "burst": 10,
                },
            },
            "routes": [
                {"receiver": name, "continue": True}
                for name in ("slack-a", "slack-b", "slack-dead", "slack-bad", "hook")
            ],
            "alertmanager": {
                "urls": [
                    f"http://{AM_USER}:{s['am_password']}@{base.removeprefix('http://')}/am",
                    f"http://127.0.0.1:{dead}/{s['am_path']}",
                ],
                "bearer_token_file": str(tmp / "am_token"),
                "resend_interval": "1s",
                "timeout": "1s",
            },
            "retry_for": "1h",
        },
    }


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["TEST_NO_SECRETS_SLACK_URL"] = f"http://127.0.0.1:{_closed_port()}/x/{SECRETS['slack_env']}"
    env["TEST_NO_SECRETS_BEARER"] = SECRETS["hook_bearer"]
    env.pop("SUPPORT_MONITOR_LOGGING__FORMAT", None)
    return env


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*EXE, *args], capture_output=True, text=True, timeout=120, env=_env(), check=False
    )


def _leaks(text: str) -> list[str]:
    return [name for name, value in _needles().items() if value in text]


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _break_line_of(path: Path, secret: str) -> None:
    """Make the line holding ``secret`` a YAML syntax error (an unterminated quote)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if secret in line:
            key, _, value = line.partition(": ")
            lines[i] = f'{key}: "{value.strip()}: oops'
            break
    else:
        raise AssertionError("secret not in the file")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_search_finds_a_planted_value() -> None:
    """The search itself works: a secret in a non-secret field is found."""
    assert _leaks(f"x {SECRETS['mqtt_password']} y") == ["mqtt_password"]
    assert _leaks(base64.b64encode(f"{AM_USER}:{SECRETS['am_password']}".encode()).decode()) == [
        "am_basic_auth"
    ]
    assert len(set(SECRETS.values())) == len(SECRETS)


def test_check_config_never_shows_a_secret(tmp_path: Path, hostile) -> None:
    base, _ = hostile
    data = _config(base, tmp_path)
    outputs: list[str] = []

    good = _cli("check-config", str(_write(tmp_path / "good.yaml", data)))
    assert good.returncode == 0, good.stderr
    outputs += [good.stdout, good.stderr]

    # a YAML syntax error on the line of each inline secret
    for name in (
        "slack_inline",
        "hook_url",
        "hook_header",
        "am_password",
        "kafka_sasl",
        "mqtt_password",
    ):
        path = _write(tmp_path / f"syntax-{name}.yaml", data)
        _break_line_of(path, SECRETS[name])
        result = _cli("check-config", str(path))
        assert result.returncode == 2
        assert "not valid YAML at line" in result.stderr, result.stderr
        outputs += [result.stdout, result.stderr]

    # invalid values next to secrets, and secrets that are themselves invalid
    bad = json.loads(json.dumps(data))
    bad["sources"]["kafka"]["max_batch"] = "many"
    bad["sources"]["mqtt"]["password"] = [SECRETS["mqtt_password"]]
    receivers = bad["notifiers"]["receivers"]
    receivers["slack-a"]["webhook_url"] = f"http://h:{SECRETS['slack_inline']}/"
    receivers["hook"]["timeout"] = -1
    bad["notifiers"]["alertmanager"]["urls"][0] = f"http://{AM_USER}:{SECRETS['am_password']}@h:x/"
    result = _cli("check-config", str(_write(tmp_path / "bad.yaml", bad)))
    assert result.returncode == 2
    for key in (
        "sources.kafka.max_batch",
        "sources.mqtt.password",
        "slack-a.webhook_url: is not a URL",
        "hook.timeout: a duration must not be negative",
    ):
        assert key in result.stderr, result.stderr
    outputs += [result.stdout, result.stderr]

    # one model-level check at a time (they run once the fields themselves are valid)
    variants: list[tuple[str, list[str], str]] = [
        (
            "notifiers.receivers.hook.url: must be an http:// or https:// URL",
            ["notifiers", "receivers", "hook", "url"],
            f"hooks.example/{SECRETS['hook_url']}",
        ),
        (
            "notifiers.alertmanager.urls[0]: is not a URL",
            ["notifiers", "alertmanager", "urls"],
            f"http://{AM_USER}:{SECRETS['am_password']}@h:x/",
        ),
        ("alerts.rules[0].channels: unknown channel", ["alerts", "rules", "channels"], CANARY),
    ]
    for i, (message, keys, value) in enumerate(variants):
        variant = json.loads(json.dumps(data))
        node = variant
        for key in keys[:-1]:
            node = node[key] if not isinstance(node, list) else node[0]
        node = node if not isinstance(node, list) else node[0]
        node[keys[-1]] = [value] if keys[-1] in ("urls", "channels") else value
        result = _cli("check-config", str(_write(tmp_path / f"variant{i}.yaml", variant)))
        assert result.returncode == 2
        assert message in result.stderr, result.stderr
        outputs += [result.stdout, result.stderr]
    assert CANARY in outputs[-1]  # the search of check-config output works: a channel is shown

    leaks = {name for text in outputs for name in _leaks(text)}
    assert not leaks, leaks


def _metrics(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""


def _counter(text: str, notifier: str, result: str) -> float:
    needle = f'support_monitor_notifications_total{{notifier="{notifier}",result="{result}"}} '
    for line in text.splitlines():
        if line.startswith(needle):
            return float(line.split()[-1])
    return 0.0


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.3)
    return False


def test_run_replay_and_reload_never_show_a_secret(tmp_path: Path, hostile) -> None:
    base, hits = hostile
    data = _config(base, tmp_path)
    config = _write(tmp_path / "config.yaml", data)
    port = free_port()
    out_path, err_path = tmp_path / "stdout.log", tmp_path / "stderr.log"
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen(
            [*EXE, "run", "--config", str(config), "--listen", f"127.0.0.1:{port}"],
            stdout=out,
            stderr=err,
            text=True,
            env=_env(),
        )
    scraped: list[str] = []
    try:
        # every receiver was tried, each way it can fail
        def delivered_everywhere() -> bool:
            text = _metrics(port)
            scraped.append(text)
            return (
                hits["slack-a"] >= 1
                and hits["slack-b"] >= 4  # 429, 500, reset, hang
                and hits["hook"] >= 2
                and hits["am"] >= 1
                and _counter(text, "slack-bad", "failed") >= 1
                and _counter(text, "slack-dead", "retry") >= 1
                and _counter(text, "alertmanager", "failed") >= 2
            )

        assert _wait(delivered_everywhere, 60), (dict(hits), err_path.read_text()[-3000:])
        assert proc.poll() is None, err_path.read_text()[-3000:]

        # a reload refused for a YAML syntax error on a secret's line...
        _break_line_of(config, SECRETS["slack_inline"])
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: err_path.read_text().count("config_reload_refused") >= 1, 20)
        # ...and for an invalid URL with credentials
        bad = json.loads(json.dumps(data))
        bad["notifiers"]["alertmanager"]["urls"][0] = (
            f"http://{AM_USER}:{SECRETS['am_password']}@h:x/"
        )
        _write(config, bad)
        proc.send_signal(signal.SIGHUP)
        assert _wait(lambda: err_path.read_text().count("config_reload_refused") >= 2, 20)
        scraped.append(_metrics(port))
        assert proc.poll() is None, err_path.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stderr = err_path.read_text()
    stdout = out_path.read_text()
    assert "not valid YAML at line" in stderr
    assert "urls[0]: is not a URL" in stderr
    assert CANARY in stderr  # the search of the daemon's logs works (the rule's team label)
    assert "notification_retry" in stderr
    assert "receiver_unavailable" in stderr

    # replay over the same config (it sends nothing, but loads and logs)
    _write(config, data)
    events = tmp_path / "events.jsonl"
    sim = _cli("simulate", "--out", str(events), "--duration", "10m")
    assert sim.returncode == 0, sim.stderr
    replay = _cli("replay", str(events), "--config", str(config))
    assert replay.returncode == 0, replay.stderr
    assert "support_alerts" in replay.stdout

    texts = {
        "run stdout": stdout,
        "run stderr": stderr,
        "metrics": "\n".join(scraped),
        "replay stdout": replay.stdout,
        "replay stderr": replay.stderr,
        "simulate": sim.stdout + sim.stderr,
    }
    leaks = {where: _leaks(text) for where, text in texts.items() if _leaks(text)}
    assert not leaks, leaks
