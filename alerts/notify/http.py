"""One HTTP POST mapped to an ``Outcome`` (shared by the Slack and webhook notifiers).

2xx ok; 429 retry honouring Retry-After; 408 and 5xx and network errors retry with backoff;
every other 4xx (400 ``invalid_payload``, 403, 404 ``no_service``, 410 ...) is final. The
response body, not the URL, goes into the error: URLs carry secrets.
"""

from __future__ import annotations

import email.utils
import time

import httpx

from alerts.notify.delivery import Outcome


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,  # noqa: ASYNC109 - a per-request httpx timeout, not a cancel scope
) -> Outcome:
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.TransportError as exc:
        return Outcome("retry", None, f"{type(exc).__name__}")
    status = response.status_code
    text = response.text.strip()[:200]
    if 200 <= status < 300:
        return Outcome("ok", status, "")
    if status == 429:
        return Outcome("retry", status, text, retry_after(response.headers.get("retry-after")))
    if status == 408 or status >= 500:
        return Outcome("retry", status, text)
    return Outcome("failed", status, text)
