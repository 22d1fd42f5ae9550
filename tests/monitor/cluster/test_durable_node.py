"""A single node with a state directory against the real Kafka broker: killed with SIGKILL
mid-stream and restarted, it resumes from its snapshot's offsets (nothing before them is read
again, nothing after them is missed), keeps its de-duplication window and the deadlines of a
ticket opened days ago; a corrupt snapshot is refused and the state rebuilt from the broker.
Final numbers are compared with ``monitor.replay.replay`` of the same events.

Events are produced by librdkafka (confluent-kafka), a client independent of the daemon's
aiokafka, keyed by channel so each channel's events stay in order in one partition.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.replay import replay
from tests.integration.broker_scenario import Scenario
from tests.monitor.cluster.replicas import REPO, Node, produce, wait_until
from tests.processes import free_port
from tests.support import CONFIG, EVENT_ONLY, samples

pytestmark = pytest.mark.kafka

COMPARED = EVENT_ONLY
"""Numbers that do not depend on when the wall clock ticked (plus the email SLA breaches, whose
deadlines are hours away except for the old ticket's; compared separately)."""
OLD_TICKET_INGEST = {"max_event_age": "3d"}
"""The scenario's ticket opened two days ago is older than the default ``max_event_age`` (1 d)."""


def _keyed(scenario: Scenario) -> list[tuple[str, str]]:
    return [(ch, line) for ch, lines in scenario.by_channel.items() for line in lines]


def _snapshot_offsets(path: Path) -> int:
    try:
        return sum(off for _, _, off in snapshot.decode(path.read_bytes()).offsets)
    except (OSError, snapshot.SnapshotError):
        return -1


def _compare(node: Node, expected: dict[Any, float]) -> None:
    got = node.metrics()
    compared = 0
    for key, value in expected.items():
        name, labels = key
        email_breach = name == "support_sla_breaches_total" and ("channel", "email") in labels
        if name in COMPARED or email_breach:
            assert got.get(key) == value, (key, got.get(key), value)
            compared += 1
    assert compared > 50


def test_sigkill_restart_and_corrupt_snapshot(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    tmp_path: Path,
    nodes: list[Node],
) -> None:
    topic = make_kafka_topic(partitions=3, prefix="durable")
    state_dir = tmp_path / "state"
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **CONFIG,
                "ingest": OLD_TICKET_INGEST,
                "sources": {
                    "simulator": {"enabled": False},
                    "kafka": {
                        "bootstrap_servers": kafka_bootstrap,
                        "topics": [topic],
                        "group_id": f"durable-{uuid.uuid4().hex[:8]}",
                        "max_batch": 50,
                        "poll_timeout": 0.2,
                        "reconnect_max_seconds": 2,
                    },
                },
                "exporter": {"listen": f"127.0.0.1:{free_port()}"},
                "logging": {"format": "json"},
                "state": {"dir": str(state_dir), "snapshot_interval": 0.2},
            }
        )
    )
    snap = state_dir / "engine.snapshot"

    tag = uuid.uuid4().hex[:6]
    first = Scenario(f"{tag}a")
    first.contacts("voice", ("billing", "tech"), 300)
    first.contacts("chat", ("sales", "support"), 300)
    first.tickets(150)
    # A ticket opened two days ago, never answered: both its deadlines passed before the
    # restart and must be counted exactly once, and it stays open across restarts.
    first.event("ticket.created", -2 * 86400, "email", ticket_id=f"{tag}-old")
    second = Scenario(f"{tag}b", base=first.base)
    second.contacts("voice", ("billing", "tech"), 1200, start=300)
    second.contacts("chat", ("sales", "support"), 1200, start=300)
    second.tickets(500, start=150)
    a, b = _keyed(first), _keyed(second)
    # The first half of each channel's events comes before the kill, the rest after it.
    halves = [
        (ch, lines[: len(lines) // 2], lines[len(lines) // 2 :])
        for ch, lines in second.by_channel.items()
    ]
    b1 = [(ch, line) for ch, head, _ in halves for line in head]
    b2 = [(ch, line) for ch, _, tail in halves for line in tail]
    total = len(a) + len(b)

    # --- run 1: everything in A applied and in a snapshot, then B arrives and SIGKILL hits.
    produce(kafka_bootstrap, topic, a)
    node = Node(config, tmp_path, "run1")
    nodes.append(node)
    wait_until(lambda: node.counts()[0] == len(a), 60, "run 1 to apply A", node)
    wait_until(lambda: _snapshot_offsets(snap) == len(a), 30, "a snapshot covering A", node)
    wait_until(node.ready, 30, "run 1 ready", node)
    producer = threading.Thread(target=produce, args=(kafka_bootstrap, topic, b1, 20, 0.1))
    producer.start()
    try:
        wait_until(lambda: node.counts()[0] >= len(a) + len(b1) // 3, 60, "run 1 mid-stream", node)
        node.proc.kill()
        node.proc.wait(timeout=30)
    finally:
        producer.join(timeout=60)
    in_snapshot = _snapshot_offsets(snap)
    assert len(a) <= in_snapshot <= len(a) + len(b1)
    produce(kafka_bootstrap, topic, b2)

    # --- run 2: resumes at the snapshot's offsets: reads exactly the records after them.
    node = Node(config, tmp_path, "run2")
    nodes.append(node)
    wait_until(lambda: node.counts()[0] >= total - in_snapshot, 60, "run 2 to catch up", node)
    wait_until(node.ready, 30, "run 2 ready", node)
    time.sleep(1.0)  # anything read twice would show up now
    assert node.counts() == (total - in_snapshot, 0)
    assert '"snapshot_loaded"' in node.text()

    # Redeliveries of events the snapshot already holds: the restored window drops them.
    redelivered = a[:: max(1, len(a) // 25)]
    produce(kafka_bootstrap, topic, redelivered)
    wait_until(lambda: node.counts()[1] == len(redelivered), 30, "redeliveries de-duplicated", node)

    events = tmp_path / "all.jsonl"
    events.write_text("".join(f"{line}\n" for _, line in [*a, *b1, *b2, *redelivered]))
    settings = parse_settings({**CONFIG, "ingest": OLD_TICKET_INGEST})
    expected = samples(replay_sync(events, settings))
    assert (
        expected[
            "support_sla_breaches_total",
            (("channel", "email"), ("queue", "default"), ("sla", "resolution")),
        ]
        == 1
    )
    _compare(node, expected)

    # --- run 3: a graceful stop writes a last snapshot; corrupted, it is refused and the state
    # is rebuilt from the beginning of every partition, with the same final numbers.
    assert node.stop() == 0
    assert '"reason": "shutdown"' in node.text() or '"reason":"shutdown"' in node.text()
    assert _snapshot_offsets(snap) == total + len(redelivered)
    data = bytearray(snap.read_bytes())
    data[len(data) // 2] ^= 0xFF
    snap.write_bytes(bytes(data))
    node = Node(config, tmp_path, "run3")
    nodes.append(node)
    wait_until(lambda: node.counts()[0] >= total + len(redelivered), 60, "run 3 to rebuild", node)
    wait_until(node.ready, 30, "run 3 ready", node)
    time.sleep(0.5)
    assert node.counts() == (total + len(redelivered), len(redelivered))
    log = node.text()
    assert '"snapshot_refused"' in log
    assert "checksum mismatch: the file is corrupt" in log
    assert list(state_dir.glob("engine.snapshot.refused-*"))
    _compare(node, expected)
    assert node.stop() == 0


def replay_sync(path: Path, settings: Any) -> str:
    import asyncio  # noqa: PLC0415

    return asyncio.run(replay(path, settings)).decode()


def test_unreadable_state_block_is_a_config_error(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(json.dumps({"state": {"snapshot_interval": -1}}))
    result = subprocess.run(
        [sys.executable, "-m", "support_monitor", "check-config", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "state.snapshot_interval" in result.stderr
