"""The listener under attack: slowloris, idle keep-alive, the connection cap, fd exhaustion.

Real sockets on 127.0.0.1 against the real ``MetricsServer``; times are measured with the
monotonic clock and compared with the configured timeouts.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import bcrypt
import httpx
import pytest
from aiohttp import web
from prometheus_client.registry import CollectorRegistry
from structlog.testing import capture_logs

from support_monitor.monitor.config import ExporterSettings
from support_monitor.monitor.http import ListenError, MetricsServer

ROOT = Path(__file__).resolve().parents[2]
REQUEST = b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"


@asynccontextmanager
async def serving(**limits: float | str) -> AsyncIterator[MetricsServer]:
    exporter = ExporterSettings.model_validate(limits)
    async with MetricsServer(
        CollectorRegistry(), "127.0.0.1:0", lambda: True, exporter=exporter
    ) as server:
        yield server


async def read_until_closed(reader: asyncio.StreamReader, limit: float) -> bytes:
    """Everything the server sends until it closes the connection (b"" on a reset)."""
    chunks = []
    async with asyncio.timeout(limit):
        while True:
            try:
                chunk = await reader.read(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


async def read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_slowloris_is_closed_after_the_header_timeout_and_healthz_stays_fast() -> None:
    header_timeout = 2.0
    attackers = 200
    async with serving(header_timeout=header_timeout, idle_timeout=30, max_connections=1000) as s:
        conns = []
        for _ in range(attackers):
            reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            conns.append((time.monotonic(), reader, writer))
        lived: list[float] = []

        async def slowloris(
            opened: float, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
        ) -> None:
            # A request line, then one header byte every 0.2 s: never a complete request.
            writer.write(b"GET /metrics HTTP/1.1\r\n")
            try:
                while True:
                    writer.write(b"X")
                    await writer.drain()
                    try:
                        async with asyncio.timeout(0.2):
                            if not await reader.read(1024):
                                break
                    except TimeoutError:
                        continue
            except (ConnectionResetError, BrokenPipeError):
                pass
            lived.append(time.monotonic() - opened)
            writer.close()

        async def probe_healthz() -> list[float]:
            took = []
            async with httpx.AsyncClient() as client:
                for _ in range(8):  # during the attack, before the timeout fires
                    t0 = time.monotonic()
                    response = await client.get(f"http://127.0.0.1:{s.port}/healthz", timeout=5)
                    took.append(time.monotonic() - t0)
                    assert response.status_code == 200
                    await asyncio.sleep(0.15)
            return took

        async with asyncio.TaskGroup() as tasks:
            attack = [tasks.create_task(slowloris(*conn)) for conn in conns]
            probe = tasks.create_task(probe_healthz())
        assert all(t.done() for t in attack)
    assert len(lived) == attackers
    # Each is closed header_timeout after it opened (the server's clock starts at its accept,
    # a little after the client's connect): not before, and not long after (a loaded 2-core
    # machine: 1 s slack), although it kept sending bytes.
    assert min(lived) >= header_timeout - 0.05, min(lived)
    assert max(lived) <= header_timeout + 1.0, max(lived)
    assert max(probe.result()) < 0.5, probe.result()
    assert s.stats.timed_out["header_timeout"] == attackers
    assert s.stats.timed_out["idle_timeout"] == 0


async def test_a_kept_alive_connection_gets_the_idle_timeout_then_the_header_timeout() -> None:
    async with serving(header_timeout=0.8, idle_timeout=1.5) as s:
        # 1. Idle: a full request, then silence -> closed idle_timeout after the response.
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(REQUEST)
        assert (await read_response(reader)).startswith(b"HTTP/1.1 200")
        t0 = time.monotonic()
        assert await read_until_closed(reader, 5) == b""
        idle = time.monotonic() - t0
        writer.close()
        assert 1.5 - 0.05 <= idle <= 1.5 + 0.7, idle

        # 2. Kept alive, then a partial next request: the header clock starts at its first
        # byte, so it is closed 0.8 s later, although the idle timeout (1.5 s) is longer.
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(REQUEST)
        assert (await read_response(reader)).startswith(b"HTTP/1.1 200")
        await asyncio.sleep(0.5)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost")
        t0 = time.monotonic()
        assert await read_until_closed(reader, 5) == b""
        partial = time.monotonic() - t0
        writer.close()
        assert 0.8 - 0.05 <= partial <= 0.8 + 0.7, partial

        # 3. A keep-alive client that keeps asking is never cut: 6 requests over ~2.4 s.
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        for _ in range(6):
            writer.write(REQUEST)
            assert (await read_response(reader)).startswith(b"HTTP/1.1 200")
            await asyncio.sleep(0.4)
        writer.close()
    assert s.stats.timed_out == {"idle_timeout": 1, "header_timeout": 1}


async def test_at_the_cap_a_new_connection_evicts_the_oldest_waiting_one() -> None:
    with capture_logs() as logs:
        async with serving(max_connections=5, header_timeout=30, idle_timeout=30) as s:
            # 5 connections that send nothing (a slowloris that stays under the timeout).
            held = []
            for _ in range(5):
                held.append(await asyncio.open_connection("127.0.0.1", s.port))
                await asyncio.sleep(0.02)  # opened in this order
            await asyncio.sleep(0.2)
            assert s.stats.open == 5
            # A probe still gets in: the oldest waiting connection makes room.
            async with httpx.AsyncClient() as client:
                ok = await client.get(f"http://127.0.0.1:{s.port}/healthz", timeout=5)
            assert ok.status_code == 200
            assert await read_until_closed(held[0][0], 5) == b""
            # The 4 others are untouched and still work.
            for reader, writer in held[1:]:
                writer.write(REQUEST)
                assert (await read_response(reader)).startswith(b"HTTP/1.1 200")
            for _, writer in held:
                writer.close()
            await asyncio.sleep(0.3)
            assert (s.stats.evicted, s.stats.refused, s.stats.open) == (1, 0, 0)
    events = [entry["event"] for entry in logs]
    assert events.count("http_connection_cap_reached") == 1
    assert events.count("http_connection_cap_cleared") == 1


async def test_at_the_cap_with_every_connection_in_a_request_a_new_one_gets_a_503(
    tmp_path: Path,
) -> None:
    # Requests stay in progress while bcrypt checks a wrong password (cost 13: ~1 s each, two at
    # a time), so the 3 connections are all busy when the 4th comes.
    hashed = bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=13)).decode()
    web = tmp_path / "web.yml"
    web.write_text(f"basic_auth_users:\n  u: '{hashed}'\n", encoding="utf-8")
    wrong = b"Authorization: Basic " + base64.b64encode(b"u:wrong") + b"\r\n"
    busy_request = b"GET /metrics HTTP/1.1\r\nHost: t\r\n" + wrong + b"\r\n"
    with capture_logs() as logs:
        async with serving(
            max_connections=3, header_timeout=30, idle_timeout=30, web_config_file=str(web)
        ) as s:
            busy = [await asyncio.open_connection("127.0.0.1", s.port) for _ in range(3)]
            for _, writer in busy:
                writer.write(busy_request)
            await asyncio.sleep(0.3)
            answers = []
            for _ in range(3):
                reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
                answers.append(await read_until_closed(reader, 5))
                writer.close()
            for reader, writer in busy:
                assert (await read_response(reader)).startswith(b"HTTP/1.1 401")
                writer.close()
            await asyncio.sleep(0.3)
            assert (s.stats.refused, s.stats.evicted, s.stats.open) == (3, 0, 0)
    for answer in answers:
        assert answer == (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
            b"Content-Length: 21\r\nRetry-After: 1\r\nConnection: close\r\n\r\n"
            b"too many connections\n"
        )
    events = [entry["event"] for entry in logs]
    assert events.count("http_connection_cap_reached") == 1
    assert events.count("http_connection_cap_cleared") == 1
    cleared = next(e for e in logs if e["event"] == "http_connection_cap_cleared")
    assert (cleared["refused"], cleared["evicted"]) == (3, 0)


async def test_the_counters_are_exported_from_the_registry() -> None:
    async with serving(max_connections=1, header_timeout=0.5, idle_timeout=30) as s:
        first, w1 = await asyncio.open_connection("127.0.0.1", s.port)
        await asyncio.sleep(0.1)
        second, w2 = await asyncio.open_connection("127.0.0.1", s.port)
        assert await read_until_closed(first, 5) == b""  # evicted by the second
        assert await read_until_closed(second, 5) == b""  # then its header timeout
        w1.close()
        w2.close()
        await asyncio.sleep(0.1)
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"http://127.0.0.1:{s.port}/metrics", timeout=5)).text
    assert "support_monitor_http_connections_evicted_total 1.0" in text
    assert "support_monitor_http_connections_refused_total 0.0" in text
    assert 'support_monitor_http_connections_timed_out_total{reason="header_timeout"} 1.0' in text
    assert 'support_monitor_http_connections_timed_out_total{reason="idle_timeout"} 0.0' in text
    assert "support_monitor_http_connections_open 1.0" in text  # the scrape itself


async def test_other_methods_get_405_on_the_listeners_paths_and_404_elsewhere() -> None:
    async with serving() as s, httpx.AsyncClient() as client:
        url = f"http://127.0.0.1:{s.port}"
        own = [
            await client.post(f"{url}{path}", timeout=5)
            for path in ("/metrics", "/healthz", "/readyz")
        ]
        elsewhere = await client.delete(f"{url}/nope", timeout=5)
        head = await client.head(f"{url}/readyz", timeout=5)
    assert [r.status_code for r in own] == [405, 405, 405]
    assert all(r.headers["Allow"] == "GET, HEAD" for r in own)
    assert elsewhere.status_code == 404
    assert head.status_code == 200


async def test_an_address_in_use_is_one_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MetricsServer(CollectorRegistry(), f"127.0.0.1:{port}", lambda: True)
        with pytest.raises(ListenError) as caught:
            await server.__aenter__()
    assert str(caught.value) == (
        f"exporter.listen: cannot listen on 127.0.0.1:{port}: address already in use"
    )


EMFILE_SERVER = textwrap.dedent(
    """
    import asyncio, resource, sys
    from prometheus_client.registry import CollectorRegistry
    from support_monitor.monitor.config import ExporterSettings
    from support_monitor.monitor.http import MetricsServer
    from support_monitor.monitor.logs import configure

    async def main() -> None:
        configure("info", "json")
        exporter = ExporterSettings(max_connections=5000, header_timeout=60, idle_timeout=60)
        async with MetricsServer(
            CollectorRegistry(), "127.0.0.1:0", lambda: True, exporter=exporter
        ) as server:
            resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
            print(server.port, flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_out_of_file_descriptors_logs_one_line_per_burst_and_serves_again() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", EMFILE_SERVER],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        # 150 connections against 64 descriptors: accept() fails with EMFILE for seconds.
        held = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(150)]
        time.sleep(3.0)
        for sock in held:
            sock.close()
        deadline = time.monotonic() + 10
        status = None
        while time.monotonic() < deadline:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert status == 200
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=10)
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    events = [line["event"] for line in lines]
    assert "Traceback" not in stderr
    # One burst: one failure line, one recovery line with the number of failed accepts (one
    # every 0.5 s for ~3 s: at least 4).
    assert events.count("http_accept_failed") == 1, stderr[-2000:]
    assert events.count("http_accept_recovered") == 1, stderr[-2000:]
    failed = next(line for line in lines if line["event"] == "http_accept_failed")
    assert failed["error"] == "Too many open files"
    recovered = next(line for line in lines if line["event"] == "http_accept_recovered")
    assert recovered["failures"] >= 4


