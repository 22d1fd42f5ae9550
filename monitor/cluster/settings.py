"""``state:`` settings: where the engine state is kept between runs and how often it is saved."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from monitor.durations import Duration

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

    @property
    def snapshot_path(self) -> Path | None:
        return None if self.dir is None else self.dir / SNAPSHOT_FILE
