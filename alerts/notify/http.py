"""One HTTP POST mapped to an ``Outcome`` (shared by the Slack and webhook notifiers).

2xx ok (for Slack only with the body ``ok``: a proxy's sign-in page is not a delivery); 429
``rate_limited`` (waits ``Retry-After``); 408, 5xx, network errors and an attempt over its
``timeout`` retry with backoff; every other 4xx (400 ``invalid_payload``, 403, 404
``no_service``, 410 ...) is final. A request the client cannot send (a header value it refuses,
``LocalProtocolError``; a URL scheme it has no transport for) and any other exception of the
HTTP client (a URL it cannot parse) are final too: the message is rejected, the daemon goes on.

Each attempt, from connecting to the last byte read, ends within ``timeout`` (httpx's own
timeout applies per read, so an answer that trickles a byte a second would never end), and at
most :data:`MAX_ANSWER_BYTES` of an answer are read (an error code is short; a 300 MB error page
is not buffered).

What is logged of an answer is bounded and known: the status and, if the body is one of Slack's
documented error codes (``KNOWN_ERRORS``), that code. Any other body is not shown
(``error="unrecognised_body"``): receivers echo requests, and requests carry tokens. Neither the
URL nor an exception's text is ever put into an ``Outcome``: only the exception's type name.
"""

from __future__ import annotations

import asyncio
import email.utils
import math
import time

import httpx

from support_monitor.alerts.notify.delivery import Outcome

KNOWN_ERRORS = frozenset(
    {
        "action_prohibited",
        "cannot_reply_to_message",
        "channel_is_archived",
        "channel_not_found",
        "internal_error",
        "invalid_attachments",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_payload",
        "invalid_token",
        "message_too_long",
        "missing_text_or_fallback_or_attachments",
        "no_active_hooks",
        "no_service",
        "no_service_id",
        "no_team",
        "no_text",
        "posting_to_general_channel_denied",
        "rate_limited",
        "restricted_action",
        "service_unavailable",
        "team_disabled",
        "too_many_attachments",
        "user_not_found",
    }
)
"""Slack's incoming-webhook error strings (and its ``rate_limited``/5xx bodies)."""
UNRECOGNISED = "unrecognised_body"
MAX_ANSWER_BYTES = 1024
"""Bytes of an answer's body read; the rest is never downloaded."""


def error_code(body: str) -> str:
    """The body if it is a known error code, ``""`` if empty, else ``UNRECOGNISED``."""
    text = body.strip()
    if not text:
        return ""
    return text if text in KNOWN_ERRORS else UNRECOGNISED


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP date); ``None`` when it is
    neither (a negative number, as RFC 9110's delta-seconds are not: the default pause then
    applies instead of an immediate retry). A date in the past is 0."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return None if math.isnan(seconds) or seconds < 0 else seconds
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    try:
        return max(0.0, when.timestamp() - (time.time() if now is None else now))
    except (OverflowError, ValueError, OSError):
        return None


async def exchange(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,  # noqa: ASYNC109 - the whole attempt's deadline, kept by asyncio.timeout
) -> tuple[int, str, str | None]:
    """POST ``body``; the status, the first :data:`MAX_ANSWER_BYTES` of the answer's body (as
    text) and its ``Retry-After``, all within ``timeout`` seconds (``TimeoutError`` past it)."""
    async with asyncio.timeout(timeout):
        request = client.stream("POST", url, content=body, headers=headers, timeout=timeout)
        async with request as response:
            head = bytearray()
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) >= MAX_ANSWER_BYTES:
                    break
            text = bytes(head[:MAX_ANSWER_BYTES]).decode("utf-8", "replace")
            return response.status_code, text, response.headers.get("retry-after")


async def post(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    timeout: float,  # noqa: ASYNC109 - the whole attempt's deadline (see ``exchange``)
    *,
    ok_body: str | None = None,
) -> Outcome:
    """One attempt as an ``Outcome``. ``ok_body``: the body a 2xx must have to count as
    delivered (Slack's ``ok``); another body is final (``failed``), its code if it is a known
    one, else ``unrecognised_body``."""
    try:
        status, text, limit = await exchange(client, url, body, headers, timeout)
    except (httpx.LocalProtocolError, httpx.UnsupportedProtocol) as exc:
        # our own request cannot be sent (a header value, a URL scheme): no retry mends that
        return Outcome("failed", None, type(exc).__name__)
    except (httpx.TransportError, TimeoutError) as exc:
        return Outcome("retry", None, type(exc).__name__)
    except Exception as exc:  # noqa: BLE001 - any client failure rejects this message only
        return Outcome("failed", None, type(exc).__name__)
    return _outcome(status, text, limit, ok_body)


def _outcome(status: int, text: str, limit: str | None, ok_body: str | None) -> Outcome:
    if 200 <= status < 300:
        if ok_body is not None and text.strip() != ok_body:
            return Outcome("failed", status, error_code(text) or UNRECOGNISED)
        return Outcome("ok", status, "")
    error = error_code(text)
    if status == 429:
        return Outcome("retry", status, error, retry_after(limit), rate_limited=True)
    if status == 408 or status >= 500:
        return Outcome("retry", status, error)
    return Outcome("failed", status, error)
