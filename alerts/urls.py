"""Receiver URLs checked the way the HTTP client (httpx) will use them, without echoing them.

A URL may carry a secret (a Slack webhook's path, credentials, a token in the query), so a
problem is described in words only: never the URL or any part of it.
"""

from __future__ import annotations

import httpx


def url_problem(value: str) -> str | None:
    """``None`` if httpx can post to ``value``; else what is wrong, without the URL."""
    try:
        url = httpx.Request("POST", value).url
        host = url.raw_host
        port = url.port
    except Exception:  # noqa: BLE001 - httpx raises InvalidURL, IDNA and Unicode errors
        return "is not a URL the HTTP client can parse (its text is not shown: it may be secret)"
    if url.scheme not in ("http", "https"):
        return "must be an http:// or https:// URL"
    if not host:
        return "has no host"
    if b"%" in host or any(c in host for c in b" \t\r\n"):
        return "has an invalid host name"
    if port is not None and not 0 < port < 65536:
        return "has a port outside 1-65535"
    return None
