"""Receiver URLs and header values checked the way the HTTP client (httpx) will use them,
without echoing them.

A URL may carry a secret (a Slack webhook's path, credentials, a token in the query), and so
may a header value (a bearer token, an API key), so a problem is described in words only:
never the value or any part of it.
"""

from __future__ import annotations

from collections.abc import Iterable

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


def link_problem(value: str, carried_by: str) -> str | None:
    """``None`` if ``value`` can be a link that messages carry (a URL httpx can use, without
    ``user:password@``, which ``carried_by`` would show to everyone it reaches); else what is
    wrong, without the URL."""
    problem = url_problem(value)
    if problem is not None:
        return problem
    if has_userinfo(value):
        return (
            f"has user:password@: {carried_by} would carry it (its text is not shown: it may be "
            "secret)"
        )
    return None


def has_userinfo(value: str) -> bool:
    """Whether a URL httpx can parse carries ``user:password@`` (sent as basic auth, which
    replaces any ``Authorization`` header of the request)."""
    try:
        url = httpx.URL(value)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by ``url_problem``
        return False
    return bool(url.username or url.password)


BASIC_AUTH_CONFLICT = (
    "set next to a URL with user:password@ (basic auth): httpx sends that and drops this "
    "Authorization; use one of the two"
)


def header_value_problem(value: str) -> str | None:
    """``None`` if httpx (h11) sends ``value`` as a header value; else what is wrong, without
    it. It refuses leading or trailing whitespace and control characters (a line break pasted
    with a token) and, encoding as ASCII, any other character: the request would never leave.
    An empty value is sent as it is."""
    if value != value.strip(" \t"):
        return "starts or ends with a space or tab"
    if any(c < " " and c != "\t" for c in value):
        return "holds a control character (a line break?)"
    if not value.isascii():
        return "holds a character that is not ASCII"
    return None


def token_problem(token: str | None, urls: Iterable[str]) -> str | None:
    """What is wrong with a bearer token (``None``: not read yet) next to these URLs, without
    the token: it must be a header value httpx sends (``Bearer <token>``, so not empty) and
    must not sit next to a URL with ``user:password@``."""
    if token is not None:
        problem = "is empty" if not token else header_value_problem(token)
        if problem is not None:
            return f"the token {problem}"
    if any(has_userinfo(url) for url in urls):
        return BASIC_AUTH_CONFLICT
    return None
