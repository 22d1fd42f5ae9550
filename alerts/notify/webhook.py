"""Generic JSON webhook, shaped like Alertmanager's webhook payload (version "4"), plus the
idempotency key (also sent as the ``Idempotency-Key`` header) so a receiver can de-duplicate the
rare resend after a crash between delivery and bookkeeping."""

from __future__ import annotations

from typing import Any

import httpx
import msgspec
from pydantic import SecretStr

from alerts.notify.delivery import Outcome
from alerts.notify.http import post
from alerts.notify.message import Notification
from alerts.timefmt import rfc3339


def webhook_payload(n: Notification) -> dict[str, Any]:
    return {
        "version": "4",
        "receiver": n.receiver,
        "status": n.state,
        "kind": n.kind,
        "idempotencyKey": n.key,
        "groupLabels": n.group,
        "alerts": [
            {
                "status": n.state,
                "labels": a.labels,
                "annotations": a.annotations,
                "startsAt": rfc3339(a.fired_at or a.active_at),
                "endsAt": rfc3339(a.resolved_at) if a.resolved_at is not None else None,
                "value": a.value,
                "threshold": a.threshold,
                "fingerprint": a.fingerprint,
            }
            for a in n.alerts
        ],
    }


class WebhookNotifier:
    def __init__(
        self,
        name: str,
        url: SecretStr,
        client: httpx.AsyncClient,
        timeout: float,
        token: SecretStr | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._client = client
        self._timeout = timeout
        self._token = token

    async def send(self, notification: Notification) -> Outcome:
        headers = {"Content-Type": "application/json", "Idempotency-Key": notification.key}
        if self._token is not None:
            headers["Authorization"] = f"Bearer {self._token.get_secret_value()}"
        body = msgspec.json.encode(webhook_payload(notification))
        return await post(self._client, self._url.get_secret_value(), body, headers, self._timeout)
