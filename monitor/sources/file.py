"""JSON Lines file source (replay): blocks read off the event loop; positions are line numbers."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Self, TypeVar

from support_monitor.monitor.pipeline import Delivery

_T = TypeVar("_T")

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
    """Opens and reads in daemon threads (not ``asyncio.to_thread``): a pipe or FIFO that
    nobody writes blocks its read for good, and Ctrl-C must still end the replay at once. A
    read still blocked when the source closes is left to the process's exit, with its file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = "file"
        self._file: IO[bytes] | None = None
        self._busy = False  # a read or the open is under way in its thread

    async def __aenter__(self) -> Self:
        self._file = await self._off_loop(lambda: self.path.open("rb"))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        file, self._file = self._file, None
        if file is not None and not self._busy:
            await self._off_loop(file.close)

    async def _off_loop(self, call: Callable[[], _T]) -> _T:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[_T] = loop.create_future()

        def run() -> None:
            try:
                result = call()
            except BaseException as exc:  # noqa: BLE001 - handed to the awaiting coroutine
                _settle(loop, done, None, exc)
            else:
                _settle(loop, done, result, None)

        self._busy = True
        threading.Thread(target=run, name=f"file-source:{self.path.name}", daemon=True).start()
        result = await done
        self._busy = False
        return result

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
            chunk = await self._off_loop(functools.partial(file.read, _BLOCK))
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
            cut = tail.whole_size()
            tail = _Line(lines.pop())
            block = []
            for line in lines:
                line_no += 1
                if line.strip(_JSON_SPACE):
                    block.append(Delivery(line, f"{name}:{line_no}"))
            if cut is not None and block and block[0].raw is lines[0]:
                block[0] = Delivery(lines[0], block[0].position, size=cut)
            yield block
        last = tail.join()
        if last.strip(_JSON_SPACE):
            yield [Delivery(last, f"{name}:{line_no + 1}", size=tail.whole_size())]


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

    def whole_size(self) -> int | None:
        """The line's length so far when only its start is kept; ``None`` when all of it is."""
        return self.seen if self.seen > LINE_KEEP_BYTES else None


def _settle(
    loop: asyncio.AbstractEventLoop,
    done: asyncio.Future[_T],
    result: _T | None,
    exc: BaseException | None,
) -> None:
    """From the reading thread: hand the outcome to the loop (nothing when the loop is gone,
    e.g. a read that ended after Ctrl-C closed it)."""

    def on_loop() -> None:
        if done.done():  # the awaiting coroutine was cancelled
            return
        if exc is not None:
            done.set_exception(exc)
        else:
            done.set_result(result)  # type: ignore[arg-type]

    try:
        loop.call_soon_threadsafe(on_loop)
    except RuntimeError:  # the loop is closed
        return
