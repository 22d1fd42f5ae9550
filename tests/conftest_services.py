"""Pytest plugin: fixtures for the local servers started by deploy/local/services.sh.

Register it from tests/conftest.py (``pytest_plugins = ["tests.conftest_services"]``) or on the
command line (``-p tests.conftest_services``).

Every fixture checks that its server answers. When it does not, the test is skipped with a
message naming the start script, except on CI (env ``CI`` set) or with
``SUPPORT_MONITOR_REQUIRE_SERVICES=1``, where it fails: a CI run that silently skipped every
integration test would prove nothing.

Ports follow the same env variables as the scripts: KAFKA_PORT, MQTT_PORT, PROM_PORT, AM_PORT.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_DIR = REPO_ROOT / "deploy" / "local"
KAFKA_SH = LOCAL_DIR / "kafka.sh"
SERVICES_SH = "deploy/local/services.sh up"
INSTALL_SH = "deploy/local/install.sh"

HOST = "127.0.0.1"
KAFKA_PORT = int(os.environ.get("KAFKA_PORT", "19092"))
MQTT_PORT = int(os.environ.get("MQTT_PORT", "11883"))
PROM_PORT = int(os.environ.get("PROM_PORT", "19090"))
AM_PORT = int(os.environ.get("AM_PORT", "19093"))

# Separates key from value on a console-producer line: a control character that JSON text and
# ordinary keys never contain.
_KEY_SEPARATOR = "\x1f"


def services_required() -> bool:
    """True on CI or when SUPPORT_MONITOR_REQUIRE_SERVICES=1: a missing server fails the test."""
    return bool(os.environ.get("CI")) or os.environ.get("SUPPORT_MONITOR_REQUIRE_SERVICES") == "1"


def unavailable(message: str) -> NoReturn:
    """Skip (developer machine) or fail (CI) because a server or tool is missing."""
    if services_required():
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def tcp_open(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def http_ready(url: str, timeout: float = 2.0) -> bool:
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"not an http(s) URL: {url}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError):
        return False


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """Bootstrap address of the local Kafka broker (deploy/local/kafka.sh)."""
    if not tcp_open(HOST, KAFKA_PORT):
        unavailable(
            f"Kafka is not reachable on {HOST}:{KAFKA_PORT}; start it with "
            f"deploy/local/kafka.sh start (or {SERVICES_SH})"
        )
    return f"{HOST}:{KAFKA_PORT}"


@pytest.fixture(scope="session")
def mqtt_address() -> tuple[str, int]:
    """(host, port) of the local Mosquitto broker (deploy/local/mosquitto.sh)."""
    if not tcp_open(HOST, MQTT_PORT):
        unavailable(
            f"Mosquitto is not reachable on {HOST}:{MQTT_PORT}; start it with "
            f"deploy/local/mosquitto.sh start (or {SERVICES_SH})"
        )
    return (HOST, MQTT_PORT)


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """Base URL of the local Prometheus (deploy/local/prometheus.sh), no trailing slash."""
    url = f"http://{HOST}:{PROM_PORT}"
    if not http_ready(f"{url}/-/ready"):
        unavailable(
            f"Prometheus is not ready at {url}; start it with "
            f"deploy/local/prometheus.sh start (or {SERVICES_SH})"
        )
    return url


@pytest.fixture(scope="session")
def alertmanager_url() -> str:
    """Base URL of the local Alertmanager (deploy/local/alertmanager.sh), no trailing slash."""
    url = f"http://{HOST}:{AM_PORT}"
    if not http_ready(f"{url}/-/ready"):
        unavailable(
            f"Alertmanager is not ready at {url}; start it with "
            f"deploy/local/alertmanager.sh start (or {SERVICES_SH})"
        )
    return url


# --- tools -----------------------------------------------------------------------------------


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        unavailable(
            f"{name} not found on PATH (Debian package {package}); install it with {INSTALL_SH}"
        )
    return path


@pytest.fixture(scope="session")
def promtool() -> str:
    """Path of promtool (Debian package prometheus)."""
    return _tool("promtool", "prometheus")


@pytest.fixture(scope="session")
def amtool() -> str:
    """Path of amtool (Debian package prometheus-alertmanager)."""
    return _tool("amtool", "prometheus-alertmanager")


# --- Kafka helpers ---------------------------------------------------------------------------


def unique_topic_name(prefix: str = "test") -> str:
    """A topic name no other test (or earlier run) uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_kafka_topic(
    bootstrap: str,
    name: str,
    partitions: int = 4,
    timeout: float = 30.0,
    config: dict[str, str] | None = None,
) -> None:
    """Create NAME with PARTITIONS partitions (replication 1) and the topic CONFIG, and wait
    until it exists."""
    # dev-only dependency: imported when a test needs it
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415
    from confluent_kafka.cimpl import NewTopic  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        operation_timeout=timeout,
        request_timeout=timeout,
    )
    futures[name].result(timeout=timeout)


