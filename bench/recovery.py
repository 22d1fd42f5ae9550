"""Snapshot cost per 100,000 open items: size, capture (on the loop), encode, write + fsync,
and load (decode + checks + restore + timer rebuild), for waiting contacts, open tickets and a
mix, with a full de-duplication window of the ids that opened them.

    python bench/recovery.py [--items 100000] [--dir /tmp]

With ``--cluster`` (needs the local Kafka of deploy/local/services.sh): cluster mode replicas
(``support-monitor run`` processes, ``cluster.enabled``) on a 6-partition topic, 6 channels:
aggregate throughput with 1 and 2 replicas (events produced while they run, until all are
applied) and recovery after one of 2 replicas is killed with SIGKILL (until all 6 partitions
are served again), and after a graceful stop (SIGTERM) for comparison.

    python bench/recovery.py --cluster [--events 120000]
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import ContactQueued, TicketCreated
from tests.support import CONFIG, T0


def build(kind: str, items: int) -> Engine:
    cfg = parse_settings({**CONFIG, "ingest": {"dedup_max_ids": 2 * items}})
    engine = Engine(cfg)
    step = 3600.0 / items  # one hour of arrivals
    for i in range(items):
        ts = T0 + i * step
        engine.advance(ts)
        event_id = f"evt-{i:09d}"
        if kind == "contacts" or (kind == "mixed" and i % 2 == 0):
            queue = ("billing", "tech")[i % 2]
            ev: ContactQueued | TicketCreated = ContactQueued(
                event_id=event_id,
                ts=_dt(ts),
                channel="voice",
                queue=queue,
                contact_id=f"contact-{i:09d}",
            )
        else:
            ev = TicketCreated(
                event_id=event_id, ts=_dt(ts), channel="email", ticket_id=f"ticket-{i:09d}"
            )
        engine.apply(ev, ts)
        engine.dedup.add(event_id, ts)
    return engine


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def measure(kind: str, items: int, directory: Path) -> dict[str, float]:
    engine = build(kind, items)
    # Contacts far past T would be breached on the first decision; keep them waiting.
    path = directory / f"bench-{kind}.snapshot"
    offsets = {("support-events", p): 1_000_000 for p in range(6)}
    t0 = time.perf_counter()
    captured = snapshot.capture(engine, offsets)
    t1 = time.perf_counter()
    data = snapshot.encode(captured)
    t2 = time.perf_counter()
    snapshot.write_atomic(path, data)
    t3 = time.perf_counter()
    restored, _ = snapshot.load(path, engine.settings)
    t4 = time.perf_counter()
    assert len(restored.contacts) == len(engine.contacts)
    assert len(restored.tickets) == len(engine.tickets)
    path.unlink()
    return {
        "bytes": len(data),
        "capture_ms": (t1 - t0) * 1000,
        "encode_ms": (t2 - t1) * 1000,
        "write_fsync_ms": (t3 - t2) * 1000,
        "load_ms": (t4 - t3) * 1000,
    }


def _cluster_config(tmp: Path, bootstrap: str, topic: str, group: str, name: str) -> Path:
    import yaml  # noqa: PLC0415

    from tests.monitor.cluster.cluster_scene import cluster_config  # noqa: PLC0415
    from tests.processes import free_port as _free_port  # noqa: PLC0415

    path = tmp / f"{name}.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                **cluster_config(),
                "sources": {
                    "simulator": {"enabled": False},
                    "kafka": {"bootstrap_servers": bootstrap, "topics": [topic], "group_id": group},
                },
                "exporter": {"listen": f"127.0.0.1:{_free_port()}"},
                "logging": {"format": "json", "level": "warning"},
                "cluster": {"enabled": True, "snapshot_interval": 5},
            }
        )
    )
    return path


def _applied(nodes: list) -> int:  # type: ignore[type-arg]
    total = 0
    for node in nodes:
        try:
            metrics = node.metrics()
        except OSError:
            continue
        total += int(sum(v for (n, _), v in metrics.items() if n == "support_monitor_events_total"))
    return total


def _served(nodes: list) -> int:  # type: ignore[type-arg]
    from tests.monitor.cluster.cluster_scene import served  # noqa: PLC0415

    return sum(1 for count in served(nodes).values() if count == 1)


def cluster(events_wanted: int) -> None:
    from confluent_kafka import Producer  # noqa: PLC0415

    from tests.conftest_services import (  # noqa: PLC0415
        create_kafka_topic,
        delete_kafka_topics,
        unique_topic_name,
    )
    from tests.monitor.cluster.cluster_scene import cluster_events  # noqa: PLC0415
    from tests.monitor.cluster.replicas import Node, wait_until  # noqa: PLC0415

    bootstrap = "127.0.0.1:19092"
    per = max(1, events_wanted // 13)
    events = [
        (ch.encode(), line.encode())
        for ch, line in cluster_events(uuid.uuid4().hex[:6], contacts=per, tickets=per // 2)
    ]
    topics: list[str] = []
    nodes: list = []  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        try:
            for replicas in (1, 2):
                topic = unique_topic_name("bench-cluster")
                create_kafka_topic(bootstrap, topic, 6)
                topics.append(topic)
                group = f"bench-{uuid.uuid4().hex[:8]}"
                topics.append(f"{group}.state")
                nodes.clear()
                nodes.extend(
                    Node(
                        _cluster_config(tmp, bootstrap, topic, group, f"r{replicas}{i}"),
                        tmp,
                        f"r{replicas}{i}",
                    )
                    for i in range(replicas)
                )
                wait_until(
                    lambda: _served(nodes) == 6 and all(_served([n]) >= 1 for n in nodes),
                    90,
                    "partitions served",
                )
                producer = Producer(
                    {
                        "bootstrap.servers": bootstrap,
                        "linger.ms": 20,
                        "queue.buffering.max.messages": 2_000_000,
                    }
                )
                start = time.perf_counter()
                for key, value in events:
                    producer.produce(topic, value=value, key=key)
                    producer.poll(0)
                producer.flush(60)
                produced = time.perf_counter() - start
                wait_until(lambda: _applied(nodes) >= len(events), 600, "all events applied")
                elapsed = time.perf_counter() - start
                print(
                    f"{replicas} replica(s): {len(events):,} events in {elapsed:.1f} s "
                    f"= {len(events) / elapsed:,.0f} events/s aggregate "
                    f"(producing took {produced:.1f} s)"
                )
                if replicas == 2:
                    for sig, label in ((signal.SIGKILL, "SIGKILL"), (signal.SIGTERM, "SIGTERM")):
                        victim = nodes.pop()
                        t0 = time.perf_counter()
                        victim.stop(sig)
                        wait_until(lambda: _served(nodes) == 6, 120, "partitions served again")
                        print(
                            f"recovery after {label} of 1 of 2 replicas: all 6 partitions "
                            f"served again after {time.perf_counter() - t0:.1f} s"
                        )
                        nodes.append(
                            Node(
                                _cluster_config(tmp, bootstrap, topic, group, f"extra-{label}"),
                                tmp,
                                f"extra-{label}",
                            )
                        )
                        wait_until(
                            lambda: _served(nodes) == 6 and all(_served([n]) >= 1 for n in nodes),
                            90,
                            "rejoined",
                        )
                for node in nodes:
                    node.stop(signal.SIGTERM)
        finally:
            for node in nodes:
                if node.proc.poll() is None:
                    node.proc.kill()
            delete_kafka_topics(bootstrap, topics)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--cluster", action="store_true")
    parser.add_argument("--events", type=int, default=120_000)
    args = parser.parse_args()
    if args.cluster:
        cluster(args.events)
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        print(
            f"{'open items':<22}{'size MB':>9}{'capture ms':>12}{'encode ms':>11}"
            f"{'write+fsync ms':>16}{'load ms':>9}"
        )
        for kind in ("contacts", "tickets", "mixed"):
            m = measure(kind, args.items, Path(tmp))
            label = f"{args.items:,} {kind}"
            print(
                f"{label:<22}{m['bytes'] / 1e6:>9.2f}{m['capture_ms']:>12.0f}"
                f"{m['encode_ms']:>11.0f}{m['write_fsync_ms']:>16.0f}{m['load_ms']:>9.0f}"
            )


if __name__ == "__main__":
    main()
