"""``FileSource``: a JSON Lines file as blocks of deliveries, each line with its position."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from support_monitor.monitor.pipeline import Delivery
from support_monitor.monitor.sources import file as file_module
from support_monitor.monitor.sources.file import FileSource


def _deliveries(path: Path) -> list[Delivery]:
    async def main() -> list[Delivery]:
        out: list[Delivery] = []
        async with FileSource(path) as source:
            async for block in source.batches():
                out += block
        return out

    return asyncio.run(main())


def _read(path: Path) -> list[tuple[bytes, str]]:
    return [(d.raw, d.position) for d in _deliveries(path)]


def test_lines_keep_their_bytes_and_numbers_and_blank_lines_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    # a line of 3 MiB spans four 1 MiB reads; "\x0b\x0c" is not JSON whitespace: a line to judge
    long = b"x" * (3 << 20)
    path.write_bytes(b'{"a":1}\n' + long + b'\n\x0b\x0c\n \t\r\n\n{"b":2}\r')
    assert _read(path) == [
        (b'{"a":1}', "e.jsonl:1"),
        (long, "e.jsonl:2"),
        (b"\x0b\x0c", "e.jsonl:3"),
        (b'{"b":2}\r', "e.jsonl:6"),
    ]


def test_a_file_without_a_newline_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "e.jsonl"
    path.write_bytes(b"y" * ((2 << 20) + 5))
    assert _read(path) == [(b"y" * ((2 << 20) + 5), "e.jsonl:1")]


def test_a_byte_order_mark_at_the_start_of_the_file_is_skipped(tmp_path: Path) -> None:
    """A UTF-8 BOM (as some Windows tools write) marks the file: the first event is read
    without it; the same bytes anywhere else stay in their line (and make it a reject)."""
    path = tmp_path / "e.jsonl"
    bom = b"\xef\xbb\xbf"
    path.write_bytes(bom + b'{"a":1}\r\n' + bom + b'{"b":2}\n')
    assert _read(path) == [(b'{"a":1}\r', "e.jsonl:1"), (bom + b'{"b":2}', "e.jsonl:2")]
    path.write_bytes(bom)
    assert _read(path) == []


def test_a_line_past_the_kept_bytes_is_cut_and_read_past(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before, every block of an unended line was kept: ``replay /dev/zero`` grew by 250 MB a
    second. Here 1 MiB + 10 bytes are kept of each line; the next lines keep their bytes."""
    keep = (1 << 20) + 10
    monkeypatch.setattr(file_module, "LINE_KEEP_BYTES", keep)
    path = tmp_path / "e.jsonl"
    long = bytes(range(11, 256)) * (3 << 12)  # ~3 MiB without a newline: spans several reads
    tail_only = b"z" * ((2 << 20) + 3)  # starts inside a read, ends the file without a newline
    path.write_bytes(b'{"a":1}\n' + long + b'\n{"b":2}\n' + tail_only)
    assert _read(path) == [
        (b'{"a":1}', "e.jsonl:1"),
        (long[:keep], "e.jsonl:2"),
        (b'{"b":2}', "e.jsonl:3"),
        (tail_only[:keep], "e.jsonl:4"),
    ]
    # a cut line says how long it was (its reject's detail gives that size, not the kept one)
    assert [d.size for d in _deliveries(path)] == [None, len(long), None, len(tail_only)]
