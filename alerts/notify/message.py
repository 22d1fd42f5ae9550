"""What the outbox stores and receivers are sent: one alert state per notification.

msgspec structs so a notification round-trips through the outbox as JSON unchanged.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class AlertInfo(msgspec.Struct, frozen=True, kw_only=True):
    fingerprint: str
    labels: dict[str, str]
    annotations: dict[str, str]
    value: float | None
    threshold: float | None
    expected: float | None
    active_at: float
    fired_at: float | None
    resolved_at: float | None


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    key: str
    """Idempotency key: receiver, fingerprints, state and evaluation time."""
    receiver: str
    state: Literal["firing", "resolved"]
    kind: Literal["new", "repeat", "resolved"]
    created: float
    group: dict[str, str]
    alerts: tuple[AlertInfo, ...]


encode = msgspec.json.Encoder().encode
decode = msgspec.json.Decoder(Notification).decode
