"""Helpers for tests that run ``support-monitor`` as a real process on a loopback port."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import IO


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_daemon(
    config: Path, listen: str, *, stdout: int | IO[str] | None = subprocess.DEVNULL
) -> subprocess.Popen[str]:
    """``support-monitor run --config CONFIG --listen LISTEN`` with this interpreter; stderr
    (the JSON log) is piped for the caller to read or show on failure."""
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "support_monitor",
            "run",
            "--config",
            str(config),
            "--listen",
            listen,
        ],
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
    )
