"""A strict model of Alertmanager's webhook body: ``notify/webhook/webhook.go`` ``Message``
(``*template.Data`` plus ``Version``, ``GroupKey``, ``TruncatedAlerts``) and
``template/template.go`` ``Data`` and ``Alert``, field names from their json tags. Every field is
required, no other field is allowed, times are RFC 3339 with a zone."""

from __future__ import annotations

import re
from datetime import datetime

import msgspec


class AmAlert(msgspec.Struct, forbid_unknown_fields=True):
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: datetime  # noqa: N815 - Alertmanager's json tag
    endsAt: datetime  # noqa: N815
    generatorURL: str  # noqa: N815
    fingerprint: str


class AmMessage(msgspec.Struct, forbid_unknown_fields=True):
    receiver: str
    status: str
    alerts: list[AmAlert]
    groupLabels: dict[str, str]  # noqa: N815
    commonLabels: dict[str, str]  # noqa: N815
    commonAnnotations: dict[str, str]  # noqa: N815
    externalURL: str  # noqa: N815
    version: str
    groupKey: str  # noqa: N815
    truncatedAlerts: int  # noqa: N815 - uint64


def strict_message(body: bytes) -> AmMessage:
    message = msgspec.json.decode(body, type=AmMessage, strict=True)
    assert message.version == "4"
    assert message.status in ("firing", "resolved")
    assert message.truncatedAlerts >= 0
    for alert in message.alerts:
        assert alert.status in ("firing", "resolved")
        assert alert.startsAt.tzinfo is not None
        assert alert.endsAt.tzinfo is not None
        assert re.fullmatch(r"[0-9a-f]{16}", alert.fingerprint)
    return message
