"""The ``support-monitor`` console script's entry point: it loads the command line, then runs it.

A Ctrl-C while the command line's modules load (about a quarter of a second) ends the process
with exit code 130 and no traceback, as a Ctrl-C does once a command runs. For ``run`` the
daemon's signals (SIGTERM, SIGINT, SIGHUP) are blocked before that load instead: one sent while
the daemon starts waits until its handlers are in, and then stops it cleanly or reloads."""

from __future__ import annotations

import signal
import sys

INTERRUPTED = 130
"""128 + SIGINT: the exit code of a command ended by Ctrl-C."""

DAEMON_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGHUP})
"""Blocked from the start of ``run`` until the daemon handles them (``monitor.supervise``)."""


def command(argv: list[str]) -> str | None:
    """The command named on the command line (its first word that is not an option)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def main() -> None:
    if command(sys.argv[1:]) == "run":
        # SIGHUP's default action ends the process: a reload sent during start-up must wait
        signal.pthread_sigmask(signal.SIG_BLOCK, DAEMON_SIGNALS)
    try:
        # loaded here, inside the try, so that a Ctrl-C during the load is caught
        from support_monitor.monitor.cli import main as run_command  # noqa: PLC0415
    except KeyboardInterrupt:
        sys.exit(INTERRUPTED)
    run_command()
