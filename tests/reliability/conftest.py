"""Print the reliability suite's accounting (one row per scenario) at the end of the run."""

from __future__ import annotations

import json
from typing import Any

from tests.reliability.harness import REPORT


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not REPORT:
        return
    terminalreporter.section("reliability: sent / applied / rejected / dead-lettered / lost")
    for row in REPORT:
        terminalreporter.write_line(json.dumps(row))
