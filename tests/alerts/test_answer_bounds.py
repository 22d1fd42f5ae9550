"""What one delivery attempt may cost: a deadline for the whole attempt, at most
``MAX_ANSWER_BYTES`` of an answer read, and for Slack only an ``ok`` body counts as delivered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx

from support_monitor.alerts.notify.http import MAX_ANSWER_BYTES, exchange, post
from tests.alerts.fakes import Reply, SlackLike, deliver_once, notification

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def _server(answer: Handler) -> AsyncIterator[str]:
    """A raw HTTP/1.1 server on 127.0.0.1 that reads one request and runs ``answer``."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        await reader.readexactly(length)
        try:
            await answer(reader, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/hook"
    finally:
        server.close()


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    del reader
    # headers at once, then the body a byte every 0.2 s: each read is well within httpx's
    # per-read timeout, so before the attempt never ended
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(100):
        writer.write(b"1\r\no\r\n")
        await writer.drain()
        await asyncio.sleep(0.2)


async def _huge_error(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    del reader
    writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 50000000\r\n\r\n")
    chunk = b"x" * 65536
    for _ in range(50_000_000 // len(chunk)):
        writer.write(chunk)
        await writer.drain()


async def test_an_answer_that_trickles_ends_the_attempt_at_its_timeout() -> None:
    async with _server(_trickle) as url, httpx.AsyncClient() as client:
        started = time.monotonic()
        outcome = await post(client, url, b"{}", {}, 1.0)
        took = time.monotonic() - started
    assert (outcome.result, outcome.error) == ("retry", "TimeoutError")
    assert 1.0 <= took < 2.0


async def test_at_most_max_answer_bytes_of_an_answer_are_read() -> None:
    async with _server(_huge_error) as url, httpx.AsyncClient() as client:
        started = time.monotonic()
        status, text, _ = await exchange(client, url, b"{}", {}, 10.0)
        took = time.monotonic() - started
        outcome = await post(client, url, b"{}", {}, 10.0)
    assert (status, text) == (500, "x" * MAX_ANSWER_BYTES)
    assert took < 2.0  # the 50 MB body is not downloaded
    assert (outcome.result, outcome.status, outcome.error) == ("retry", 500, "unrecognised_body")


async def test_a_slack_200_without_ok_is_not_a_delivery() -> None:
    # a proxy's sign-in page answered 200: the page was counted as sent, and lost
    script = [Reply(200, "<html>Sign in to proxy</html>")]
    async with SlackLike(script) as server:
        result, counts, sleeps = await deliver_once(server, notification())
    assert result == "failed"
    assert counts == {("slack", "failed"): 1}
    assert sleeps == []
