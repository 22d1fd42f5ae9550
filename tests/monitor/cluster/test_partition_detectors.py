"""Cluster mode without a broker: a partition's state record carries its detector state, and the
replica that takes the partition over restores it (baselines do not start again from the prior)."""

from __future__ import annotations

import json
from typing import Any

from aiokafka import TopicPartition

from support_monitor.monitor.cluster import store
from support_monitor.monitor.cluster.node import ClusterNode, Partition
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine import snapshot
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.events import decode
from support_monitor.monitor.stats import DaemonStats
from tests.detectors.detector_streams import T0, iso
from tests.support import CONFIG

KAFKA = {"bootstrap_servers": "127.0.0.1:1", "topics": ["t"], "group_id": "g"}


class _Store:
    """The state topic's writer, in memory."""

    def __init__(self) -> None:
        self.records: dict[str, bytes] = {}
        self.seqs: dict[str, int] = {}

    async def write(self, records: list[store.StateRecord]) -> None:
        for record in records:
            self.records[record.key] = record.value
            self.seqs[record.key] = record.seq


class _Member:
    """The node's Kafka source, as far as a write asks it: the group still counts us."""

    async def holds(self, tp: TopicPartition) -> bool:
        del tp
        return True


def _node() -> ClusterNode:
    settings = parse_settings(
        {
            **CONFIG,
            "sources": {"simulator": {"enabled": False}, "kafka": KAFKA},
            "cluster": {"enabled": True},
            # the usual rate is the stream's (a complaint every 20 s), so the baseline learns it
            "detectors": {"complaint_spike": {"prior_per_hour": 180, "by_category": False}},
        }
    )
    node = ClusterNode(settings, DaemonStats(), source=_Member())  # type: ignore[arg-type]
    node.store = _Store()  # type: ignore[assignment]
    return node


def _plain(state: object) -> Any:
    return json.loads(json.dumps(state, allow_nan=False))


async def test_partition_record_carries_and_restores_detector_state() -> None:
    tp = TopicPartition("t", 3)
    node = _node()
    part = Partition(node, tp, Engine(node.settings))
    part.owned = True
    for i in range(180):  # a complaint every 20 s for an hour, a tick a minute
        at = T0 + 20 * i
        raw = {
            "event_id": f"e{i}",
            "type": "complaint.received",
            "ts": iso(at),
            "channel": "voice",
            "category": "billing",
        }
        assert part.engine.apply(decode(json.dumps(raw), 65536), at) is None
        if i % 3 == 2:
            part.road.tick(at)
    state = part.alerting.suite.export_state()
    spike = next(d for d in part.alerting.suite.detectors if d.name == "complaint_spike")
    assert spike._series["voice", ""].baseline.glob.n > 0  # type: ignore[attr-defined]

    await node.flush(part, "revoked", force=True, offset=40)
    record = node.store.records["t/3"]  # type: ignore[union-attr]
    env = store.decode(record, "t/3")
    _, _, snap = snapshot.from_bytes(env.engine, node.settings)
    assert _plain(snap.detectors) == _plain(state)

    other = _node()  # another replica takes the partition over
    found = store.StateRead(records=dict(node.store.records), seqs=dict(node.store.seqs))  # type: ignore[union-attr]
    taken = other._take(tp, found)
    assert taken.offset == 40
    assert (taken.seq, taken.engine_seq, taken.alerts_seq) == (1, 1, 1)
    assert _plain(taken.alerting.suite.export_state()) == _plain(state)
