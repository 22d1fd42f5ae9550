"""``state:`` settings: where the engine state is kept between runs and how often it is saved."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from support_monitor.monitor.durations import Duration
from support_monitor.monitor.files import is_directory

SNAPSHOT_FILE = "engine.snapshot"


class StateSettings(BaseModel):
    """Durable engine state (single node). Without ``dir`` nothing is kept: a restart starts
    from empty statistics, as before."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dir: Path | None = None
    """Directory of the engine snapshot (``engine.snapshot``). With a Kafka source the snapshot's
    offsets decide where consumption resumes; committed group offsets are then ignored."""
    snapshot_interval: Duration = Field(default=60.0, gt=0)
    """Seconds between snapshots; one more is written on shutdown. After a crash, the events
    since the last snapshot are read again from the broker (bounded by this interval)."""

    @field_validator("dir")
    @classmethod
    def _a_directory(cls, value: Path | None) -> Path | None:
        if value is not None and is_directory(value) is False:
            raise ValueError(f"{value} is a file, not a directory: no snapshot could be written")
        return value

    @property
    def snapshot_path(self) -> Path | None:
        return None if self.dir is None else self.dir / SNAPSHOT_FILE


class ClusterSettings(BaseModel):
    """Cluster mode (opt-in): replicas are members of the Kafka source's consumer group, one
    engine per assigned partition, snapshots in a compacted Kafka topic keyed by partition.
    See ``docs/scale-out.md``. Off by default: one engine, as always."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    state_topic: str | None = None
    """Compacted topic of the partition snapshots; default ``<group_id>.state``. Created (one
    partition, ``cleanup.policy=compact``) when missing."""
    state_topic_replication: int = Field(default=1, ge=1)
    """Replication factor used when the state topic is created (3 on a production cluster)."""
    snapshot_interval: Duration = Field(default=30.0, gt=0)
    """Seconds between snapshots of every owned partition; one more on revocation and on
    shutdown, and one before any alert notification is handed to a receiver."""
    max_snapshot_bytes: int = Field(default=64 * 1024 * 1024, ge=1024 * 1024)
    """Largest snapshot record (``max.message.bytes`` of the state topic, producer request
    size and fetch sizes of the reader)."""
    drain_seconds: Duration = Field(default=5.0, ge=0)
    """On revocation, how long the notifications already planned for a partition may take to
    be delivered before its delivery task is stopped."""
