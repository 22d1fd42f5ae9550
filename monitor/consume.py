"""The loop between a source and the pipeline, shared by ``run`` and ``replay``."""

from __future__ import annotations

import asyncio

from support_monitor.monitor.deadletter import DeadLetterSink, DurableSink
from support_monitor.monitor.pipeline import Pipeline
from support_monitor.monitor.sources.base import BatchSource, Source

__all__ = ["HELD_DRAIN_SECONDS", "consume", "store_deferred"]

HELD_DRAIN_SECONDS = 1.0
"""How often a source's consumer stores the rejects a tick decided (held outcomes whose item
never opened) while the source delivers nothing."""


async def consume(
    source: Source | BatchSource,
    pipeline: Pipeline,
    dead_letters: DeadLetterSink,
    *,
    drain_every: float | None = None,
) -> None:
    """Apply every delivery; keep every rejected one. The source may commit a delivery (or a
    batch) once the loop asks for the next one, by which time it is applied or dead-lettered.
    Sources that read in batches (file blocks, Kafka fetches) are iterated a batch per await:
    one await per event would cost more than applying the event. ``process`` never raises
    (a defect in a handler is an ``internal_error`` dead letter), so no input ends the loop;
    only the source or the dead-letter sink can. Rejects the engine decides later (an early
    outcome whose item never opened) go to the sink of the source they came from, after that
    source's next batch or delivery, and with ``drain_every`` (live mode, where a tick decides
    them) also every ``drain_every`` seconds, so that they are stored while the source is
    idle (the ``source:<name>:held`` task)."""
    if drain_every is None:
        await _deliveries(source, pipeline, dead_letters)
        return
    async with asyncio.TaskGroup() as tasks:
        drain = tasks.create_task(
            _drain(source.name, pipeline, dead_letters, drain_every),
            name=f"source:{source.name}:held",
        )
        try:
            await _deliveries(source, pipeline, dead_letters)
        finally:
            drain.cancel()


async def _drain(name: str, pipeline: Pipeline, dead_letters: DeadLetterSink, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await store_deferred(name, pipeline, dead_letters)


async def store_deferred(name: str, pipeline: Pipeline, dead_letters: DeadLetterSink) -> None:
    """Store the source's deferred letters while it is idle: written, then persisted (a
    buffering sink stores them now, not at the source's next commit), so they are counted
    and a sink that cannot store them is said and counted at once. Held outcomes that applied
    meanwhile are counted in ``events_total`` by the same call."""
    letters = pipeline.take_deferred(name)
    for letter in letters:
        await dead_letters.write(letter)
    if letters and isinstance(dead_letters, DurableSink):
        await dead_letters.persist()


async def _deliveries(
    source: Source | BatchSource, pipeline: Pipeline, dead_letters: DeadLetterSink
) -> None:
    name = source.name
    pipeline.register(name)
    sink_name = getattr(dead_letters, "name", None)
    if sink_name is not None:  # the letters counter of this source and sink, from 0
        pipeline.stats.dead_letters_written[name, sink_name] += 0
    process = pipeline.process
    take_deferred = pipeline.take_deferred
    if isinstance(source, BatchSource):
        async for batch in source.batches():
            for delivery in batch:
                letter = process(name, delivery)
                if letter is not None:
                    await dead_letters.write(letter)
            for letter in take_deferred(name):
                await dead_letters.write(letter)
    else:
        async for delivery in source.events():
            letter = process(name, delivery)
            if letter is not None:
                await dead_letters.write(letter)
            for letter in take_deferred(name):
                await dead_letters.write(letter)
    pipeline.flush_log()