class _EchoBody:
    """A mounted route (as the console's POSTs are) that reads the request's body."""

    def owns(self, path: str) -> bool:
        return path == "/echo"

    async def handle(self, request: web.BaseRequest) -> web.Response:
        return web.Response(body=await request.read())

    def refusals(self) -> dict[str, int]:
        return {}


async def test_a_body_that_comes_after_its_headers_leaves_the_idle_clock() -> None:
    """Audit of 2026-12-05: a POST whose body came in a packet of its own (as http.client and
    browsers often send it) was taken for the start of a next request: the kept-alive
    connection got the header timeout (0.8 s here) instead of the idle one (1.5 s), counted as
    `header_timeout`. Bytes past the declared body still start the header clock (test above)."""
    exporter = ExporterSettings(header_timeout=0.8, idle_timeout=1.5)
    async with MetricsServer(
        CollectorRegistry(), "127.0.0.1:0", lambda: True, exporter=exporter, mounted=_EchoBody()
    ) as s:
        reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
        writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(b"hello")
        response = await read_response(reader)
        assert response.startswith(b"HTTP/1.1 200")
        assert response.endswith(b"\r\n\r\nhello")
        t0 = time.monotonic()
        assert await read_until_closed(reader, 5) == b""
        idle = time.monotonic() - t0
        writer.close()
    assert 1.5 - 0.05 <= idle <= 1.5 + 0.7, idle
    assert s.stats.timed_out == {"idle_timeout": 1}


