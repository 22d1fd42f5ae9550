"""Cluster replicas as subprocesses (support-monitor run), producing keyed records, and
waiting on them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from tests.processes import free_port
from tests.support import CONFIG, samples

REPO = Path(__file__).resolve().parents[3]


def produce(
    bootstrap: str, topic: str, records: list[tuple[str, str]], chunks: int = 1, pause: float = 0.0
) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415 - dev-only dependency

    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    size = max(1, -(-len(records) // chunks))
    for start in range(0, len(records), size):
        for key, value in records[start : start + size]:
            producer.produce(topic, value=value.encode(), key=key.encode())
        assert producer.flush(30) == 0
        if pause:
            time.sleep(pause)


class Node:
    """``support-monitor run`` with a state dir, as a subprocess; logs kept in files."""

    def __init__(self, config: Path, workdir: Path, name: str) -> None:
        self.port = int(yaml.safe_load(config.read_text())["exporter"]["listen"].split(":")[1])
        self.log = workdir / f"{name}.log"
        env = {**os.environ, "PYTHONHASHSEED": "4242", "PYTHONPATH": str(REPO)}
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "support_monitor", "run", "--config", str(config)],
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def metrics(self) -> dict[Any, float]:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return samples(response.read().decode())

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as r:
                return int(r.status) == 200
        except (urllib.error.URLError, OSError):
            return False

    def counts(self) -> tuple[int, int]:
        """(records handled: applied + rejected + duplicates, duplicates) since this start."""
        try:
            m = self.metrics()
        except (urllib.error.URLError, OSError):
            return -1, -1
        handled = dup = 0
        for (name, _), value in m.items():
            if name in ("support_monitor_events_total", "support_monitor_events_rejected_total"):
                handled += int(value)
            elif name == "support_monitor_events_duplicate_total":
                handled += int(value)
                dup += int(value)
        return handled, dup

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)


def wait_until(
    predicate: Callable[[], bool], timeout: float, what: str, node: Node | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if node is not None and node.proc.poll() is not None:
            raise AssertionError(
                f"node exited ({node.proc.returncode}) waiting for {what}:\n{node.text()[-4000:]}"
            )
        if time.monotonic() > deadline:
            log = node.text()[-4000:] if node is not None else ""
            raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{log}")
        time.sleep(0.05)


def replica_config(
    bootstrap: str,
    topic: str,
    group: str,
    *,
    kafka: dict[str, Any] | None = None,
    exporter: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A replica's config: the test windows and channels, Kafka the only source (``kafka``
    adds to its section), its own port, JSON logs, cluster mode (``cluster`` adds to it);
    ``sections`` replace or add top-level sections."""
    return {
        **{k: v for k, v in CONFIG.items() if k in ("windows", "channels")},
        "sources": {
            "simulator": {"enabled": False},
            "kafka": {
                "bootstrap_servers": bootstrap,
                "topics": [topic],
                "group_id": group,
                "poll_timeout": 0.2,
                **(kafka or {}),
            },
        },
        "exporter": {"listen": f"127.0.0.1:{free_port()}", **(exporter or {})},
        "logging": {"format": "json"},
        "cluster": {"enabled": True, **(cluster or {})},
        **sections,
    }


def contacts_waiting_paged(hook_url: str, hold: str = "0s") -> dict[str, Any]:
    """The ``detectors``, ``alerts`` and ``notifiers`` sections of a rule ``ContactsWaiting``
    (a contact waiting, for ``hold``) paged to the webhook at ``hook_url``, one group per
    alert, sent at once."""
    return {
        "detectors": {
            "thresholds": [
                {"name": "waiting", "metric": "support_queue_waiting", "op": ">", "value": 0},
            ]
        },
        "alerts": {"rules": [{"alert": "ContactsWaiting", "detector": "waiting", "for": hold}]},
        "notifiers": {
            "receivers": {"hook": {"type": "webhook", "url": hook_url, "repeat_interval": "1h"}},
            "routes": [
                {
                    "receiver": "hook",
                    "group_by": ["alertname", "channel", "queue"],
                    "group_wait": 0,
                    "group_interval": 0,
                }
            ],
        },
    }
