"""MQTT source over TLS (a Mosquitto of the test's own with a private CA and client
certificates) and as shared subscribers (``shared_group``) on the local Mosquitto."""

from __future__ import annotations

import asyncio
import getpass
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from support_monitor.monitor.consume import consume
from support_monitor.monitor.sources.build import dead_letter_sink
from support_monitor.monitor.sources.mqtt import MqttSource, subscription_filters
from tests.conftest_services import tcp_open
from tests.integration.broker_scenario import LiveEngine, Scenario, processed, wait_for
from tests.integration.test_brokers_mqtt import mosquitto_pub, mqtt_settings
from tests.processes import free_port
from tests.support import settings as make_settings

pytestmark = pytest.mark.mqtt

HOST = "127.0.0.1"


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(directory: Path, name: str) -> None:
    """``{name}-ca.pem``, a server certificate for 127.0.0.1 and a client certificate, both
    signed by that CA (keys beside them)."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        "-subj", f"/CN={name} test CA", "-keyout", f"{name}-ca.key", "-out", f"{name}-ca.pem",
        cwd=directory,
    )  # fmt: skip
    (directory / "san.cnf").write_text("subjectAltName = IP:127.0.0.1\n")
    for role, extra in (("server", ["-extfile", "san.cnf"]), ("client", [])):
        _openssl(
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={role}",
            "-keyout", f"{name}-{role}.key", "-out", f"{name}-{role}.csr", cwd=directory,
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", f"{name}-{role}.csr", "-CA", f"{name}-ca.pem",
            "-CAkey", f"{name}-ca.key", "-CAcreateserial", "-days", "2",
            "-out", f"{name}-{role}.pem", *extra, cwd=directory,
        )  # fmt: skip


@pytest.fixture
def tls_mosquitto(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A Mosquitto with one TLS listener that requires a client certificate of our CA."""
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists() or shutil.which("openssl") is None:
        pytest.skip("mosquitto or openssl not found; run deploy/local/install.sh")
    _certificates(tmp_path, "good")
    _certificates(tmp_path, "other")
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} {HOST}\n"
        f"user {getpass.getuser()}\n"  # as root it would switch to 'mosquitto': keys unreadable
        "allow_anonymous true\n"
        "persistence false\n"
        f"cafile {tmp_path / 'good-ca.pem'}\n"
        f"certfile {tmp_path / 'good-server.pem'}\n"
        f"keyfile {tmp_path / 'good-server.key'}\n"
        "require_certificate true\n"
    )
    broker = subprocess.Popen(
        [exe, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 30
        while not tcp_open(HOST, port):  # listening before a test's first connection attempt
            assert broker.poll() is None, "mosquitto exited"
            assert time.monotonic() < deadline, "mosquitto is not listening"
            time.sleep(0.05)
        yield port, tmp_path
    finally:
        broker.terminate()
        broker.wait(timeout=30)


def _tls_pub(port: int, certs: Path, topic: str, lines: list[str]) -> None:
    exe = shutil.which("mosquitto_pub")
    if exe is None:
        pytest.skip("mosquitto_pub not found; run deploy/local/install.sh")
    subprocess.run(
        [
            exe, "-h", HOST, "-p", str(port), "-q", "1", "-t", topic, "-l",
            "--cafile", str(certs / "good-ca.pem"),
            "--cert", str(certs / "good-client.pem"), "--key", str(certs / "good-client.key"),
        ],
        input="".join(f"{line}\n" for line in lines),
        text=True,
        check=True,
        timeout=60,
    )  # fmt: skip


def _tls_settings(port: int, certs: Path, prefix: str, ca: str) -> Any:
    return mqtt_settings(
        HOST,
        port,
        prefix,
        tls=True,
        ca_file=str(certs / f"{ca}-ca.pem"),
        cert_file=str(certs / "good-client.pem"),
        key_file=str(certs / "good-client.key"),
    )


async def test_tls_with_a_private_ca_and_a_client_certificate(tls_mosquitto):
    port, certs = tls_mosquitto
    prefix = f"test/{uuid.uuid4().hex[:8]}/events"
    scenario = Scenario("tls")
    scenario.contacts("voice", ("billing", "tech"), 20)
    settings = _tls_settings(port, certs, prefix, "good")
    live = LiveEngine(settings)
    source = MqttSource(settings.sources.mqtt, live.stats)
    async with source:
        task = asyncio.create_task(
            consume(source, live.pipeline, dead_letter_sink(source, live.fallback))
        )
        try:
            await wait_for(lambda: live.stats.source_up.get("mqtt") is True, 30, "connected")
            await asyncio.to_thread(_tls_pub, port, certs, f"{prefix}/voice", scenario.lines())
            await wait_for(lambda: processed(live.stats) >= len(scenario.lines()), 60, "all")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert processed(live.stats) == len(scenario.lines())
    assert sum(live.stats.rejected.values()) == 0


async def test_a_server_certificate_of_another_ca_is_refused_with_one_warning(tls_mosquitto):
    port, certs = tls_mosquitto
    settings = _tls_settings(port, certs, f"test/{uuid.uuid4().hex[:8]}/events", "other")
    live = LiveEngine(settings)
    source = MqttSource(settings.sources.mqtt, live.stats)
    with capture_logs() as logs:
        async with source:
            task = asyncio.create_task(
                consume(source, live.pipeline, dead_letter_sink(source, live.fallback))
            )
            await asyncio.sleep(3.5)  # reconnect_max_seconds 1: several attempts
            assert not task.done()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    assert live.stats.source_up["mqtt"] is False
    failed = [line for line in logs if line["event"] == "mqtt_connect_failed"]
    assert len(failed) >= 2
    assert [line["log_level"] for line in failed[:2]] == ["warning", "debug"]
    assert "CERTIFICATE_VERIFY_FAILED" in failed[0]["error"]


async def test_shared_subscribers_split_the_messages_between_them(mqtt_address):
    host, port = mqtt_address
    prefix = f"test/{uuid.uuid4().hex[:8]}/events"
    group = f"g{uuid.uuid4().hex[:8]}"
    scenario = Scenario("shared")
    scenario.contacts("voice", ("billing", "tech"), 100)
    lives = []
    sources = []
    for _ in range(2):
        settings = mqtt_settings(host, port, prefix, shared_group=group)
        live = LiveEngine(settings)
        lives.append(live)
        sources.append(MqttSource(settings.sources.mqtt, live.stats))
    async with sources[0], sources[1]:
        tasks = [
            asyncio.create_task(
                consume(source, live.pipeline, dead_letter_sink(source, live.fallback))
            )
            for source, live in zip(sources, lives, strict=True)
        ]
        try:
            await wait_for(
                lambda: all(live.stats.source_up.get("mqtt") is True for live in lives), 30, "up"
            )
            # queued events only: each stands alone, whichever daemon of the group gets it
            # (an answer whose queued went to the other one is held, then unknown_contact)
            lines = [line for line in scenario.lines() if '"contact.queued"' in line]
            assert len(lines) == 100
            await asyncio.to_thread(mosquitto_pub, host, port, f"{prefix}/voice", lines)
            await wait_for(
                lambda: sum(processed(live.stats) for live in lives) >= len(lines),
                60,
                "all",
            )
            await asyncio.sleep(1.0)  # a copy delivered to both would arrive by now
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    counts = [processed(live.stats) for live in lives]
    assert sum(counts) == len(lines)  # each message to one of the group, none to both
    assert min(counts) > 0  # and the broker gave each of them some


def test_shared_group_subscribes_the_share_filter() -> None:
    settings = make_settings(
        sources={
            "mqtt": {"host": HOST, "topics": ["a/#", "b/+/c"], "shared_group": "replicas"},
            "simulator": {"enabled": False},
        }
    )
    source = settings.sources.mqtt
    assert source is not None
    assert subscription_filters(source) == ["$share/replicas/a/#", "$share/replicas/b/+/c"]
