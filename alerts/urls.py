"""Receiver URLs and header values checked the way the HTTP client (httpx) will use them,
without echoing them.

A URL may carry a secret (a Slack webhook's path, credentials, a token in the query), and so
may a header value (a bearer token, an API key), so a problem is described in words only:
never the value or any part of it.
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


def has_userinfo(value: str) -> bool:
    """Whether a URL httpx can parse carries ``user:password@`` (sent as basic auth)."""
    try:
        return bool(httpx.URL(value).userinfo)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by ``url_problem``
        return False


def header_value_problem(value: str) -> str | None:
    """``None`` if httpx sends ``value`` as a header value; else what is wrong, without it.
    httpx refuses leading or trailing whitespace, control characters (a line break pasted with
    a token) and, encoding as ASCII, any other character: the request would never leave."""
    if not value:
        return "is empty"
    if value != value.strip(" \t"):
        return "starts or ends with a space or tab"
    if any((c < " " and c != "\t") or c == "\x7f" for c in value):
        return "holds a control character (a line break?)"
    if not value.isascii():
        return "holds a character that is not ASCII"
    return None