def delete_kafka_topics(bootstrap: str, names: Iterable[str], timeout: float = 30.0) -> None:
    from confluent_kafka.admin import AdminClient  # noqa: PLC0415 - dev-only dependency

    names = list(names)
    if not names:
        return
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(names, operation_timeout=timeout).values():
        future.result(timeout=timeout)


@pytest.fixture
def make_kafka_topic(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Factory ``make_kafka_topic(partitions=4, prefix="test", config=None) -> name``; deleted
    afterwards."""
    created: list[str] = []

    def make(
        partitions: int = 4, prefix: str = "test", config: dict[str, str] | None = None
    ) -> str:
        name = unique_topic_name(prefix)
        create_kafka_topic(kafka_bootstrap, name, partitions, config=config)
        created.append(name)
        return name

    yield make
    try:
        delete_kafka_topics(kafka_bootstrap, created)
    except Exception as exc:  # a broker stopped by the test itself must not fail teardown
        print(f"could not delete topics {created}: {exc}")


@pytest.fixture
def kafka_topic(make_kafka_topic: Callable[..., str]) -> str:
    """A fresh 4-partition topic for this test."""
    return make_kafka_topic()


def _kafka_env() -> dict[str, str]:
    return {**os.environ, "KAFKA_PORT": str(KAFKA_PORT)}


def kafka_console_produce(
    topic: str, lines: Iterable[str], key: str | None = None, timeout: float = 120.0
) -> None:
    """Send each line as one record with Kafka's own console producer (kafka.tools.ConsoleProducer
    from the jars deploy/local/install.sh fetched): a producer independent of the code under test.

    With ``key``, every record carries that key (so they all land in one partition, in order).
    """
    payload = list(lines)
    for line in payload:
        if "\n" in line or "\r" in line:
            raise ValueError(f"a record must be a single line: {line!r}")
    env = _kafka_env()
    if key is not None:
        if _KEY_SEPARATOR in key:
            raise ValueError(f"key must not contain \\x1f: {key!r}")
        payload = [f"{key}{_KEY_SEPARATOR}{line}" for line in payload]
        env["KAFKA_KEY_SEPARATOR"] = _KEY_SEPARATOR
    else:
        env.pop("KAFKA_KEY_SEPARATOR", None)
    result = subprocess.run(
        [str(KAFKA_SH), "produce", topic],
        input="".join(f"{line}\n" for line in payload),
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"console producer failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}"
        )


def kafka_console_consume(
    topic: str, max_messages: int, timeout_ms: int = 15000
) -> list[tuple[str | None, str]]:
    """Read up to MAX records from the beginning of TOPIC with Kafka's console consumer.

    Returns (key, value) pairs; key is None for records without one.
    """
    env = {**_kafka_env(), "KAFKA_PRINT_KEY": "1"}
    result = subprocess.run(
        [str(KAFKA_SH), "consume", topic, str(max_messages), str(timeout_ms)],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_ms / 1000 + 60,
        check=False,
    )
    records: list[tuple[str | None, str]] = []
    for line in result.stdout.splitlines():
        key, _, value = line.partition("\t")
        records.append((None if key == "null" else key, value))
    return records


@pytest.fixture(name="kafka_console_produce")
def kafka_console_produce_fixture(kafka_bootstrap: str) -> Callable[..., None]:
    """The :func:`kafka_console_produce` helper, after checking the broker is up."""
    return kafka_console_produce


@pytest.fixture(name="kafka_console_consume")
def kafka_console_consume_fixture(
    kafka_bootstrap: str,
) -> Callable[..., list[tuple[str | None, str]]]:
    """The :func:`kafka_console_consume` helper, after checking the broker is up."""
    return kafka_console_consume
