"""The loop between a source and the pipeline, shared by ``run`` and ``replay``."""

from __future__ import annotations

from monitor.deadletter import DeadLetterSink
from monitor.pipeline import Pipeline
from monitor.sources.base import Source


async def consume(source: Source, pipeline: Pipeline, dead_letters: DeadLetterSink) -> None:
    """Apply every delivery; keep every rejected one. The source may commit a delivery once the
    loop asks for the next one, by which time it is applied or dead-lettered."""
    name = source.name
    process = pipeline.process
    async for delivery in source.events():
        letter = process(name, delivery)
        if letter is not None:
            await dead_letters.write(letter)
