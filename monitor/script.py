"""The ``support-monitor`` console script's entry point: it loads the command line, then runs it.

A Ctrl-C while the command line's modules load (about a quarter of a second) ends the process
with exit code 130 and no traceback, as a Ctrl-C does once a command runs."""

from __future__ import annotations

import sys

INTERRUPTED = 130
"""128 + SIGINT: the exit code of a command ended by Ctrl-C."""


def main() -> None:
    try:
        # loaded here, inside the try, so that a Ctrl-C during the load is caught
        from support_monitor.monitor.cli import main as run_command  # noqa: PLC0415
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    run_command()
