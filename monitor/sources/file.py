"""JSON Lines file source (replay): blocks read off the event loop; positions are line numbers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from support_monitor.monitor.pipeline import Delivery

_JSON_SPACE = b" \t\r"
"""What a blank line may hold besides its newline (JSON's whitespace): such a line is skipped;
any other byte makes it an event, or a reject."""
_BLOCK = 1 << 20
LINE_KEEP_BYTES = (16 << 20) + 1
"""Bytes of one line kept at most: a longer line (only ever ``too_large``: the largest
``ingest.max_event_bytes`` is 16 MiB) is delivered cut to its first ``LINE_KEEP_BYTES`` and the
rest of it is read past, so a stream without newlines (``/dev/zero``) holds bounded memory."""
_BOM = b"\xef\xbb\xbf"
"""A UTF-8 byte order mark: some Windows tools start a text file with it. It marks the file,
not its first event, and is skipped (RFC 8259 lets a JSON parser ignore it)."""


class FileSource:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = "file"
        self._file: IO[bytes] | None = None

    async def __aenter__(self) -> Self:
        self._file = await asyncio.to_thread(self.path.open, "rb")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.close)
            self._file = None

    async def events(self) -> AsyncIterator[Delivery]:
        async for block in self.batches():
            for delivery in block:
                yield delivery

    async def batches(self) -> AsyncIterator[list[Delivery]]:
        """Deliveries a block at a time: one await per ~1 MiB instead of one per line."""
        assert self._file is not None, "use FileSource as an async context manager"
        file = self._file
        name = self.path.name
        line_no = 0
        tail = _Line()
        first = True
        while True:
            chunk = await asyncio.to_thread(file.read, _BLOCK)
            if not chunk:
                break
            if first:
                first = False
                chunk = chunk.removeprefix(_BOM)
            if b"\n" not in chunk:  # inside a long line: no copy of what came before
                tail.add(chunk)
                continue
            lines = chunk.split(b"\n")
            if tail.seen:
                tail.add(lines[0])
                lines[0] = tail.join()
            tail = _Line(lines.pop())
            block = []
            for line in lines:
                line_no += 1
                if line.strip(_JSON_SPACE):
                    block.append(Delivery(line, f"{name}:{line_no}"))
            yield block
        last = tail.join()
        if last.strip(_JSON_SPACE):
            yield [Delivery(last, f"{name}:{line_no + 1}")]


class _Line:
    """The line not ended yet, in pieces (one join when it ends); of its bytes at most
    ``LINE_KEEP_BYTES`` are kept, all are counted in ``seen``."""

    __slots__ = ("parts", "seen")

    def __init__(self, start: bytes = b"") -> None:
        self.parts = [start[:LINE_KEEP_BYTES]]
        self.seen = len(start)

    def add(self, piece: bytes) -> None:
        if self.seen < LINE_KEEP_BYTES:
            self.parts.append(piece[: LINE_KEEP_BYTES - self.seen])
        self.seen += len(piece)

    def join(self) -> bytes:
        return b"".join(self.parts)
