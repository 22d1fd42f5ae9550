"""Test helpers for Ctrl-C: the usual SIGINT disposition for a child, and a child that gets
its Ctrl-C at the moment an event loop is being built or the command line's modules load."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

CTRL_C_WHILE_A_LOOP_IS_BUILT = """
import asyncio.base_events, multiprocessing, os, signal

build = asyncio.base_events.BaseEventLoop.__init__

def ctrl_c_then_build(self, *args, **kwargs):
    if multiprocessing.parent_process() is None:  # the command itself, not a worker of it
        os.killpg(os.getpgrp(), signal.SIGINT)  # Ctrl-C, now, to the whole foreground group
    build(self, *args, **kwargs)

asyncio.base_events.BaseEventLoop.__init__ = ctrl_c_then_build
"""

CTRL_C_WHILE_THE_COMMAND_LINE_LOADS = """
import importlib.abc, os, signal, sys

class CtrlC(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "support_monitor.monitor.cli":
            sys.meta_path.remove(self)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C, now, while the module is looked up
        return None

sys.meta_path.insert(0, CtrlC())
"""


def ctrl_c_at_loop_construction(
    args: list[str], site: Path, code: str = CTRL_C_WHILE_A_LOOP_IS_BUILT
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` in a session of its own, as a terminal's foreground job, with a
    ``sitecustomize`` (``code``, written in ``site``, put on ``PYTHONPATH``) that sends it and
    its process group a Ctrl-C from inside the first event loop the command builds (or, with
    :data:`CTRL_C_WHILE_THE_COMMAND_LINE_LOADS`, while the command line's modules load)."""
    site.mkdir(parents=True, exist_ok=True)
    (site / "sitecustomize.py").write_text(code, encoding="utf-8")
    with default_sigint():
        return subprocess.run(
            args,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(site)},
            start_new_session=True,
        )


@contextlib.contextmanager
def default_sigint() -> Iterator[None]:
    """The usual SIGINT disposition for a child started in the block, whatever this process
    inherited (a shell without job control starts background jobs with SIGINT ignored)."""
    inherited = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, inherited)
