"""What every source is: an async context manager whose ``events()`` yields deliveries.

Decoding happens once, on the shared road (``monitor.pipeline``), so every source rejects and
dead-letters bad input the same way. A source commits/acknowledges a delivery only after the
consumer has asked for the next one, i.e. after the previous one was applied. A source that
reads in batches may also offer ``batches()``; the consumer then takes a batch per await.
A broker source also has ``keep_letters_in(sink)`` (called by ``sources.build.dead_letter_sink``):
before it commits or acknowledges, it waits until that sink stored the letters written so far.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol, runtime_checkable

from support_monitor.monitor.pipeline import Delivery


class Source(AbstractAsyncContextManager["Source"], Protocol):
    name: str

    def events(self) -> AsyncIterator[Delivery]: ...


@runtime_checkable
class BatchSource(Protocol):
    name: str

    def batches(self) -> AsyncIterator[list[Delivery]]: ...
