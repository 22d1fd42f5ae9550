"""RFC 3339 timestamps for notifications and transition records (UTC, millisecond precision)."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def hour_minute(ts: float) -> str:
    """``09:00 UTC``: a time within an incident, for people."""
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M UTC")
