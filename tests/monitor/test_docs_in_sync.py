"""Generated documents stay what the code generates."""

from __future__ import annotations

import json
from pathlib import Path

from support_monitor.monitor.events import json_schema

ROOT = Path(__file__).resolve().parents[2]


def test_event_schema_file_matches_the_models() -> None:
    on_disk = json.loads((ROOT / "docs" / "events.schema.json").read_text(encoding="utf-8"))
    assert on_disk == json.loads(json.dumps(json_schema()))
