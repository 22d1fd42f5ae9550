"""One metric sample as the read side hands it around (exporter, detectors, alert rules)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Series"]


@dataclass(frozen=True, slots=True)
class Series:
    """One sample: metric name (counters with ``_total``), sorted label pairs, value."""

    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None
