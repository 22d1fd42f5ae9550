"""Alert rules, their evaluation and the notifications they send (planner, outbox, notifiers,
inhibition, silences). The public surface is ``__all__``; each name loads its module on first
use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from support_monitor.monitor.exports import lazy_exports

if TYPE_CHECKING:
    from support_monitor.alerts.config import AlertRule, AlertSettings, NotifierSettings
    from support_monitor.alerts.inhibit import Inhibitor
    from support_monitor.alerts.planner import Planner
    from support_monitor.alerts.runtime import Alerting

__all__ = ["AlertRule", "AlertSettings", "Alerting", "Inhibitor", "NotifierSettings", "Planner"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Alerting": "support_monitor.alerts.runtime",
        "AlertRule": "support_monitor.alerts.config",
        "AlertSettings": "support_monitor.alerts.config",
        "Inhibitor": "support_monitor.alerts.inhibit",
        "NotifierSettings": "support_monitor.alerts.config",
        "Planner": "support_monitor.alerts.planner",
    },
)