@pytest.mark.parametrize(
    "accept",
    [
        "application/openmetrics-text; version=abc",
        "text/plain; version=abc",
    ],
)
async def test_an_accept_header_that_does_not_read_gets_the_text_format(accept: str) -> None:
    """Audit of 2026-12-05: `Accept: ...; version=abc` made prometheus_client raise, and
    /metrics answered 500 (`http_handler_failed`, which also spent the once-a-minute line)."""
    with capture_logs() as logs:
        async with serving() as s, httpx.AsyncClient() as client:
            url = f"http://127.0.0.1:{s.port}/metrics"
            response = await client.get(url, headers={"Accept": accept}, timeout=5)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "support_monitor_http_connections_open" in response.text
    assert not [e for e in logs if e["event"] == "http_handler_failed"]


async def test_a_client_gone_while_its_body_is_read_is_no_handler_failure() -> None:
    """Audit of 2026-12-05: a client that closed its connection mid-body was logged as
    `http_handler_failed` (ConnectionResetError), the line kept for the listener's own faults
    (at most one a minute). It is a debug line now."""
    with capture_logs() as logs:
        exporter = ExporterSettings(header_timeout=2, idle_timeout=5)
        async with MetricsServer(
            CollectorRegistry(),
            "127.0.0.1:0",
            lambda: True,
            exporter=exporter,
            mounted=_EchoBody(),
        ) as s:
            _reader, writer = await asyncio.open_connection("127.0.0.1", s.port)
            writer.write(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nabc")
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            await asyncio.sleep(0.3)
            async with httpx.AsyncClient() as client:
                health = await client.get(f"http://127.0.0.1:{s.port}/healthz", timeout=5)
    assert health.status_code == 200
    events = [e["event"] for e in logs]
    assert "http_handler_failed" not in events
    assert "http_client_gone" in events


@pytest.mark.parametrize(
    "request_bytes",
    [
        # a control character in a header value: the parser refuses the request
        b"GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer s3cr3t-t0ken\x01\r\n\r\n",
        # a header line without a colon, after the credentials
        (
            b"GET /metrics HTTP/1.1\r\nAuthorization: Basic czNjcjN0LXQwa2Vu\r\n"
            b"no colon s3cr3t\r\n\r\n"
        ),
    ],
)
async def test_a_malformed_request_gets_a_400_that_echoes_none_of_it(request_bytes: bytes) -> None:
    """aiohttp's parser error quotes the offending line, credentials included; the answer is
    a plain 400 with none of the request's bytes (the log line names no header either)."""
    async with serving() as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        with capture_logs() as logs:
            writer.write(request_bytes)
            await writer.drain()
            answer = await read_until_closed(reader, 5.0)
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith((b"HTTP/1.0 400 ", b"HTTP/1.1 400 "))
    assert body == b"400 Bad Request"
    for secret in (b"s3cr3t", b"czNjcjN0"):
        assert secret not in answer
        assert secret.decode() not in repr(logs)
