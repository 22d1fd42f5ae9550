"""Cluster mode against the real Kafka broker: three replicas (``support-monitor run`` with
``cluster.enabled``) in one consumer group on a 6-partition topic, events of 6 channels produced
by librdkafka (confluent-kafka, independent of the daemon's aiokafka) keyed by channel. One
replica is killed with SIGKILL mid-stream; later a fourth joins. At the end the per-channel
counters summed over the live replicas equal a single-process ``replay`` of the same events,
every channel is exported by exactly one replica, no alert notification (same fingerprint,
state and episode) reached the webhook receiver twice, and every paged episode was resolved.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.replay import replay
from tests.conftest_services import delete_kafka_topics
from tests.monitor.cluster.cluster_scene import (
    Hook,
    cluster_config,
    cluster_events,
    scrape,
    served,
)
from tests.monitor.cluster.replicas import (
    Node,
    contacts_waiting_paged,
    produce,
    replica_config,
    wait_until,
)
from tests.processes import free_port
from tests.support import EVENT_ONLY, samples

pytestmark = pytest.mark.kafka

COUNTERS = EVENT_ONLY


@pytest.fixture
def hook() -> Iterator[Hook]:
    server = Hook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _totals(nodes: list[Node]) -> tuple[dict[Any, float], Counter[Any]]:
    """Compared counters summed over replicas, and how many replicas export each series."""
    summed: dict[Any, float] = {}
    exporters: Counter[Any] = Counter()
    for node in nodes:
        for key, value in scrape(node).items():
            if key[0] in COUNTERS:
                summed[key] = summed.get(key, 0.0) + value
                exporters[key] += 1
    return summed, exporters


def test_three_replicas_sigkill_and_join(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    tmp_path: Path,
    nodes: list[Node],
    hook: Hook,
) -> None:
    topic = make_kafka_topic(partitions=6, prefix="cluster")
    group = f"cluster-{uuid.uuid4().hex[:8]}"
    base = cluster_config()

    def start(name: str) -> Node:
        config = tmp_path / f"{name}.yaml"
        cfg = replica_config(
            kafka_bootstrap,
            topic,
            group,
            kafka={"max_batch": 50, "reconnect_max_seconds": 2},
            exporter={"tick_seconds": 0.25},
            cluster={"snapshot_interval": 0.5},
            **base,
        )
        config.write_text(yaml.safe_dump({**cfg, **contacts_waiting_paged(hook.url)}))
        node = Node(config, tmp_path, name)
        nodes.append(node)
        return node

    try:
        events = cluster_events(uuid.uuid4().hex[:6], contacts=120, tickets=60)
        path = tmp_path / "events.jsonl"
        path.write_text("".join(line + "\n" for _, line in events))
        expected_text = asyncio.run(replay(path, parse_settings(base)))
        expected = {k: v for k, v in samples(expected_text.decode()).items() if k[0] in COUNTERS}
        assert len(expected) > 60

        a, b, c = start("a"), start("b"), start("c")
        live = [a, b, c]
        wait_until(
            lambda: (
                sorted(served(live).values()) == [1] * 6
                and all(sum(served([n]).values()) == 2 for n in live)
            ),
            60,
            "6 partitions served once, 2 by each of the 3 replicas",
        )
        chunks = 12
        size = -(-len(events) // chunks)
        parts = [events[i : i + size] for i in range(0, len(events), size)]
        for part in parts[:4]:
            produce(kafka_bootstrap, topic, part)
            time.sleep(0.6)
        # The victim owns partitions and has applied events of them.
        victim = max(
            live,
            key=lambda n: sum(
                v for (name, _), v in scrape(n).items() if name == "support_contacts_queued_total"
            ),
        )
        victim.stop(signal.SIGKILL)
        live.remove(victim)
        for part in parts[4:8]:
            produce(kafka_bootstrap, topic, part)
            time.sleep(0.6)
        live.append(start("d"))
        for part in parts[8:]:
            produce(kafka_bootstrap, topic, part)
            time.sleep(0.6)

        def converged() -> bool:
            if sorted(served(live).values()) != [1] * 6:
                return False
            summed, _ = _totals(live)
            return all(summed.get(k) == v for k, v in expected.items())

        try:
            wait_until(converged, 60, "the replicas' counters to sum to the replay's")
        except AssertionError:
            summed, _ = _totals(live)
            diff = {k: (summed.get(k), v) for k, v in expected.items() if summed.get(k) != v}
            logs = "\n".join(f"--- {n.log.name}\n{n.text()[-3000:]}" for n in nodes)
            raise AssertionError(
                f"{len(diff)} series differ, e.g. {list(diff.items())[:5]}\n{logs}"
            ) from None
        summed, exporters = _totals(live)
        assert {k: v for k, v in summed.items() if k in expected} == expected
        assert set(summed) == set(expected)  # no extra series (no other replica's zeros)
        assert set(exporters.values()) == {1}, "a series exported by two replicas"

        # Alerts: wait until every contact left its queue and the alerts resolved.
        wait_until(
            lambda: all(
                v == 0
                for (name, _), v in _totals(live)[0].items()
                if name == "support_queue_waiting"
            ),
            30,
            "queues empty",
        )

        def episodes(status: str) -> set[tuple[str, str]]:
            with hook.lock:
                return {(fp, starts) for fp, st, starts, _ in hook.alerts if st == status}

        # No resolve dropped: every episode that was paged is resolved, by whichever replica
        # owned the channel when its queue emptied.
        wait_until(
            lambda: bool(episodes("firing")) and episodes("firing") <= episodes("resolved"),
            30,
            "a resolve for every firing notification",
        )
        time.sleep(1.0)
        with hook.lock:
            notified = list(hook.alerts)
        keys = Counter((fp, status, starts) for fp, status, starts, _ in notified)
        twice = {k: n for k, n in keys.items() if n > 1}
        assert not twice, f"notified more than once: {twice}"
        firing = {(fp, s) for fp, status, s, _ in notified if status == "firing"}
        assert firing, "the scenario should have fired alerts"
        for node in live:
            assert node.proc.poll() is None, node.text()[-3000:]
            text = node.text()
            assert "Traceback" not in text, text[-3000:]
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.stop(signal.SIGTERM, timeout=30)
        delete_kafka_topics(kafka_bootstrap, [f"{group}.state"])


def test_corrupt_partition_snapshot_is_refused_and_rebuilt(
    kafka_bootstrap: str,
    make_kafka_topic: Callable[..., str],
    tmp_path: Path,
    nodes: list[Node],
) -> None:
    """A replica stopped, its partitions' records in the state topic replaced by garbage and
    by a snapshot failing its checksum: on restart both are refused (``snapshot_refused``) and
    the partitions rebuilt from the beginning, to the same counters as a replay."""
    from support_monitor.monitor.cluster import store  # noqa: PLC0415
    from support_monitor.monitor.engine import snapshot  # noqa: PLC0415
    from support_monitor.monitor.engine.engine import Engine  # noqa: PLC0415

    topic = make_kafka_topic(partitions=2, prefix="cluster-corrupt")
    group = f"cluster-{uuid.uuid4().hex[:8]}"
    base = cluster_config()
    config = tmp_path / "r.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                **base,
                "sources": {
                    "simulator": {"enabled": False},
                    "kafka": {
                        "bootstrap_servers": kafka_bootstrap,
                        "topics": [topic],
                        "group_id": group,
                        "max_batch": 50,
                        "poll_timeout": 0.2,
                    },
                },
                "exporter": {"listen": f"127.0.0.1:{free_port()}"},
                "logging": {"format": "json"},
                "cluster": {"enabled": True, "snapshot_interval": 0.5},
            }
        )
    )
    try:
        events = cluster_events(uuid.uuid4().hex[:6], contacts=40, tickets=20)
        path = tmp_path / "events.jsonl"
        path.write_text("".join(line + "\n" for _, line in events))
        expected_text = asyncio.run(replay(path, parse_settings(base)))
        expected = {k: v for k, v in samples(expected_text.decode()).items() if k[0] in COUNTERS}
        produce(kafka_bootstrap, topic, events)

        def exact() -> bool:
            summed, _ = _totals(nodes)
            return all(summed.get(k) == v for k, v in expected.items())

        first = Node(config, tmp_path, "first")
        nodes.append(first)
        wait_until(exact, 60, "counters equal the replay's", first)
        assert first.stop(signal.SIGTERM) == 0
        assert "snapshot_written" in first.text()

        from confluent_kafka import Producer  # noqa: PLC0415

        engine = snapshot.encode(snapshot.capture(Engine(parse_settings(base)), {(topic, 1): 5}))
        broken = engine[:-3] + bytes(b ^ 0xFF for b in engine[-3:])
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        producer.produce(f"{group}.state", key=f"{topic}/0", value=b"not a snapshot")
        producer.produce(
            f"{group}.state",
            key=f"{topic}/1",
            value=store.encode(
                store.PartitionSnapshot(
                    key=f"{topic}/1",
                    offset=5,
                    engine=broken,
                    alerts=None,
                    writer="test",
                    written_at=time.time(),
                )
            ),
        )
        assert producer.flush(30) == 0

        nodes.remove(first)
        second = Node(config, tmp_path, "second")
        nodes.append(second)
        wait_until(exact, 60, "counters rebuilt to the replay's", second)
        text = second.text()
        assert text.count('"snapshot_refused"') == 2, text[-3000:]
        assert "checksum" in text, text[-3000:]
    finally:
        for node in nodes:
            if node.proc.poll() is None:
                node.stop(signal.SIGTERM, timeout=30)
        delete_kafka_topics(kafka_bootstrap, [f"{group}.state"])
