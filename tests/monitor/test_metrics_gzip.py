"""``/metrics`` honours ``Accept-Encoding: gzip`` (as Prometheus sends it): real requests against
the real ``MetricsServer``, the compressed body decompressed and compared with the plain one."""

from __future__ import annotations

import gzip

import httpx
import pytest
from prometheus_client import Gauge
from prometheus_client.registry import CollectorRegistry

from support_monitor.monitor.http import MetricsServer, gzip_accepted


def _registry(series: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    gauge = Gauge(
        "support_queue_waiting", "Contacts waiting now.", ["channel", "queue"], registry=registry
    )
    for i in range(series):
        gauge.labels("voice", f"queue-{i:04d}").set(i)
    return registry


class Answer:
    def __init__(self, response: httpx.Response, raw_body: bytes) -> None:
        self.status_code = response.status_code
        self.headers = response.headers
        self.raw_body = raw_body


async def _get(client: httpx.AsyncClient, url: str, encoding: str) -> Answer:
    """One request; the body as sent on the wire (``aiter_raw`` does not decode it)."""
    request = client.build_request("GET", url, headers={"Accept-Encoding": encoding})
    response = await client.send(request, stream=True)
    raw = b"".join([chunk async for chunk in response.aiter_raw()])
    await response.aclose()
    return Answer(response, raw)


@pytest.mark.parametrize("series", [3, 400])  # under and over aiohttp's 4 KiB in-thread limit
async def test_gzip_body_equals_plain_body_and_is_smaller(series: int) -> None:
    registry = _registry(series)
    async with MetricsServer(registry, "127.0.0.1:0", lambda: True) as server:
        url = f"http://127.0.0.1:{server.port}/metrics"
        # One keep-alive connection for all requests: the listener's own gauges (connections
        # open) read the same in each scrape, so the bodies can be compared byte for byte.
        limits = httpx.Limits(max_connections=1)
        async with httpx.AsyncClient(limits=limits) as client:
            plain = await _get(client, url, "identity")
            zipped = await _get(client, url, "gzip")
            refused = await _get(client, url, "gzip;q=0, identity")
            prometheus_like = await _get(client, url, "gzip, deflate;q=0.5")
    assert plain.status_code == zipped.status_code == 200
    assert "Content-Encoding" not in plain.headers
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert plain.headers["Vary"] == zipped.headers["Vary"] == "Accept, Accept-Encoding"
    assert int(zipped.headers["Content-Length"]) == len(zipped.raw_body)
    assert plain.raw_body.startswith(b"# HELP")
    assert f'queue="queue-{series - 1:04d}"'.encode() in plain.raw_body
    assert gzip.decompress(zipped.raw_body) == plain.raw_body
    assert "Content-Encoding" not in refused.headers
    assert refused.raw_body == plain.raw_body
    assert prometheus_like.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(prometheus_like.raw_body) == plain.raw_body
    if series == 400:
        # 400 near-identical lines: gzip must shrink them several-fold.
        assert len(zipped.raw_body) * 5 < len(plain.raw_body)


@pytest.mark.parametrize(
    ("header", "accepted"),
    [
        ("gzip", True),
        ("GZIP", True),
        ("gzip, deflate", True),
        ("deflate, gzip;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, deflate", False),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("*", True),
        ("*;q=0", False),
        ("*, gzip;q=0", False),  # named codings take precedence over *
        ("gzip;q=abc", False),
    ],
)
def test_gzip_accepted(header: str, accepted: bool) -> None:
    assert gzip_accepted(header) is accepted
