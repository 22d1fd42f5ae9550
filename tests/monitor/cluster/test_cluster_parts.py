"""Cluster mode pieces without a broker: the opt-in config checks, channel ownership, the state
record envelope, and the cluster exposition (owned channels only, every family present)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import pytest
from structlog.testing import capture_logs

from support_monitor.monitor.cluster import store
from support_monitor.monitor.cluster.node import keep_delivering, owned_channels
from support_monitor.monitor.config import parse_settings
from support_monitor.monitor.engine.engine import Engine
from support_monitor.monitor.engine.snapshot import SnapshotError
from support_monitor.monitor.errors import ConfigError
from support_monitor.monitor.pipeline import Delivery, Pipeline
from support_monitor.monitor.stats import DaemonStats
from tests.support import CONFIG, Stream

if TYPE_CHECKING:
    from support_monitor.monitor.cluster.node import Partition

KAFKA = {"bootstrap_servers": "127.0.0.1:1", "topics": ["t"], "group_id": "g"}


def test_cluster_is_off_by_default() -> None:
    assert parse_settings(dict(CONFIG)).cluster.enabled is False


@pytest.mark.parametrize(
    ("sources", "state", "message"),
    [
        ({}, {}, "needs sources.kafka as the only source"),
        ({"simulator": {"enabled": True}, "kafka": KAFKA}, {}, "only source"),
        ({"simulator": {"enabled": False}, "kafka": KAFKA}, {"dir": "/tmp/x"}, "remove state.dir"),
    ],
)
def test_cluster_config_checks(
    sources: dict[str, Any], state: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings({**CONFIG, "sources": sources, "state": state, "cluster": {"enabled": True}})


def test_cluster_config_accepted() -> None:
    s = parse_settings(
        {
            **CONFIG,
            "sources": {"simulator": {"enabled": False}, "kafka": KAFKA},
            "cluster": {"enabled": True, "snapshot_interval": "5s"},
        }
    )
    assert s.cluster.snapshot_interval == 5.0
    assert store.state_topic_name(s.cluster, "g") == "g.state"


def test_owned_channels_are_those_with_applied_events() -> None:
    cfg = parse_settings(dict(CONFIG))
    engine = Engine(cfg)
    assert owned_channels(engine) == set()
    stream = Stream()
    stream.add("contact.queued", 1, "voice", queue="billing", contact_id="c1")
    stream.add("contact.answered", 2, "chat", queue="sales", contact_id="unknown")  # rejected
    pipeline = Pipeline(engine, DaemonStats(), event_clock=True, log_burst=0)
    for i, line in enumerate(stream.lines):
        pipeline.process("t", Delivery(line, f"t/0/{i}"))
    assert owned_channels(engine) == {"voice"}


def test_state_record_envelope_is_checked() -> None:
    snap = store.PartitionSnapshot(
        key="t/1", offset=7, engine=b"x", alerts=None, writer="w", written_at=0.0
    )
    assert store.decode(store.encode(snap), "t/1") == snap
    with pytest.raises(SnapshotError, match="not t/2"):
        store.decode(store.encode(snap), "t/2")
    with pytest.raises(SnapshotError, match="does not decode"):
        store.decode(b"garbage", "t/1")


async def test_a_partitions_delivery_that_fails_is_said_and_started_again() -> None:
    # Before, the task ran deliver_forever bare: a failure ended the partition's paging, said
    # only when the partition was revoked.
    runs: list[int] = []

    class Alerting:
        async def deliver_forever(self) -> None:
            runs.append(1)
            if len(runs) == 1:
                raise RuntimeError("SECRETdeliver")
            await asyncio.Event().wait()

    part = cast("Partition", SimpleNamespace(key="t-0", alerting=Alerting()))
    with capture_logs() as logs:
        task = asyncio.create_task(keep_delivering(part))
        for _ in range(40):
            await asyncio.sleep(0.05)
            if len(runs) == 2:
                break
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(runs) == 2
    assert [(e["event"], e["error"]) for e in logs] == [("alert_delivery_failed", "RuntimeError")]
    assert "SECRET" not in repr(logs)
