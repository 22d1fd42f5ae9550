"""An in-memory stand-in for aiokafka's consumer (records, commits), for the source's unit tests."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from aiokafka import TopicPartition

TP0 = TopicPartition("events", 0)
TP1 = TopicPartition("events", 1)


class Record:
    def __init__(self, offset: int, value: bytes | None, key: bytes | None = None) -> None:
        self.offset = offset
        self.value = value
        self.key = key


class FakeConsumer:
    """Hands out scripted batches; records commits in a shared log."""

    instances: ClassVar[list[FakeConsumer]] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.batches: list[dict[TopicPartition, list[Record]]] = []
        self.log: list[Any] = []
        self.listener: Any = None
        self.stopped = False
        self.ends: dict[TopicPartition, int] = {}
        """End offset per partition (what ``end_offsets`` answers; 0 when absent)."""
        FakeConsumer.instances.append(self)

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.subscribed = topics
        self.listener = listener

    async def start(self) -> None:
        self.log.append("start")

    async def getmany(
        self, timeout_ms: int, max_records: int
    ) -> dict[TopicPartition, list[Record]]:
        if self.batches:
            return self.batches.pop(0)
        await asyncio.sleep(timeout_ms / 1000)
        return {}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.log.append(("commit", dict(offsets)))

    def assignment(self) -> set[TopicPartition]:
        return {TP0, TP1}

    def highwater(self, tp: TopicPartition) -> int:
        return 10

    async def position(self, tp: TopicPartition) -> int:
        return 0

    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends.get(tp, 0) for tp in partitions}

    async def topics(self) -> set[str]:
        return {"events"}

    async def stop(self) -> None:
        self.stopped = True


def commits(consumer: FakeConsumer) -> list[dict[TopicPartition, int]]:
    return [entry[1] for entry in consumer.log if isinstance(entry, tuple)]
