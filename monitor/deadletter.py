"""Dead letters: every rejected input is kept with its reason and position, never dropped.

A sink is anything with ``async write(letter)``; the JSON Lines file sink is built in, the Kafka
and MQTT sources add sinks that publish to a topic.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, Self

import msgspec


@dataclass(frozen=True, slots=True)
class DeadLetter:
    raw: bytes
    reason: str
    detail: str
    source: str
    position: str


class DeadLetterSink(Protocol):
    async def write(self, letter: DeadLetter) -> None: ...


def letter_record(letter: DeadLetter) -> dict[str, object]:
    """A dead letter as a JSON object (the JSON Lines sink's and the MQTT sink's format)."""
    record: dict[str, object] = {
        "reason": letter.reason,
        "detail": letter.detail,
        "source": letter.source,
        "position": letter.position,
        "rejected_at": time.time(),
    }
    try:
        record["raw"] = letter.raw.decode("utf-8")
    except UnicodeDecodeError:
        record["raw_base64"] = base64.b64encode(letter.raw).decode("ascii")
    return record


class JsonlDeadLetters:
    """Appends one JSON object per rejected input; buffered, flushed on close and every second."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._encoder = msgspec.json.Encoder()

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    async def write(self, letter: DeadLetter) -> None:
        assert self._file is not None, "use JsonlDeadLetters as a context manager"
        self._file.write(self._encoder.encode(letter_record(letter)) + b"\n")

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()


class MemoryDeadLetters:
    """Keeps dead letters in a bounded list (tests, and replay without a file)."""

    def __init__(self, limit: int = 100_000) -> None:
        self.letters: list[DeadLetter] = []
        self.dropped = 0
        self._limit = limit

    async def write(self, letter: DeadLetter) -> None:
        if len(self.letters) < self._limit:
            self.letters.append(letter)
        else:
            self.dropped += 1
