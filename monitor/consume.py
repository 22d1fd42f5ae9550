"""The loop between a source and the pipeline, shared by ``run`` and ``replay``."""

from __future__ import annotations

from monitor.deadletter import DeadLetterSink
from monitor.pipeline import Pipeline
from monitor.sources.base import BatchSource, Source


async def consume(
    source: Source | BatchSource, pipeline: Pipeline, dead_letters: DeadLetterSink
) -> None:
    """Apply every delivery; keep every rejected one. The source may commit a delivery (or a
    batch) once the loop asks for the next one, by which time it is applied or dead-lettered.
    Sources that read in batches (file blocks, Kafka fetches) are iterated a batch per await:
    one await per event would cost more than applying the event."""
    name = source.name
    pipeline.register(name)
    process = pipeline.process
    if isinstance(source, BatchSource):
        async for batch in source.batches():
            for delivery in batch:
                letter = process(name, delivery)
                if letter is not None:
                    await dead_letters.write(letter)
        return
    async for delivery in source.events():
        letter = process(name, delivery)
        if letter is not None:
            await dead_letters.write(letter)
